"""Real Prefect processes for end-to-end tests: a ``prefect server start`` subprocess on
PostgreSQL, the ``content-pipeline serve`` process, ``prefect worker start`` processes,
and uniquely named PostgreSQL databases (127.0.0.1:5432, user postgres, trust auth).
``served_stack`` puts the first two together: the stack the end-to-end modules share.

Everything listens on 127.0.0.1 with free ports; every process writes its output to a
log file whose tail is shown when something does not come up in time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get("CONTENT_PIPELINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_available() -> str | None:
    """None when the test PostgreSQL answers, else why not (and how to start it)."""
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return (
            f"PostgreSQL at {PG_ADMIN_DSN} is not reachable ({exc}); start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
        )


def create_database(prefix: str) -> str:
    """Create a uniquely named database; return its name."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(database: str, driver: str) -> str:
    """``postgresql+<driver>://postgres@127.0.0.1:5432/<database>`` (driver: asyncpg, psycopg)."""
    return f"postgresql+{driver}://postgres@127.0.0.1:5432/{database}"


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for(
    check: Callable[[], Any], timeout_s: float, what: str, log: Path | None = None, process: subprocess.Popen[bytes] | None = None, every_s: float = 0.5
) -> Any:
    """Poll ``check()`` until it returns something truthy; AssertionError with the log tail otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: process exited with {process.returncode}\n{tail(log) if log else ''}")
        try:
            value = check()
        except Exception:  # not up yet
            value = None
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"{what}: not ready after {timeout_s:.0f} s\n{tail(log) if log else ''}")


class Proc:
    """A subprocess with its own process group and a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path = PROJECT_ROOT) -> None:
        self.log = log
        self.handle = open(log, "wb")
        self.process = subprocess.Popen(args, env=env, cwd=cwd, stdout=self.handle, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self, timeout_s: float = 15) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.handle.close()


def base_env(prefect_home: Path, **extra: str) -> dict[str, str]:
    """The environment of a Prefect subprocess: private PREFECT_HOME, offline, no inherited config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CONTENT_PIPELINE_")) and k not in ("APPRISE_URLS", "AUTOMATIC1111_AUTH")}
    env.update(PREFECT_HOME=str(prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="INFO", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class PrefectServer:
    """``prefect server start`` on a free port, its database on PostgreSQL; with
    ``auth_string`` (``user:password``) it requires that basic auth on every API call but
    ``/health`` (PREFECT_SERVER_API_AUTH_STRING); ``settings`` adds Prefect settings
    (``PREFECT_SERVER_...`` environment variables) to the server's environment."""

    def __init__(self, home: Path, database_url: str, auth_string: str | None = None, **settings: str) -> None:
        self.home = home
        self.auth_string = auth_string
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api"
        env = base_env(
            home, PREFECT_SERVER_DATABASE_CONNECTION_URL=database_url, PREFECT_SERVER_LOGGING_LEVEL="WARNING", PREFECT_UI_API_URL=self.api_url, **settings
        )
        if auth_string:
            env["PREFECT_SERVER_API_AUTH_STRING"] = auth_string
        prefect = str(Path(sys.executable).with_name("prefect"))
        self.proc = Proc([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)], env, home / "server.log")

    def wait_healthy(self, timeout_s: float = 240) -> None:
        wait_for(
            lambda: httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200, timeout_s, "prefect server /api/health", self.proc.log, self.proc.process
        )

    @property
    def auth(self) -> tuple[str, str] | None:
        """The basic auth (user, password) httpx needs for this server, None without auth."""
        if not self.auth_string:
            return None
        user, _, password = self.auth_string.partition(":")
        return user, password

    def client_env(self) -> dict[str, str]:
        """PREFECT_API_URL and, with auth, PREFECT_API_AUTH_STRING: what a client of this server sets."""
        env = {"PREFECT_API_URL": self.api_url}
        if self.auth_string:
            env["PREFECT_API_AUTH_STRING"] = self.auth_string
        return env

    def stop(self) -> None:
        self.proc.stop()


