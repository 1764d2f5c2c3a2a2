"""Resume: a flow process killed with SIGKILL mid-run is finished by the next run,
every planned image exactly once. Also the README's run command, end to end."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("prefect_server")

CLI = [sys.executable, "-m", "cli.main"]
ROOT = Path(__file__).resolve().parent.parent


def cli_env(config: Path, api_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CONTENT_PIPELINE_CONFIG": str(config), "PREFECT_API_URL": api_url, "PYTHONPATH": str(ROOT)})
    return env


def done_count(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        with sqlite3.connect(db_path, timeout=5) as conn:
            return conn.execute("select count(*) from images where status = 'done'").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def test_sigkill_mid_run_then_resume(make_config, tmp_path: Path, prefect_server: str) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import a1111_config
    from tests.servers import A1111Server

    server = A1111Server(delay_s=0.6).__enter__()
    # a short lease: the re-run takes over the slot the killed run held after 3 s
    config = make_config(concurrency=1, **a1111_config(server.url), dedup={"enabled": False}, pipeline={"lease_s": 3})
    db_path = tmp_path / "output" / "content-pipeline.db"
    env = cli_env(config, prefect_server)
    proc = subprocess.Popen(
        [*CLI, "run", "daily", "--date", "2026-11-21"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while done_count(db_path) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    killed_at = done_count(db_path)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert 3 <= killed_at < 8, f"the run was not interrupted mid-way ({killed_at} done)"

    with sqlite3.connect(db_path) as conn:
        statuses = Counter(s for (s,) in conn.execute("select status from images"))
    assert statuses["done"] < 8  # really half-way

    result = subprocess.run([*CLI, "run", "daily", "--date", "2026-11-21"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    server.__exit__(None, None, None)
    assert result.returncode == 0, result.stdout + result.stderr

    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("select idempotency_key, image_id, status, storage_key from images").fetchall()
        attempts = conn.execute("select count(*) from attempts").fetchone()[0]
        renditions = conn.execute("select count(*) from renditions").fetchone()[0]
    assert len(rows) == 8 and len({r[0] for r in rows}) == 8
    assert {r[2] for r in rows} == {"done"}
    assert 8 <= attempts <= 9  # at most the one image in flight at the kill was asked again
    assert renditions == 8 * 3
    output = tmp_path / "output"
    images = [p for p in output.rglob("*") if p.suffix in (".png", ".jpg", ".webp") and "spool" not in p.parts]
    per_image = Counter(p.name.split(".")[0].rsplit("-", 1)[1] for p in images)
    assert set(per_image) == {r[1] for r in rows}
    assert set(per_image.values()) == {3}  # original + 2 renditions, each exactly once
    assert all((output / r[3]).is_file() for r in rows)


def test_readme_run_command_prints_where_things_are(make_config, tmp_path: Path, prefect_server: str) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    result = subprocess.run(
        [*CLI, "run", "daily", "--date", "2026-11-21"], env=cli_env(config, prefect_server), cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    # offline defaults: placeholders only, so the run is not complete: exit code 1, the table still printed
    assert result.returncode == 1, result.stdout + result.stderr
    assert "8 of 8 images not done as real content: 8 placeholder" in " ".join(result.stderr.split())
    # what to do offline is getting real images, not retrying the same placeholders
    err = " ".join(result.stderr.split())
    assert "enable a provider in content-pipeline.yaml" in err and "set its key" in err
    assert "re-run the same command" not in err
    out = result.stdout
    # the offline defaults make placeholders: counted as such, never as "done"
    assert "daily run: 8 images: 0 done, 8 placeholders, 0 failed, 0 blocked, 0 skipped; USD 0.00" in out
    assert f"images:   {tmp_path / 'output'}/content" in out
    assert f"database: sqlite:///{tmp_path / 'output' / 'content-pipeline.db'}" in out
    assert "daily-run-summary" in out
    # the outcome column, just before the stored key: every image a placeholder, none "done"
    assert len(re.findall(r"│ placeholder\s+│ placeholder/", out)) == 8 and " done " not in out
