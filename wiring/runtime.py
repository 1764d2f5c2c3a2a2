"""The composition root: the one place that builds the resources of a process and hands
them to the code that needs them as typed parameters.

``Runtime`` builds, once per process and on first use, the settings, secrets, database,
image ledger, budget ledger, object store, backup store, template library and, per flow
run, the provider chain and the image worker. Only the entry points look it up
(``get_runtime()``: the flows, the command line, the deployments); every library and
every Prefect task receives what it uses. ``reset_runtime()`` drops it (tests, config
reload). A provider chain lives for one flow run: its circuits and disabled providers do
not leak into the next run of a long-lived ``serve`` process.
"""

from __future__ import annotations

import threading
import uuid
from functools import cached_property, lru_cache

from config.secrets import Secrets
from config.settings import Settings, get_secrets, get_settings
from domain.templates import TemplateLibrary
from generation.budget import BudgetLedger
from generation.limits import limit_providers
from generation.produce import Worker, produce_image
from providers.chain import ProviderChain
from providers.registry import PROVIDERS, build_providers
from publishing.review import Publisher
from storage.backup import open_backup
from storage.crypto import cipher, set_key_source
from storage.db import Database, ImageRecord, get_database, reset_databases
from storage.ledger import ImageLedger
from storage.objects import ObjectStore, open_store

_semaphores: dict[int, threading.BoundedSemaphore] = {}
_semaphores_lock = threading.Lock()


def _semaphore(size: int) -> threading.BoundedSemaphore:
    """The process's provider-call semaphore of ``size`` slots (shared by every run in it)."""
    with _semaphores_lock:
        return _semaphores.setdefault(size, threading.BoundedSemaphore(size))


class Runtime:
    """The resources of one process, built on first use from ``settings`` and ``secrets``.

    A plain class (not a dataclass): Prefect passes it to tasks as an opaque value."""

    def __init__(self, settings: Settings, secrets: Secrets) -> None:
        self.settings = settings
        self.secrets = secrets
        self._chains: dict[str, ProviderChain] = {}
        self._workers: dict[str, Worker] = {}
        self._lock = threading.Lock()

    @cached_property
    def db(self) -> Database:
        assert self.settings.database_url
        key = self.secrets.prompt_encryption_key
        set_key_source(lambda: key.get_secret_value().strip() if key is not None else "")
        cipher()  # ConfigError for a PROMPT_ENCRYPTION_KEY that is not a Fernet key, before any row is written
        return get_database(self.settings.database_url)

    @cached_property
    def store(self) -> ObjectStore:
        assert self.settings.storage_url
        return open_store(self.settings.storage_url, s3=self.settings.s3, credentials=self.secrets.aws_credentials())

    @cached_property
    def backup(self) -> ObjectStore | None:
        """The backup store (``publishing.backup_url``), or None."""
        return open_backup(self.settings, self.secrets)

    @cached_property
    def library(self) -> TemplateLibrary:
        return TemplateLibrary.load(self.settings.templates_dir, providers=PROVIDERS)

    @cached_property
    def budget(self) -> BudgetLedger:
        return BudgetLedger(self.db, self.settings.budget, timezone=self.settings.timezone, clients=self.settings.clients)

    @cached_property
    def ledger(self) -> ImageLedger:
        """The image state machine, its settlements and take-overs wired to the budget."""
        pipeline = self.settings.pipeline
        return ImageLedger(
            self.db, lease_s=pipeline.lease_s, max_attempts=pipeline.max_attempts, settle=self.budget.settle_in, on_takeover=self.budget.close_for_claim
        )

    def publisher(self) -> Publisher:
        """A new publishing step (its own list of rows to announce) over this process's resources."""
        return Publisher(db=self.db, store=self.store, settings=self.settings, secrets=self.secrets, backup=self.backup)

    def worker(self, run_key: str, *, retry_failed: bool = False) -> Worker:
        """The image worker of the flow run ``run_key`` (built and started on first use)."""
        with self._lock:
            worker = self._workers.get(run_key)
        if worker is None:
            chain = self.chain(run_key)
            with self._lock:
                worker = self._workers.get(run_key)
                if worker is None:
                    worker = Worker(
                        self.ledger, chain, self.store, self.settings, run_key, _semaphore(self.settings.concurrency), retry_failed=retry_failed
                    ).start()
                    self._workers[run_key] = worker
        return worker

    def chain(self, run_key: str) -> ProviderChain:
        """The provider chain of the flow run ``run_key`` (built on first use)."""
        with self._lock:
            if run_key not in self._chains:
                providers = limit_providers(self.settings, build_providers(self.settings, self.secrets))
                self._chains[run_key] = ProviderChain(providers, retry=self.settings.retry, budget=self.budget)
            return self._chains[run_key]

    def use_providers(self, run_key: str, names: list[str]) -> None:
        """Give run ``run_key`` a chain of only the providers ``names`` (``regenerate --provider``);
        ValueError when none of them is known and enabled."""
        settings = self.settings.model_copy(update={"chain": list(names)})
        providers = build_providers(settings, self.secrets)
        if not providers:
            raise ValueError(f"provider(s) {', '.join(names)} not enabled in the configuration")
        with self._lock:
            self._chains[run_key] = ProviderChain(limit_providers(settings, providers), retry=self.settings.retry, budget=self.budget)

    def produce_planned(self, pk: int, run_key: str) -> ImageRecord:
        """Take slot ``pk`` as far as run ``run_key`` can (generation.produce.produce_image with
        that run's worker); returns its row."""
        return produce_image(self.worker(run_key), pk)

    def produce_version(self, pk: int, provider: str | None = None) -> ImageRecord:
        """Generate, post-process and store the planned version ``pk``, with only ``provider``
        when given (its chain: that provider alone). ValueError when ``provider`` is not enabled."""
        run_key = f"regenerate-{uuid.uuid4().hex[:12]}"
        try:
            if provider:
                self.use_providers(run_key, [provider])
            self.produce_planned(pk, run_key)
        finally:
            self.end_run(run_key)
        return self.db.get(pk)

    def end_run(self, run_key: str) -> None:
        """Close the chain of ``run_key`` (connections, loaded models)."""
        with self._lock:
            chain = self._chains.pop(run_key, None)
            worker = self._workers.pop(run_key, None)
        if worker is not None:
            worker.stop()
        if chain is not None:
            chain.close()


@lru_cache(maxsize=1)
def get_runtime() -> Runtime:
    """The process's Runtime (cached): for the entry points only (flows, command line, deployments)."""
    return Runtime(settings=get_settings(), secrets=get_secrets())


def reset_runtime() -> None:
    """Forget cached settings, secrets, engines and chains."""
    get_runtime.cache_clear()
    get_settings.cache_clear()
    get_secrets.cache_clear()
    set_key_source(None)
    reset_databases()