def write_config(path: Path, output: Path, database: str, **extra: Any) -> Path:
    """Write a content-pipeline.yaml at ``path``: images under ``output``, the project's
    templates, the metrics database ``database`` on the test PostgreSQL, no retry
    backoff, then ``extra``; returns ``path``."""
    data = {
        "output_dir": str(output),
        "templates_dir": str(PROJECT_ROOT / "templates"),
        "database_url": pg_url(database, "psycopg"),
        "retry": {"backoff_s": 0.0},
        **extra,
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def deployment_names(api_url: str, auth: tuple[str, str] | None = None) -> set[str]:
    """``flow/deployment`` of every deployment the server at ``api_url`` has (``auth``: basic auth)."""
    response = httpx.post(f"{api_url}/deployments/filter", json={"limit": 200}, timeout=5, auth=auth)
    response.raise_for_status()
    flows = {f["id"]: f["name"] for f in httpx.post(f"{api_url}/flows/filter", json={}, timeout=5, auth=auth).json()}
    return {f"{flows.get(d['flow_id'])}/{d['name']}" for d in response.json()}


@dataclass
class ServedStack:
    """A Prefect server with the deployments of ``content-pipeline serve`` (``served_stack``)."""

    server: PrefectServer
    home: Path  # PREFECT_HOME of the server and of the processes started against it
    workdir: Path
    output: Path  # output_dir of the served configuration
    metrics_db: str  # its metrics database (PostgreSQL)
    config: Path
    serve: Proc

    def settings(self) -> Any:
        """Prefect settings aimed at the server, for this process (a context manager)."""
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

        updates: dict[Any, Any] = {PREFECT_API_URL: self.server.api_url}
        if self.server.auth_string:
            updates[PREFECT_API_AUTH_STRING] = self.server.auth_string
        return temporary_settings(updates)


@contextmanager
def served_stack(
    workdir: Path, name: str, deployments: set[str], server_settings: dict[str, str] | None = None, auth_string: str | None = None, **config: Any
) -> Iterator[ServedStack]:
    """``prefect server start`` (its own PREFECT_HOME under ``workdir``, its database on the
    test PostgreSQL) and ``content-pipeline serve`` against it, with the configuration
    ``workdir/<name>.yaml`` (``write_config``: a new metrics database, images under
    ``workdir/<name>-output``, then ``config``); yields once the server is healthy and
    ``serve`` has registered ``deployments`` (``flow/deployment`` names). Fails the test
    when PostgreSQL is not reachable. ``server_settings`` and ``auth_string`` go to
    ``PrefectServer`` (``serve`` then gets PREFECT_API_AUTH_STRING). On exit: both processes stopped, the databases dropped."""
    problem = postgres_available()
    if problem:
        pytest.fail(problem)
    home = workdir / "prefect-home"
    home.mkdir()
    server_db, metrics_db = create_database("cp_prefect"), create_database("cp_metrics")
    server = PrefectServer(home, pg_url(server_db, "asyncpg"), auth_string, **(server_settings or {}))
    serve: Proc | None = None
    try:
        server.wait_healthy()
        output = workdir / f"{name}-output"
        path = write_config(workdir / f"{name}.yaml", output, metrics_db, **config)
        env = base_env(home, **server.client_env(), PREFECT_RUNNER_POLL_FREQUENCY="1", CONTENT_PIPELINE_CONFIG=str(path))
        env.pop("PREFECT_LOGGING_LEVEL")  # `serve` as a person starts it: the CLI's defaults decide what is logged
        serve = Proc([sys.executable, "-m", "cli.main", "serve"], env, workdir / "serve.log")
        wait_for(
            lambda: deployments <= deployment_names(server.api_url, server.auth),
            180,
            "content-pipeline serve registering its deployments",
            serve.log,
            serve.process,
        )
        yield ServedStack(server, home, workdir, output, metrics_db, path, serve)
    finally:
        if serve is not None:
            serve.stop()
        server.stop()
        from storage.db import reset_databases

        reset_databases()
        for database in (server_db, metrics_db):
            drop_database(database)
