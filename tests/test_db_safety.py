"""The metrics database lost, replaced or locked mid-run (issue 19): the run stops with one
line naming the cause and exit code 1, never reports work it could not record, and after
``content-pipeline db rebuild`` (the ledger recovered from the store's sidecars) or the lock
gone, a re-run pays nothing for the images already stored.

The paid provider is the loopback AUTOMATIC1111 server (tests/servers.py), slowed a little so
that the fault lands mid-run: each test waits for a few images to be done, then deletes,
replaces or locks the file. Nothing depends on the machine's speed: the checks hold wherever
in the run the fault lands.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from storage.db import Database
from tests.conftest import a1111_config
from tests.servers import A1111Server

pytestmark = pytest.mark.usefixtures("prefect_server")

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "cli.main"]
DAY = "2026-11-23"


def cli_env(config: Path, api_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CONTENT_PIPELINE_CONFIG": str(config), "PREFECT_API_URL": api_url, "PYTHONPATH": str(ROOT), "CONTENT_PIPELINE_REUSE_SERVER": "0"})
    return env


def done_count(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("select count(*) from images where status = 'done'").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def start_run(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, "run", "daily", "--date", DAY], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_done(path: Path, proc: subprocess.Popen[str], at_least: int) -> int:
    deadline = time.monotonic() + 240
    while done_count(path) < at_least and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return done_count(path)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def config_for(make_config: Any, server: A1111Server, **extra: Any) -> Path:
    return make_config(**a1111_config(server.url, cost_usd=0.04), concurrency=1, dedup={"enabled": False}, retry={"max_retries": 0, "backoff_s": 0.0}, **extra)


def stored_images(output: Path) -> set[str]:
    """Image ids whose provenance sidecar is in the store (what an upload finished)."""
    return {p.stem.rsplit("-", 1)[1] for p in (output / "content").rglob("*.json") if not p.name.endswith(".meta.json")}


def test_database_deleted_mid_run_stops_then_rebuild_and_rerun_pay_nothing_twice(make_config, tmp_path: Path, prefect_server: str) -> None:  # type: ignore[no-untyped-def]
    output = tmp_path / "output"
    path = output / "content-pipeline.db"
    with A1111Server(delay_s=0.3) as server:
        env = cli_env(config_for(make_config, server), prefect_server)
        proc = start_run(env, tmp_path)
        assert wait_done(path, proc, 2) >= 2
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            name.unlink(missing_ok=True)
        out, err = proc.communicate(timeout=240)
        paid_first = len(server.answered)
    assert proc.returncode == 1, out[-2000:] + err[-3000:]
    assert "Traceback" not in out + err, err[-3000:]
    [line] = error_lines(err)
    assert line.startswith(f"error: the metrics database {path} was deleted or replaced during the run (installation id "), line
    assert line.endswith("nothing more is recorded: restore it or run content-pipeline db rebuild")
    assert "daily run:" not in out  # no summary: the rows it would count are gone
    stored = stored_images(output)
    assert 2 <= len(stored) <= paid_first < 8

    rebuilt = subprocess.run([*CLI, "db", "rebuild"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"{len(stored)} images recovered" in rebuilt.stdout, rebuilt.stdout

    with A1111Server() as server:
        env = cli_env(config_for(make_config, server), prefect_server)
        again = subprocess.run([*CLI, "run", "daily", "--date", DAY], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        paid_again = len(server.answered)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert paid_again == 8 - len(stored)  # nothing stored is paid for again
    db = Database(f"sqlite:///{path}")
    rows = db.images(flow="daily")
    assert len(rows) == 8 and {r.status for r in rows} == {"done"}
    assert stored <= {r.image_id for r in rows}
    db.dispose()


def test_database_replaced_mid_run_is_detected_in_one_line(make_config, tmp_path: Path, prefect_server: str) -> None:  # type: ignore[no-untyped-def]
    """Another valid database (its own installation id, the same schema) moved in place of the file."""
    output = tmp_path / "output"
    path = output / "content-pipeline.db"
    other = tmp_path / "other.db"
    Database(f"sqlite:///{other}").dispose()
    with A1111Server(delay_s=0.3) as server:
        env = cli_env(config_for(make_config, server), prefect_server)
        proc = start_run(env, tmp_path)
        assert wait_done(path, proc, 2) >= 2
        os.replace(other, path)
        out, err = proc.communicate(timeout=240)
    assert proc.returncode == 1, out[-2000:] + err[-3000:]
    assert "Traceback" not in out + err, err[-3000:]
    [line] = error_lines(err)
    assert line.startswith(f"error: the metrics database {path} was deleted or replaced during the run (installation id "), line
    assert "another file in its place" in line
    assert "daily run:" not in out


def test_database_locked_mid_run_is_one_line_and_the_rerun_pays_nothing_twice(make_config, tmp_path: Path, prefect_server: str) -> None:  # type: ignore[no-untyped-def]
    """Another program holds an exclusive transaction past the busy timeout (2 s here, from
    the URL's ``?timeout=``): the run's next write fails, the run stops; the lock gone, the
    re-run makes only what was not recorded."""
    output = tmp_path / "output"
    path = output / "content-pipeline.db"
    url = f"sqlite:///{path}?timeout=2"
    with A1111Server(delay_s=0.3) as server:
        env = cli_env(config_for(make_config, server, database_url=url, pipeline={"lease_s": 2}), prefect_server)
        proc = start_run(env, tmp_path)
        assert wait_done(path, proc, 2) >= 2
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            out, err = proc.communicate(timeout=240)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        paid_first = len(server.answered)
    assert proc.returncode == 1, out[-2000:] + err[-3000:]
    assert "Traceback" not in out + err, err[-3000:]
    [line] = error_lines(err)
    assert line == f"error: database {path} is locked by another program (waited 2 s): let it finish or stop it, then run again"
    db = Database(url)
    done_before = {r.seed for r in db.images(flow="daily") if r.status == "done"}
    billed = sum(a.cost_usd for a in db.attempts())
    assert billed == pytest.approx(0.04 * paid_first)  # ledger = billed: every answered call is counted, nothing else
    db.dispose()

    with A1111Server() as server:
        env = cli_env(config_for(make_config, server, database_url=url, pipeline={"lease_s": 2}), prefect_server)
        again = subprocess.run([*CLI, "run", "daily", "--date", DAY], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        paid_again = list(server.answered)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    # what was recorded done is never paid again (a slot spooled before the lock resumes unpaid too)
    assert len(paid_again) <= 8 - len(done_before) and not done_before & set(paid_again)
    db = Database(url)
    assert {r.status for r in db.images(flow="daily")} == {"done"}
    db.dispose()
