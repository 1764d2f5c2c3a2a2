"""``content-pipeline doctor``: check what a run needs and say what to fix.

Checks, in order: Python, configuration, templates, Prefect API, database, storage,
providers of the chain, Apprise URLs, global concurrency limits, the C2PA signer. Each gives a
``Check`` with a status (``ok``, ``warn``: works but deserves a look, ``fail``: a run
would break) and, unless ok, the fix. Network probes go only to the configured URLs,
with short timeouts (``timeout_s`` seconds). Secrets are never printed: URLs are shown
with passwords masked and Apprise URLs by scheme only.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from providers.registry import PROVIDERS
from sqlalchemy.engine import make_url
import ipaddress
import httpx
from sqlalchemy import create_engine, text

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    """One finding: ``name`` of the thing checked, ``status`` ok / warn / fail, what was found, how to fix it."""

    name: str
    status: str
    detail: str
    fix: str = ""


def _mask_url(url: str) -> str:

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        parsed = urlparse(url)
        return f"{parsed.scheme}://{parsed.hostname or ''}{parsed.path}" if parsed.scheme else url


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] == (3, 11):
        return Check("python", OK, f"Python {version} at {sys.executable}")
    return Check("python", FAIL, f"Python {version}: content-pipeline needs 3.11", "create the virtual environment with python3.11 (make install)")


#: Hosts that are this machine: a Prefect API there needs no basic auth.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _prefect_setting(name: str) -> str | None:
    """A Prefect setting's value (environment first, then the active Prefect profile), secrets revealed."""
    value = os.environ.get(name)
    if value:
        return value
    try:
        import prefect.settings  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

        found = getattr(prefect.settings, name).value()
    except Exception:
        return None
    if found is None:
        return None
    return str(found.get_secret_value() if hasattr(found, "get_secret_value") else found) or None


def prefect_api_url() -> str | None:
    """``PREFECT_API_URL`` from the environment or the active Prefect profile."""
    return _prefect_setting("PREFECT_API_URL")


def _basic_auth(auth_string: str | None) -> tuple[str, str] | None:
    if not auth_string:
        return None
    user, _, password = auth_string.partition(":")
    return user, password


def _is_local(host: str) -> bool:

    try:
        return host in LOCAL_HOSTS or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_warning(api: str) -> str | None:
    """One line when the Prefect API at ``api`` is on another host and neither
    ``PREFECT_API_AUTH_STRING`` (a self-hosted server's basic auth, ``user:password``:
    https://docs.prefect.io/v3/advanced/security-settings) nor ``PREFECT_API_KEY``
    (Prefect Cloud) is set: anyone who reaches that port can run and read flows."""
    host = urlparse(api).hostname
    if not host or _is_local(host) or _prefect_setting("PREFECT_API_AUTH_STRING") or _prefect_setting("PREFECT_API_KEY"):
        return None
    return (
        f"PREFECT_API_URL points to {host}, not this machine, and PREFECT_API_AUTH_STRING is not set: start the "
        "server with PREFECT_SERVER_API_AUTH_STRING=user:password and set PREFECT_API_AUTH_STRING to the same "
        "here and on every worker (README 'Scale out')"
    )


def auth_problem(api: str, timeout_s: float) -> str | None:
    """One line when the Prefect API refuses our basic auth (HTTP 401 on ``/admin/version``,
    which, unlike ``/health``, a server started with ``PREFECT_SERVER_API_AUTH_STRING`` guards)."""

    try:
        response = httpx.get(f"{api.rstrip('/')}/admin/version", timeout=timeout_s, auth=_basic_auth(_prefect_setting("PREFECT_API_AUTH_STRING")))
    except httpx.HTTPError:
        return None  # /health answered: a slow version probe is not an auth problem
    if response.status_code != 401:
        return None
    given = "is not the server's" if _prefect_setting("PREFECT_API_AUTH_STRING") else "is not set"
    return (
        f"the Prefect server at {api} requires basic auth and PREFECT_API_AUTH_STRING {given}: set it to the "
        "server's PREFECT_SERVER_API_AUTH_STRING (user:password)"
    )


