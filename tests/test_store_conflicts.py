"""An object already at an image's key (issue 19): the same image is adopted, a different one is
kept and the new image goes under a conflict key, reported once; on a local folder and on a real
S3 endpoint (moto's server on loopback).

"The same image" is the same bytes, or a file made from the same provider output: every stored
file carries ``source-sha256``, the SHA-256 of the provider's original as spooled, before
post-processing and C2PA signing (a manifest carries its own time, so a re-made file's bytes
differ). A re-run after a database loss gets the same image ids, so the same keys.
"""

from __future__ import annotations

import io
import logging
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from config.publishing import PublishingConfig
from domain.model import key_digest
from generation.upload import SOURCE_CHECKSUM, conflict_stem, store_files
from imaging.postprocess import RenditionFile
from storage.db import Database, ImageRecord
from storage.objects import ObjectStore, S3Config, open_store, sha256_hex
from tests.s3server import S3Server
from tests.servers import A1111Server, photo
from tests.test_run_ledger import paid


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials for moto; never real ones."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "file":
        return open_store((tmp_path / "store").as_uri())
    server: S3Server = request.getfixturevalue("s3")
    bucket = f"conflicts-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    server.client().create_bucket(Bucket=bucket)
    return open_store(f"s3://{bucket}/studio", s3=S3Config(endpoint_url=server.url))


def signed(source: bytes, signed_at: str) -> bytes:
    """The provider's PNG re-encoded with a text chunk that differs per signing time: what a
    C2PA-signed original is to its source (same pixels, other bytes)."""
    info = PngInfo()
    info.add_text("signed-at", signed_at)
    out = io.BytesIO()
    with Image.open(io.BytesIO(source)) as image:
        image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def made(tmp_path: Path, source: bytes, signed_at: str) -> tuple[ImageRecord, list[RenditionFile]]:
    """A row whose spool holds ``source``, and its cleaned original and thumbnail as post-processing leaves them."""
    work = tmp_path / signed_at
    work.mkdir()
    (work / "spool.png").write_bytes(source)
    original = work / "original.png"
    original.write_bytes(signed(source, signed_at))
    thumb = work / "thumb.webp"
    with Image.open(io.BytesIO(source)) as image:
        image.resize((64, 48)).save(thumb, "WEBP", quality=80)
    key = "daily:2026-12-05:0600-food:0"
    row = ImageRecord(
        idempotency_key=key, image_id=key_digest(key), flow="daily", run_date=date(2026, 12, 5), slot="0600-food", slot_index=0,
        category="food", template="pasta-dish", template_version=1, prompt="pesto linguine", seed=42, provider="automatic1111",
        width=320, height=240, spool_path=str(work / "spool.png"),
    )  # fmt: skip
    files = [
        RenditionFile("original", original, "png", 320, 240, original.stat().st_size, sha256_hex(original.read_bytes())),
        RenditionFile("thumb", thumb, "webp", 64, 48, thumb.stat().st_size, sha256_hex(thumb.read_bytes())),
    ]
    return row, files


def test_same_image_adopted_a_different_one_kept_and_the_new_one_under_a_conflict_key(store: ObjectStore, tmp_path: Path) -> None:
    publishing = PublishingConfig()
    coffee, chelsea = photo(320, 240), photo(320, 240, "chelsea")
    first = store_files(store, *made(tmp_path, coffee, "t1"), publishing)
    assert first.conflict is None and first.storage_key.endswith(".png") and ".conflict-" not in first.storage_key
    kept = {f.storage_key: store.get(f.storage_key) for f in first.files}
    assert store.head(first.storage_key).metadata[SOURCE_CHECKSUM] == sha256_hex(coffee)  # type: ignore[union-attr]

    # the same image made again (signed at another time: other bytes): adopted, not written again
    again = store_files(store, *made(tmp_path, coffee, "t2"), publishing)
    assert again.conflict is None and again.storage_key == first.storage_key and again.files == first.files
    assert {key: store.get(key) for key in kept} == kept

    # another image at that key: the object there is kept; the new one goes under a conflict key, said once
    other = store_files(store, *made(tmp_path, chelsea, "t3"), publishing)
    stem = conflict_stem(first.storage_key.removesuffix(".png"), sha256_hex(chelsea))
    assert other.storage_key == f"{stem}.png" and other.sidecar_key == f"{stem}.json"
    assert [f.storage_key for f in other.files] == [f"{stem}.png", f"{stem}.thumb.webp"]
    assert other.conflict is not None and other.conflict.startswith(f"store conflict: {first.storage_key} already holds a different image")
    assert {key: store.get(key) for key in kept} == kept  # never overwritten
    assert store.head(f"{stem}.thumb.webp").metadata[SOURCE_CHECKSUM] == sha256_hex(chelsea)  # type: ignore[union-attr]
    # that image made once more: adopted at its conflict key (no third copy)
    before = set(store.keys("content/")) | set(store.keys("review/"))
    repeat = store_files(store, *made(tmp_path, chelsea, "t4"), publishing)
    assert repeat.storage_key == other.storage_key and repeat.files == other.files
    assert set(store.keys("content/")) | set(store.keys("review/")) == before


def test_a_rerun_after_the_database_is_lost_adopts_its_images_and_reports_a_conflict_once(
    make_config, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """Two images stored; the database file is lost and one stored original replaced by another
    photo; the re-run (it pays again: nothing tells it the images exist) ends with both done:
    the first adopted as it is, the second under a conflict key, one warning line, on its row."""
    from tests.ledger_worker import main

    with A1111Server() as server:
        make_config(**paid(server.url), concurrency=1)
        assert main("2026-12-06", 2, 64) == 0
        db_file = tmp_path / "output" / "content-pipeline.db"
        with sqlite3.connect(db_file) as conn:
            keys = [key for (key,) in conn.execute("SELECT storage_key FROM images ORDER BY slot_index")]
        store = open_store((tmp_path / "output").as_uri())
        kept = store.get(keys[0])
        store.delete(keys[1])
        store.put(keys[1], photo(64, 64, "chelsea"), content_type="image/png")  # another image at the second key
        db_file.unlink()  # the database is lost
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert main("2026-12-06", 2, 64) == 0
    rows = sorted(Database(f"sqlite:///{db_file}").images(), key=lambda r: r.slot_index)
    assert [r.status for r in rows] == ["done", "done"]
    assert rows[0].storage_key == keys[0] and rows[0].error is None and store.get(keys[0]) == kept  # adopted, not re-written
    assert rows[1].storage_key is not None and rows[1].storage_key.startswith(keys[1].removesuffix(".png") + ".conflict-")
    assert (rows[1].error or "").startswith(f"store conflict: {keys[1]} already holds a different image")
    assert store.get(keys[1]) == photo(64, 64, "chelsea")  # kept
    said = [r for r in caplog.records if "store conflict" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING, [r.getMessage() for r in said]
