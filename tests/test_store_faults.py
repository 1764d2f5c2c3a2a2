"""A read-only or a full store (issue 19): the images wait to upload, the run's one line names the
store's cause (``Read-only file system`` / ``No space left on device``), never "held by another
run", the worker exits 1; once the store is fixed a re-run stores them without paying twice.

The faults are real file systems: the worker runs in its own user and mount namespace
(``unshare -rm``) with a tmpfs mounted over the store's folder, read-only or of one page
(4 KiB: no image fits). Root ignores file modes, so ``chmod`` cannot make a read-only folder
for it; where namespaces are not allowed the test is skipped with the reason.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from PIL import Image

from imaging.credentials import verify_file
from imaging.watermark import content_id, read
from reporting.summary import ImageSummary, RunSummary
from storage.db import Database
from tests.servers import A1111Server
from tests.test_run_ledger import cli_env, paid

COUNT = 3
MOUNTS = {"read-only": ("ro", "Read-only file system"), "full": ("size=4k", "No space left on device")}


def namespaces_allowed(where: Path) -> str | None:
    """None when ``unshare -rm`` can mount a tmpfs here, else why not."""
    if shutil.which("unshare") is None:
        return "no unshare (util-linux)"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs tmpfs {shlex.quote(str(where))}"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"unshare -rm cannot mount a tmpfs: {probe.stderr.strip()[:200]}"


def test_a_read_only_then_full_store_names_its_cause_and_the_rerun_pays_nothing_twice(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    store.mkdir()
    why = namespaces_allowed(store)
    if why:
        pytest.skip(why)
    worker = [sys.executable, "-m", "tests.ledger_worker", "2026-12-07", str(COUNT), "256"]
    with A1111Server() as server:
        config = make_config(**paid(server.url), storage_url=store.as_uri(), concurrency=1)
        env = cli_env(config, "http://127.0.0.1:9/api")  # the worker never talks to Prefect
        db = Database(f"sqlite:///{tmp_path / 'output' / 'content-pipeline.db'}")
        for fault, (options, cause) in MOUNTS.items():
            script = f"mount -t tmpfs -o {options} tmpfs {shlex.quote(str(store))} && exec {shlex.join(worker)}"
            run = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
            assert run.returncode == 1, (fault, run.stderr[-3000:])
            rows = db.images()
            verdict = RunSummary("daily", [ImageSummary.of(r) for r in rows], "output", "sqlite://", []).verdict()
            assert verdict.startswith(f"{COUNT} of {COUNT} images not done as real content: {COUNT} waiting to upload"), verdict
            assert verdict.endswith(cause) and f"the store failed: cannot write {store}/content/food/2026/12/" in verdict and "\n" not in verdict, verdict
            assert "held by another" not in verdict + run.stderr and "Traceback" not in run.stderr
            said = [line for line in run.stderr.splitlines() if "upload pending" in line]
            assert len(said) == 1 and cause in said[0], run.stderr[-3000:]  # one warning line for the store, not one per image
            assert all(r.status == "processed" and r.upload_pending and r.spool_path for r in rows)
            assert not list(store.iterdir())  # the fault's tmpfs is gone with its namespace: nothing was written
        fixed = subprocess.run(worker, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        calls = list(server.answered)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    rows = db.images()
    assert len(rows) == COUNT and {r.status for r in rows} == {"done"} and not any(r.upload_pending for r in rows)
    assert all(r.storage_key and (store / r.storage_key).is_file() for r in rows)
    assert len(calls) == COUNT  # each image paid once, over three runs
    for row in rows:  # uploaded by the pending path: signed and marked like any published file
        report = verify_file(store / row.storage_key)
        assert report.valid, (row.storage_key, report.state, report.failures)
        with Image.open(store / row.storage_key) as published:  # 256 px: the watermark reads from 256 px up (imaging.watermark)
            assert read(published).content_id == f"{content_id(row.image_id):08x}", row.storage_key
    db.dispose()