def check_prefect_api(timeout_s: float) -> Check:

    api = prefect_api_url()
    if not api:
        return Check(
            "prefect api",
            WARN,
            "PREFECT_API_URL is not set: flows run on a temporary server (no schedules, no UI)",
            "prefect server start, then export PREFECT_API_URL=http://127.0.0.1:4200/api",
        )
    try:
        response = httpx.get(f"{api.rstrip('/')}/health", timeout=timeout_s)
    except httpx.HTTPError as exc:
        return Check("prefect api", FAIL, f"{api} unreachable ({type(exc).__name__})", "start it (prefect server start) or correct PREFECT_API_URL")
    if response.status_code != 200:
        return Check(
            "prefect api",
            FAIL,
            f"{api}/health answered HTTP {response.status_code}",
            "check PREFECT_API_URL points at the API (it ends in /api) and PREFECT_API_KEY for Prefect Cloud",
        )
    refused = auth_problem(api, timeout_s)
    if refused:
        return Check("prefect api", FAIL, refused, "export PREFECT_API_AUTH_STRING=user:password (as the server's)")
    return Check("prefect api", OK, f"{api} healthy")


def check_prefect_auth() -> list[Check]:
    """A ``prefect auth`` warning when the API is on another host without basic auth (``auth_warning``)."""
    warning = auth_warning(prefect_api_url() or "")
    return [Check("prefect auth", WARN, warning, "README 'Scale out': a server with basic auth")] if warning else []


def check_database(url: str) -> Check:

    shown = _mask_url(url)
    if url.startswith("sqlite:///"):
        folder = Path(url.removeprefix("sqlite:///")).parent
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not os.access(probe, os.W_OK):
            return Check("database", FAIL, f"{shown}: {probe} is not writable", f"make {folder} writable or set database_url")
        if not folder.exists():
            return Check("database", OK, f"{shown} (created on the first run)")
    try:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200]
        fix = "start PostgreSQL and create the database (createdb), or correct database_url" if url.startswith("postgresql") else "correct database_url"
        if "No module named" in reason or "ModuleNotFoundError" in type(exc).__name__:
            fix = "install the driver (psycopg[binary] for postgresql+psycopg://)"
        return Check("database", FAIL, f"{shown}: {type(exc).__name__}: {reason}", fix)
    return Check("database", OK, f"{shown} answers")


def check_storage(url: str) -> Check:
    from domain.errors import StorageError  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from storage.objects import LocalStore, open_store  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    try:
        store = open_store(url)
    except StorageError as exc:
        return Check("storage", FAIL, str(exc), "set storage_url to a supported URL (file:///path)")
    if isinstance(store, LocalStore):
        root = store.root
        try:
            root.mkdir(parents=True, exist_ok=True)
            tempfile.NamedTemporaryFile(dir=root, prefix=".doctor-").close()  # created and removed: the folder is writable
        except OSError as exc:
            return Check("storage", FAIL, f"{root}: cannot write ({exc.strerror})", f"make {root} writable or set storage_url")
        return Check("storage", OK, f"{root} writable")
    try:
        store.exists("content-pipeline-doctor-probe")
    except Exception as exc:
        return Check(
            "storage", FAIL, f"{_mask_url(url)}: {type(exc).__name__}: {str(exc)[:200]}", "check the bucket, endpoint and credentials (AWS_* variables)"
        )
    return Check("storage", OK, f"{_mask_url(url)} reachable")


def missing_keys(cls: Any, secrets: Any) -> list[str]:
    """Environment variables the provider class needs and ``secrets`` lacks (an empty value
    counts as missing), from the class's own declaration (``Provider.missing_secrets``),
    without building a client."""
    probe = cls.__new__(cls)
    probe.secrets = secrets
    return list(probe.missing_secrets())


def optional_keys_unset(cls: Any, secrets: Any) -> list[str]:
    """The provider's optional secrets (``Provider.optional_secret_env``) that ``secrets`` lacks."""
    return [names[0] for key, names in cls.secret_env.items() if key in cls.optional_secret_env and secrets.lookup(names) is None]


