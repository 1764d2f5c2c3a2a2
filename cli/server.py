"""The local Prefect server a run starts once in the background and later runs reuse.

A ``content-pipeline run`` with no PREFECT_API_URL (environment or Prefect profile) and
nothing answering on 127.0.0.1:4200 starts ``prefect server start`` detached (its own
session, so it outlives the run), with its log, PID and URL under
``$PREFECT_HOME/content-pipeline-server/``, and says so on its first line. Later runs
find it answering and skip Prefect's temporary server, which costs 5-6 s per run to start
and stop (benchmarks/RESULTS-startup.md). ``content-pipeline server stop`` stops it;
``CONTENT_PIPELINE_REUSE_SERVER=0`` keeps the temporary server and starts nothing.

Prefect's server CLI: https://docs.prefect.io/v3/api-ref/cli/server
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from domain.errors import ContentPipelineError

#: Seconds a run waits for the background server's /api/health (a fresh PREFECT_HOME
#: migrates its database first: 20-50 s on a 2-core machine); override with this variable.
START_TIMEOUT = "CONTENT_PIPELINE_SERVER_START_TIMEOUT"


def prefect_home() -> Path:
    """PREFECT_HOME, as Prefect reads it (default ``~/.prefect``,
    https://docs.prefect.io/v3/develop/settings-ref#home)."""
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def state_dir() -> Path:
    """Where the background server's ``server.log``, ``server.pid`` and ``server.url`` live."""
    return prefect_home() / "content-pipeline-server"


def profile_api_url() -> str | None:
    """PREFECT_API_URL of the active Prefect profile (``$PREFECT_HOME/profiles.toml``,
    https://docs.prefect.io/v3/develop/settings-and-profiles), read without importing
    Prefect (whose settings, once read, ignore later environment changes)."""
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or prefect_home() / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    value = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return str(value) if value else None


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _server_env() -> dict[str, str]:
    """This process's environment for the server, less what the CLI set for its own console."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL")}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED=env.get("PREFECT_SERVER_ANALYTICS_ENABLED", "false"), PREFECT_SERVER_LOGGING_LEVEL="WARNING")
    return env


class BackgroundServer:
    """``prefect server start`` on ``base_url``'s host and port, detached; ``wait()`` until
    its ``/api/health`` answers (or one clear error naming its log)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = f"{self.base_url}/api"
        folder = state_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started = False

    def start(self) -> bool:
        """Start ``prefect server start`` detached (its own session: it outlives this
        process) and return True; False when the PID file names a server still starting
        (another run's), which ``wait()`` then waits for."""
        self.started = True
        folder = self.log.parent
        url = folder / "server.url"
        if _recorded_pid() is not None and url.exists() and url.read_text(encoding="utf-8").strip() == self.base_url:
            return False
        parts = urlsplit(self.base_url)
        command = [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            parts.hostname or "127.0.0.1",
            "--port",
            str(parts.port or 4200),
            "--no-background",
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=_server_env(), cwd=folder, start_new_session=True
            )
        (folder / "server.pid").write_text(f"{self.process.pid}\n", encoding="utf-8")
        (folder / "server.url").write_text(f"{self.base_url}\n", encoding="utf-8")
        return True

    def _exited(self) -> bool:
        if self.process is not None:
            return self.process.poll() is not None
        return _recorded_pid() is None

    def wait(self) -> None:
        """Block until the server answers; ContentPipelineError when it exits or times out."""
        limit = float(os.environ.get(START_TIMEOUT, "300"))
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if _healthy(self.api):
                return
            if self._exited():
                if _healthy(self.api):  # another run's server won the port meanwhile
                    return
                raise ContentPipelineError(
                    f"the background Prefect server exited (log: {self.log}); CONTENT_PIPELINE_REUSE_SERVER=0 runs on a temporary server instead"
                )
            time.sleep(0.25)
        raise ContentPipelineError(
            f"the background Prefect server did not answer within {limit:.0f} s (log: {self.log}): raise {START_TIMEOUT} on a loaded machine"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _is_prefect_server(pid: int) -> bool:
    """True when ``pid`` runs and (where /proc tells) is a ``prefect server start``."""
    if not _alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return True
    words = cmdline.read_bytes().split(b"\0")
    return b"prefect" in b" ".join(words) and b"server" in words and b"start" in words


def _recorded_pid() -> int | None:
    """The PID in ``server.pid`` when it names a running ``prefect server start``, else None."""
    try:
        pid = int((state_dir() / "server.pid").read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return pid if _is_prefect_server(pid) else None


def stop_server(timeout_s: float = 30.0) -> str:
    """Stop the background server this CLI started (SIGTERM to its process group, SIGKILL
    after ``timeout_s`` seconds); returns one line saying what happened."""
    pid_file = state_dir() / "server.pid"
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return f"no background Prefect server recorded in {state_dir()}"
    if not _is_prefect_server(pid):
        pid_file.unlink(missing_ok=True)
        return f"the background Prefect server (PID {pid}) was not running"
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return f"stopped the background Prefect server (PID {pid})"
