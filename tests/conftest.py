"""Shared fixtures. Prefect runs against one session-wide test server (temporary
PREFECT_HOME); every test gets its own configuration file, output folder and SQLite file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Before anything imports prefect: a private, offline Prefect home for the test session.
_PREFECT_HOME = tempfile.mkdtemp(prefix="cp-prefect-home-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ["PREFECT_SERVER_LOGGING_LEVEL"] = "CRITICAL"
os.environ.pop("PREFECT_API_URL", None)
for _name in list(os.environ):
    if _name.startswith("CONTENT_PIPELINE_") or _name in ("APPRISE_URLS", "AUTOMATIC1111_AUTH"):
        os.environ.pop(_name)
# a developer's `prefect server start` on 127.0.0.1:4200 must not be picked up by CLI runs in tests
os.environ["CONTENT_PIPELINE_REUSE_SERVER"] = "0"

import pytest  # noqa: E402
import yaml  # noqa: E402

from wiring.runtime import reset_runtime  # noqa: E402
from tests.dbfixtures import db_url, postgres_url  # noqa: E402,F401  (SQLite + PostgreSQL fixtures)
from tests.servers import A1111Server, HttpSink  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """One Prefect test server for the session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture
def chromium() -> str:
    """The Chromium binary; skips the test naming what is missing and how to get it (tests/needs.py),
    and fails it instead under CI=true."""
    from tests.needs import require_chromium

    return require_chromium()


@pytest.fixture
def make_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write content-pipeline.yaml in ``tmp_path`` (output under tmp_path/output) and use it."""

    def make(**overrides: Any) -> Path:
        data: dict[str, Any] = {"output_dir": "output", "templates_dir": str(PROJECT_ROOT / "templates"), "retry": {"backoff_s": 0.0}}
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        path = tmp_path / "content-pipeline.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        monkeypatch.setenv("CONTENT_PIPELINE_CONFIG", str(path))
        reset_runtime()
        return path

    yield make
    reset_runtime()


@pytest.fixture
def a1111() -> Iterator[A1111Server]:
    with A1111Server() as server:
        yield server


@pytest.fixture
def sink() -> Iterator[HttpSink]:
    with HttpSink() as server:
        yield server


def a1111_config(url: str, **extra: Any) -> dict[str, Any]:
    """Config overrides for a chain automatic1111 -> placeholder aimed at ``url``. The timeout
    is generous (120 s): a loaded machine must not turn a loopback answer into a failure."""
    return {"chain": ["automatic1111", "placeholder"], "providers": {"automatic1111": {"enabled": True, "base_url": url, "timeout_s": 120, **extra}}}