def check_providers(settings: Any, secrets: Any, timeout_s: float) -> list[Check]:

    from providers.registry import provider_class  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    checks: list[Check] = []
    enabled = []
    for name in settings.chain:
        config = settings.provider_config(name)
        label = f"provider {name}"
        if not config.enabled:
            checks.append(Check(label, OK, "disabled (skipped by the chain)"))
            continue
        enabled.append(name)
        cls = provider_class(name)
        missing = missing_keys(cls, secrets)
        optional = optional_keys_unset(cls, secrets)
        if missing:
            checks.append(
                Check(
                    label,
                    FAIL,
                    f"{', '.join(missing)} not set: the chain skips {name} (never calls it)",
                    f"set {missing[0]} in the environment or .env (an empty value is no key), or set providers.{name}.enabled: false",
                )
            )
            continue
        base_url = getattr(config, "base_url", None)
        if base_url:
            try:
                httpx.get(base_url, timeout=timeout_s)
            except httpx.HTTPError as exc:
                checks.append(
                    Check(
                        label,
                        FAIL,
                        f"{base_url} unreachable ({type(exc).__name__})",
                        f"start it (AUTOMATIC1111: webui --api) or set providers.{name}.enabled: false",
                    )
                )
                continue
        detail = (f"{base_url} reachable" if base_url else "ready") + (", placeholder images only" if cls.is_placeholder else "")
        checks.append(Check(label, OK, detail + (f" (optional {', '.join(optional)} not set)" if optional else "")))
        from providers.registry import model_findings  # the model's lifecycle, asked from the provider  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

        checks.extend(
            Check(f"{label} model", WARN if level == "warn" else OK, line, f"set providers.{name}.model to a current model" if level == "warn" else "")
            for level, line in model_findings(name, config, secrets)
        )
    usable = [n for n in enabled if not missing_keys(provider_class(n), secrets)]
    if not enabled:
        checks.append(Check("chain", FAIL, "no provider of the chain is enabled", "enable one in providers.<name>.enabled"))
    elif usable and all(provider_class(n).is_placeholder for n in usable):
        checks.append(
            Check(
                "chain",
                WARN,
                "only placeholder providers are enabled: no real content is made",
                "enable a real provider (providers.automatic1111.enabled: true, or an API provider with its key)",
            )
        )
    return checks


def preflight(settings: Any, secrets: Any) -> tuple[str | None, list[str]]:
    """What a run checks before its first image (doctor's provider-key and folder checks, no
    network): ``(error, warnings)``. The error (one line; the run stops, exit 2): the output
    folder cannot be written, or an enabled provider of the chain lacks its key while no
    other real provider of the chain can run (the run would make placeholders only). A
    provider lacking its key with another real one after it: a warning, the run goes on."""
    from providers.registry import provider_class  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    folder = settings.output_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-").close()  # made, then removed: the folder takes files
    except OSError as exc:
        return f"output_dir {folder} cannot be written ({exc.strerror or type(exc).__name__}): set output_dir in the configuration to a writable folder", []
    enabled = [n for n in settings.chain if settings.provider_config(n).enabled]
    lacking = {n: missing_keys(provider_class(n), secrets) for n in enabled}
    usable_real = [n for n in enabled if not lacking[n] and not provider_class(n).is_placeholder]
    lines = [
        f"{keys[0]} is not set: the chain's provider {name} cannot run; set it in the environment or .env, or set providers.{name}.enabled: false"
        for name, keys in lacking.items()
        if keys
    ]
    if lines and not usable_real:
        return lines[0] + " (nothing was generated)", []
    return None, [line + f" (the chain goes on with {', '.join(usable_real)})" for line in lines]


def check_apprise(secrets: Any) -> list[Check]:
    import apprise  # noqa: PLC0415 - Apprise loads every plugin: only when a message is sent

    urls = secrets.apprise_url_list()
    if not urls:
        return [
            Check(
                "apprise", WARN, "APPRISE_URLS is not set: alerts are only logged and stored", "export APPRISE_URLS='mailto://... ntfy://...' (any Apprise URL)"
            )
        ]
    checks = []
    for position, url in enumerate(urls, 1):
        scheme = url.split("://", 1)[0] if "://" in url else "(no scheme)"
        if apprise.Apprise().add(url):
            checks.append(Check(f"apprise #{position}", OK, f"{scheme}:// URL understood by Apprise"))
        else:
            checks.append(
                Check(
                    f"apprise #{position}",
                    FAIL,
                    f"{scheme}:// URL not understood by Apprise",
                    f"fix entry #{position} of APPRISE_URLS (see https://github.com/caronc/apprise/wiki)",
                )
            )
    return checks


