"""Resources wired in one place: settings, secrets, database, store, templates, chains.

Prefect tasks receive only small ids (an image row's primary key, a run key) and
look their resources up here, so nothing unhashable crosses a task boundary.
``get_runtime()`` is cached per process; ``reset_runtime()`` drops it (tests,
config reload). A provider chain lives for one flow run: its circuits and disabled
providers do not leak into the next run of a long-lived ``serve`` process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from core.settings import Secrets, Settings, get_secrets, get_settings
from core.templates import TemplateLibrary
from providers.chain import ProviderChain
from providers.registry import build_providers
from storage.db import Database, get_database, reset_databases
from storage.ledger import ImageLedger
from storage.objects import ObjectStore, open_store
from tasks.budget import BudgetLedger
from tasks.produce import Worker

_semaphores: dict[int, threading.BoundedSemaphore] = {}
_semaphores_lock = threading.Lock()


def _semaphore(size: int) -> threading.BoundedSemaphore:
    """The process's provider-call semaphore of ``size`` slots (shared by every run in it)."""
    with _semaphores_lock:
        return _semaphores.setdefault(size, threading.BoundedSemaphore(size))


@dataclass
class Runtime:
    settings: Settings
    secrets: Secrets
    _chains: dict[str, ProviderChain] = field(default_factory=dict)
    _workers: dict[str, Worker] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def db(self) -> Database:
        assert self.settings.database_url
        from storage.crypto import cipher

        cipher()  # ConfigError for a PROMPT_ENCRYPTION_KEY that is not a Fernet key, before any row is written
        return get_database(self.settings.database_url)

    @cached_property
    def store(self) -> ObjectStore:
        assert self.settings.storage_url
        return open_store(self.settings.storage_url, s3=self.settings.s3, credentials=self.secrets.aws_credentials())

    @cached_property
    def library(self) -> TemplateLibrary:
        return TemplateLibrary.load(self.settings.templates_dir)

    @cached_property
    def budget(self) -> BudgetLedger:
        return BudgetLedger(self.db, self.settings.budget, timezone=self.settings.timezone)

    @cached_property
    def ledger(self) -> ImageLedger:
        """The image state machine, its settlements and take-overs wired to the budget."""
        pipeline = self.settings.pipeline
        return ImageLedger(self.db, lease_s=pipeline.lease_s, max_attempts=pipeline.max_attempts,
                           settle=self.budget.settle_in, on_takeover=self.budget.close_for_claim)

    def worker(self, run_key: str, *, retry_failed: bool = False) -> Worker:
        """The image worker of the flow run ``run_key`` (built and started on first use)."""
        with self._lock:
            worker = self._workers.get(run_key)
        if worker is None:
            chain = self.chain(run_key)
            with self._lock:
                worker = self._workers.get(run_key)
                if worker is None:
                    worker = Worker(self.ledger, chain, self.store, self.settings, run_key,
                                    _semaphore(self.settings.concurrency), retry_failed=retry_failed).start()
                    self._workers[run_key] = worker
        return worker

    def chain(self, run_key: str) -> ProviderChain:
        """The provider chain of the flow run ``run_key`` (built on first use)."""
        with self._lock:
            if run_key not in self._chains:
                providers = build_providers(self.settings, self.secrets)
                from tasks.limits import limit_providers  # Prefect global limits when scale.global_limits

                providers = limit_providers(self.settings, providers)
                self._chains[run_key] = ProviderChain(providers, retry=self.settings.retry, budget=self.budget)
            return self._chains[run_key]

    def use_providers(self, run_key: str, names: list[str]) -> None:
        """Give run ``run_key`` a chain of only the providers ``names`` (``regenerate --provider``);
        ValueError when none of them is known and enabled."""
        settings = self.settings.model_copy(update={"chain": list(names)})
        providers = build_providers(settings, self.secrets)
        if not providers:
            raise ValueError(f"provider(s) {', '.join(names)} not enabled in the configuration")
        from tasks.limits import limit_providers

        with self._lock:
            self._chains[run_key] = ProviderChain(limit_providers(settings, providers), retry=self.settings.retry,
                                                  budget=self.budget)

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
    return Runtime(settings=get_settings(), secrets=get_secrets())


def reset_runtime() -> None:
    """Forget cached settings, secrets, engines and chains."""
    get_runtime.cache_clear()
    get_settings.cache_clear()
    get_secrets.cache_clear()
    reset_databases()
