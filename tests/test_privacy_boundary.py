"""The privacy boundary end to end (issue 20): with ``privacy.embed_prompt: false`` and
``PROMPT_ENCRYPTION_KEY`` set, a marker word of the prompt is in no byte that leaves the
database or is stored in it: every file under the store and the backup (sidecars
included), the report's contact sheet, the webhook bodies, the Apprise messages, the
SQLite file, the Prefect logs and artifacts read back through the API."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.conftest import a1111_config
from tests.prefect_stack import wait_for
from tests.rows import flow_summary
from tests.servers import A1111Server, HttpSink

pytestmark = pytest.mark.usefixtures("prefect_server")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
MARKER = "quokkazanzibar"


def _library(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", folder)
    (folder / "products" / "marker-lamp.yaml").write_text(
        f'name: marker-lamp\nprompt: "a {MARKER} lantern on a walnut desk, studio photo"\nnegative_prompt: "blurry {MARKER}neg"\ntags: ["lamp"]\n'
    )
    return folder


def _hits(data: bytes) -> bool:
    low = data.lower()
    return MARKER.encode() in low or MARKER.encode("utf-16-le") in low


def _files_with_marker(folder: Path) -> list[str]:
    return [p.as_posix() for p in folder.rglob("*") if p.is_file() and _hits(p.read_bytes())]


def _prefect_texts(flow_run_id: Any) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # send the batched logs of this process now
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        # logs reach the server in batches, possibly after the run ended
        logs = wait_for(
            lambda: [log.message for log in client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))] or None,
            30,
            "the run's logs",
        )
    assert any("marker-lamp" in message or "image" in message for message in logs), logs
    assert artifacts, "the run wrote no artifact"
    return "\n".join([*logs, *(f"{a.key} {a.description} {a.data}" for a in artifacts)])


@pytest.fixture
def info_logs() -> Iterator[None]:
    """Prefect's run loggers at INFO for one test (the suite logs WARNING and up only);
    setLevel, not the attribute: it clears logging's level cache."""
    loggers = [logging.getLogger(name) for name in ("prefect", "prefect.flow_runs", "prefect.task_runs")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.mark.usefixtures("info_logs")
def test_a_private_prompt_is_in_no_delivered_or_stored_byte(make_config: Any, sink: HttpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.adhoc import generate
    from reporting.report import write_report
    from wiring.runtime import get_runtime

    monkeypatch.setenv("PROMPT_ENCRYPTION_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("PUBLISH_APPRISE_URLS", f"json://127.0.0.1:{sink.httpd.server_address[1]}/published")
    monkeypatch.setenv("HOOK_SECRET", "hook-secret")
    backup = tmp_path / "backup"
    with A1111Server() as server:
        make_config(
            **a1111_config(server.url),
            templates_dir=str(_library(tmp_path)),
            dedup={"enabled": False},
            privacy={"embed_prompt": False},
            publishing={"backup_url": backup.as_uri()},
            delivery={"webhooks": [{"url": f"{sink.url}/hook", "secret_env": "HOOK_SECRET", "backoff_s": 0}], "allow_private_addresses": True},
        )
        state = generate(template="marker-lamp", count=2, batch="private", return_state=True)
    summary = flow_summary(state)
    assert [i.status for i in summary.images] == ["done", "done"]
    rt = get_runtime()
    rows = rt.db.images()
    assert all(MARKER in (r.prompt or "") and r.prompt_private for r in rows)  # the database keeps it, encrypted
    assert all("lamp" in r.tags for r in rows)  # the template's declared tags
    output = tmp_path / "output"
    published = [p for p in (output / "content").rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" for p in published) and len(published) >= 2 * 3
    assert _files_with_marker(output) == []  # store, sidecars, spool and the SQLite file
    assert sorted(p.relative_to(backup).as_posix() for p in backup.rglob("*") if p.is_file()) and _files_with_marker(backup) == []
    now = datetime.now(UTC)
    _, report_files = write_report(rt.db, rt.store, now - timedelta(days=2), now + timedelta(days=1), tmp_path / "report")
    assert any(p.name == "index.html" for p in report_files)
    assert all(r.image_id in (tmp_path / "report" / "index.html").read_text() for r in rows)
    assert _files_with_marker(tmp_path / "report") == []
    hooks = [r for r in sink.received if r["path"] == "/hook"]
    notices = [r for r in sink.received if r["path"] == "/published"]
    assert len(hooks) == 2 and notices
    assert not any(_hits(r["body"] if isinstance(r["body"], bytes) else str(r["body"]).encode()) for r in sink.received)
    assert not _hits(_prefect_texts(state.state_details.flow_run_id).encode())


def test_a_refusal_quoting_a_private_prompt_is_scrubbed() -> None:
    from generation.generate import scrub_prompt
    from storage.db import ImageRecord

    row = ImageRecord(
        idempotency_key="k",
        image_id="i",
        flow="adhoc",
        run_date=datetime.now(UTC).date(),
        slot="s",
        slot_index=0,
        category="products",
        prompt=f"a {MARKER} lantern",
        negative_prompt="blurry",
        prompt_private=True,
    )
    said = f"HTTP 400: your prompt 'A {MARKER.upper()} Lantern' was refused"
    assert scrub_prompt(said, row) == "HTTP 400: your prompt 'A [prompt] [prompt]' was refused"
    row.prompt_private = False
    assert scrub_prompt(said, row) == said  # a public prompt without encryption is quoted as it is