def check_global_limits(settings: Any, api_ok: bool) -> list[Check]:
    if not settings.scale.global_limits:
        return []
    if not api_ok:
        return [
            Check(
                "global limits",
                FAIL,
                "scale.global_limits is on but the Prefect API is not reachable",
                "start the Prefect server and set PREFECT_API_URL, or set scale.global_limits: false",
            )
        ]
    from prefect.client.orchestration import get_client  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs
    from prefect.exceptions import ObjectNotFound  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    from generation.limits import limit_name  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    found, missing = [], []
    with get_client(sync_client=True) as client:
        for name in settings.chain:
            try:
                limit = client.read_global_concurrency_limit_by_name(limit_name(name))
                found.append(f"{limit.name}={limit.limit}{'' if limit.active else ' (inactive)'}")
            except ObjectNotFound:
                missing.append(limit_name(name))
    if missing:
        return [
            Check(
                "global limits",
                WARN,
                f"{', '.join(found) or 'none yet'}; missing {', '.join(missing)} "
                f"(the first run creates them with scale.provider_limits or concurrency={settings.concurrency})",
                f"prefect gcl create {missing[0]} --limit N",
            )
        ]
    return [Check("global limits", OK, ", ".join(found))]


def check_c2pa(settings: Any, secrets: Any) -> Check:
    """The C2PA signer (imaging.credentials): off, the per-installation self-signed one
    (untrusted by validators), or the configured certificate (its files must load)."""
    from domain.errors import ConfigError  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from imaging.credentials import UNTRUSTED, SignerMaterial  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    config = settings.c2pa
    if not config.enabled:
        return Check("c2pa", WARN, "off: published files carry no signed Content Credentials", "set c2pa.enabled: true")
    if config.certificate is None:
        return Check(
            "c2pa",
            WARN,
            f"signing with the per-installation self-signed certificate in {settings.credentials_dir} (made on first use): {UNTRUSTED.split(': ', 1)[0]}",
            UNTRUSTED.split(": ", 1)[1],
        )
    key = secrets.c2pa_private_key
    try:
        SignerMaterial.from_config(config, key.get_secret_value() if key is not None else None)
    except ConfigError as exc:
        return Check("c2pa", FAIL, str(exc), "correct c2pa.certificate / c2pa.private_key (or C2PA_PRIVATE_KEY)")
    if config.trust_anchors is None:
        return Check(
            "c2pa",
            WARN,
            f"signing with {config.certificate}; no c2pa.trust_anchors: verify reports the signer untrusted",
            "set c2pa.trust_anchors to the PEM root of your signing CA",
        )
    return Check("c2pa", OK, f"signing with {config.certificate}, trusted under {config.trust_anchors}")


def run_checks(timeout_s: float = 3.0) -> list[Check]:
    """Every check; later ones that depend on a failed earlier one are skipped with that reason."""
    from domain.errors import ConfigError, TemplateError  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from config.settings import load_settings  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from domain.templates import TemplateLibrary  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    checks = [check_python()]
    try:
        settings = load_settings()
    except ConfigError as exc:
        checks.append(Check("configuration", FAIL, str(exc), "correct the file / variable named above"))
        checks.append(check_prefect_api(timeout_s))
        return checks
    from config.secrets import Secrets  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it
    from config.settings import config_path  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    secrets = Secrets()
    problems = secrets.url_problems()  # an Apprise URL with a misspelt scheme: a configuration error, as for every command
    if problems:
        checks.append(Check("configuration", FAIL, problems[0], "correct the variable named above"))
        checks.append(check_prefect_api(timeout_s))
        return checks
    checks.append(Check("configuration", OK, str(config_path() or "defaults (no content-pipeline.yaml)")))
    try:
        library = TemplateLibrary.load(settings.templates_dir, providers=PROVIDERS)
        count = sum(len(group) for group in library.templates.values())
        checks.append(Check("templates", OK, f"{count} templates in {len(library.templates)} categories: {settings.templates_dir}"))
    except TemplateError as exc:
        checks.append(Check("templates", FAIL, str(exc), "content-pipeline templates validate lists every problem"))
    api = check_prefect_api(timeout_s)
    checks.append(api)
    checks.extend(check_prefect_auth())
    assert settings.database_url and settings.storage_url
    checks.append(check_database(settings.database_url))
    checks.append(check_storage(settings.storage_url))
    checks.extend(check_providers(settings, secrets, timeout_s))
    checks.extend(check_apprise(secrets))
    checks.extend(check_global_limits(settings, api.status == OK))
    checks.append(check_c2pa(settings, secrets))
    return checks
