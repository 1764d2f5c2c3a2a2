"""Publishing on real components: reservations racing on SQLite and PostgreSQL, signed
webhooks to a loopback receiver that checks the signature, the backup store (a local
folder and S3 on moto's server) with ``backup verify``."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from domain.model import ImageSlot
from config.publishing import DeliveryConfig, WebhookConfig
from storage.objects import S3Config
from storage.db import Database, DeliveryRecord, ImageRecord
from storage.reservations import list_reservations, reserve_image
from storage.versions import plan_version, versions
from storage.ledger import GeneratedImage, ImageLedger, PlannedImage, ProcessedImage, StoredFile, StoredImage
from storage.objects import LocalStore, ObjectStore, open_store, sha256_hex
from tests.s3server import S3Server

DAY = date(2026, 11, 20)


@pytest.fixture(autouse=True)
def _moto_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's server accepts any SigV4 credentials; boto3 needs some."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def published_images(
    db: Database, count: int, category: str = "food", store: ObjectStore | None = None, qualities: list[float] | None = None, *, review: bool = False
) -> list[ImageRecord]:
    """``count`` images taken through the ledger's transitions to published (``review``: to
    ``in_review`` instead); with ``store`` their original and sidecar are real objects under content/."""
    ledger = ImageLedger(db)
    planned = [
        PlannedImage(ImageSlot("daily", DAY, f"slot-{category}", i, category), "pasta-dish", 1, f"a {category} photo number {i}", "", 64, 64, 30, 7.5, 1000 + i)
        for i in range(count)
    ]
    rows = []
    for i, row in enumerate(ledger.plan(planned)):
        assert row.id is not None
        data = f"image {category} {i}".encode()
        key = f"content/{category}/2026/11/pasta-dish-{row.image_id}.png"
        sidecar = f"content/{category}/2026/11/pasta-dish-{row.image_id}.json"
        if store is not None:
            store.put(key, data, content_type="image/png")
            store.put(sidecar, json.dumps({"files": [{"key": key}]}).encode(), content_type="application/json")
        ledger.claim(row.id, "run-1")
        ledger.mark_generating(row.id, "run-1")
        ledger.mark_generated(row.id, "run-1", GeneratedImage("automatic1111", "sd", 1000 + i, 64, 64, False, 0.1, "/spool/x.png", sha256_hex(data)))
        quality = (qualities or [0.5 + i / 100 for i in range(count)])[i]
        ledger.mark_done(
            row.id,
            "run-1",
            StoredImage(key, sidecar, (StoredFile("original", key, "png", 64, 64, len(data), sha256_hex(data)),)),
            ProcessedImage(quality, {"sharpness": quality}, "0" * 16, (category,)),
        )
        rows.append(ledger.send_to_review(row.id) if review else ledger.publish(row.id))
    return rows


# -- reservations -------------------------------------------------------------------------------
def test_eight_concurrent_reserve_calls_for_five_free_images(db_url: str) -> None:
    """8 threads, 8 connections, one barrier: 5 get 5 different images, 3 get a clear refusal."""
    db = Database(db_url)
    images = published_images(db, 5)
    published_images(db, 2, category="products")  # another category is never handed out
    barrier = threading.Barrier(8)
    results: list[Any] = []
    errors: list[BaseException] = []

    def caller(n: int) -> None:
        try:
            barrier.wait(timeout=60)
            results.append(reserve_image(db, "food", date(2026, 12, 3), channel="instagram", reserved_by=f"caller-{n}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    granted = [r for r in results if r is not None]
    assert len(results) == 8 and len(granted) == 5 and results.count(None) == 3
    assert sorted(r.image_pk for r in granted) == sorted(i.id for i in images)  # 5 distinct images
    assert {r.category for r in granted} == {"food"} and {r.channel for r in granted} == {"instagram"}
    assert len(list_reservations(db)) == 5
    db.dispose()


def test_reserve_takes_the_best_then_release_frees_it_and_the_cli_refuses_clearly(db_url: str, make_config: Any) -> None:
    from cli.main import app

    make_config(database_url=db_url)
    db = Database(db_url)
    images = published_images(db, 3, qualities=[0.4, 0.9, 0.7])
    runner = CliRunner()
    result = runner.invoke(app, ["reserve", "--category", "food", "--for", "2026-12-03", "--channel", "instagram"])
    assert result.exit_code == 0, result.output
    assert f"image {images[1].image_id} reserved for 2026-12-03 on instagram" in result.output  # quality 0.9 first
    ledger = ImageLedger(db)
    assert [ledger.get(r.image_pk).quality_score for r in list_reservations(db)] == [0.9]
    for expected in (images[2], images[0]):
        result = runner.invoke(app, ["reserve", "--category", "food", "--for", "2026-12-04"])
        assert result.exit_code == 0 and expected.image_id in result.output, result.output
    refused = runner.invoke(app, ["reserve", "--category", "food", "--for", "2026-12-05"])
    assert refused.exit_code == 1
    assert "no free published image of category 'food' for 2026-12-05" in refused.output
    assert "Traceback" not in refused.output
    first = list_reservations(db)[0]
    released = runner.invoke(app, ["release", str(first.id)])
    assert released.exit_code == 0 and "released" in released.output
    again = runner.invoke(app, ["reserve", "--category", "food", "--for", "2026-12-05"])
    assert again.exit_code == 0 and images[1].image_id in again.output, again.output
    unknown = runner.invoke(app, ["release", "999999"])
    assert unknown.exit_code == 1 and "no reservation 999999" in unknown.output
    report = runner.invoke(app, ["report", "--since", "2026-11-20", "--until", "2026-11-21"])
    assert report.exit_code == 0, report.output
    calendar = report.output.split("reservations 2026-11-20 to 2026-12-20", 1)[1]
    assert "2026-12-04" in calendar and "2026-12-05" in calendar and images[1].image_id in calendar
    assert "2026-12-03" not in calendar  # released
    db.dispose()


# -- webhooks ------------------------------------------------------------------------------------
class Receiver:
    """A webhook receiver on 127.0.0.1 that checks ``X-Content-Pipeline-Signature`` (HMAC-SHA256
    of the raw body with ``secret``, as GitHub's receivers do) and answers ``script`` statuses
    in order (then 200); a bad signature gets 401."""

    def __init__(self, secret: str, script: list[int] | None = None) -> None:
        self.secret = secret
        self.script = list(script or [])
        self.received: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                """No request lines on stderr."""

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                expected = "sha256=" + hmac.new(owner.secret.encode(), body, hashlib.sha256).hexdigest()
                valid = hmac.compare_digest(expected, self.headers.get("X-Content-Pipeline-Signature", ""))
                owner.received.append({"body": json.loads(body), "valid": valid, "key": self.headers.get("Idempotency-Key")})
                status = 401 if not valid else (owner.script.pop(0) if owner.script else 200)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/images"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def local_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'metrics.db'}")
    yield db
    db.dispose()


def _deliveries(db: Database) -> list[DeliveryRecord]:
    from sqlmodel import select

    with db.session() as session:
        return list(session.exec(select(DeliveryRecord).order_by(DeliveryRecord.id)))  # type: ignore[arg-type]


def test_webhook_is_signed_retried_on_500_and_recorded(local_db: Database, tmp_path: Path) -> None:
    from publishing.delivery import deliver_webhooks

    store = LocalStore(tmp_path / "store")
    [row] = published_images(local_db, 1, store=store)
    waits: list[float] = []
    with Receiver("s3cret-key", script=[500, 503]) as receiver:
        config = DeliveryConfig(
            webhooks=[WebhookConfig(url=receiver.url, secret_env="HOOK_SECRET", max_attempts=4, backoff_s=0.5)], allow_private_addresses=True
        )
        [record] = deliver_webhooks(local_db, store, config, [row], environ={"HOOK_SECRET": "s3cret-key"}, sleep=waits.append)
    assert [r["valid"] for r in receiver.received] == [True, True, True]
    assert (record.status, record.attempts, record.http_status) == ("delivered", 3, 200)
    assert waits == [0.5, 1.0]  # exponential backoff between the three POSTs
    body = receiver.received[-1]["body"]
    assert body["id"] == row.image_id and body["event"] == "image.published" and body["version"] == 1
    assert body["keys"]["original"] == row.storage_key and body["keys"]["provenance"] == row.sidecar_key
    assert body["urls"]["original"].startswith("file://") and body["prompt"] == row.prompt
    assert body["tags"] == ["food"] and body["quality_score"] == row.quality_score
    assert receiver.received[-1]["key"] == row.image_id
    assert [(d.kind, d.status, d.image_pk) for d in _deliveries(local_db)] == [("webhook", "delivered", row.id)]


def test_webhook_gives_up_after_the_configured_attempts(local_db: Database, tmp_path: Path) -> None:
    from publishing.delivery import deliver_webhooks

    store = LocalStore(tmp_path / "store")
    [row] = published_images(local_db, 1, store=store)
    with Receiver("k", script=[500] * 10) as receiver:
        config = DeliveryConfig(
            webhooks=[WebhookConfig(url=receiver.url, secret_env="HOOK_SECRET", max_attempts=3, backoff_s=0, include_prompt=False)],
            allow_private_addresses=True,
        )
        [record] = deliver_webhooks(local_db, store, config, [row], environ={"HOOK_SECRET": "k"})
    assert len(receiver.received) == 3 and all(r["valid"] for r in receiver.received)
    assert receiver.received[0]["body"]["prompt"] is None  # a private prompt is not sent
    stored = _deliveries(local_db)[-1]
    assert (record.status, stored.status, stored.attempts, stored.http_status) == ("failed", "failed", 3, 500)
    assert "HTTP 500" in (stored.error or "")
    # a wrong secret: the receiver answers 401, which is not retried
    with Receiver("the-right-one") as receiver:
        config = DeliveryConfig(webhooks=[WebhookConfig(url=receiver.url, secret_env="HOOK_SECRET", max_attempts=3, backoff_s=0)], allow_private_addresses=True)
        [record] = deliver_webhooks(local_db, store, config, [row], environ={"HOOK_SECRET": "a-wrong-one"})
    assert [r["valid"] for r in receiver.received] == [False]
    assert (record.status, record.attempts, record.http_status) == ("failed", 1, 401)
    # no secret in the environment: nothing is sent unsigned
    [record] = deliver_webhooks(local_db, store, config, [row], environ={"HOOK_SECRET": ""})
    assert record.status == "failed" and "HOOK_SECRET is not set" in (record.error or "")


def test_webhook_to_a_private_address_is_refused(local_db: Database, tmp_path: Path) -> None:
    from publishing.delivery import deliver_webhooks

    store = LocalStore(tmp_path / "store")
    [row] = published_images(local_db, 1, store=store)
    with Receiver("k") as receiver:
        https_loopback = receiver.url.replace("http://", "https://")
        config = DeliveryConfig(
            webhooks=[
                WebhookConfig(url=receiver.url, secret_env="S", backoff_s=0),
                WebhookConfig(url=https_loopback, secret_env="S", backoff_s=0),
                WebhookConfig(url="https://10.1.2.3/hook", secret_env="S", backoff_s=0),
                WebhookConfig(url="https://169.254.169.254/latest", secret_env="S", backoff_s=0),
            ]
        )
        records = deliver_webhooks(local_db, store, config, [row], environ={"S": "k"})
    assert receiver.received == []  # nothing reached the loopback receiver
    assert [r.status for r in records] == ["refused"] * 4 and all(r.attempts == 0 for r in records)
    assert "is not https" in (records[0].error or "")
    assert "non-public address 127.0.0.1" in (records[1].error or "")
    assert "non-public address 10.1.2.3" in (records[2].error or "")
    assert "non-public address 169.254.169.254" in (records[3].error or "")


# -- backup ----------------------------------------------------------------------------------------
def _backup_case(primary: ObjectStore, backup: ObjectStore, corrupt: Any, remove: Any) -> None:
    from storage.backup import copy_to_backup, verify

    keys = []
    for i in range(3):
        key = f"content/food/2026/11/dish-{i}.png"
        primary.put(key, f"real image bytes {i}".encode() * 50, content_type="image/png", metadata={"image-id": str(i)})
        keys.append(key)
    primary.put("review/food/2026/11/waiting.png", b"not published", content_type="image/png")
    assert copy_to_backup(primary, backup, keys) == keys
    assert verify(primary, backup).ok and len(verify(primary, backup).checked) == 3
    remove(keys[0])
    corrupt(keys[1])
    report = verify(primary, backup)
    assert report.missing == [keys[0]]
    assert [d[0] for d in report.differing] == [keys[1]]
    assert report.differing[0][1] == sha256_hex(b"real image bytes 1" * 50) != report.differing[0][2]
    assert not report.ok


def test_backup_verify_finds_a_deleted_and_a_corrupted_object_local(tmp_path: Path) -> None:
    primary, backup = LocalStore(tmp_path / "primary"), LocalStore(tmp_path / "backup")

    def corrupt(key: str) -> None:  # bytes changed on disk, the metadata still claims the old checksum
        path = tmp_path / "backup" / key
        path.write_bytes(path.read_bytes()[:-5] + b"XXXXX")

    _backup_case(primary, backup, corrupt, lambda key: (tmp_path / "backup" / key).unlink())


def test_backup_verify_finds_a_deleted_and_a_corrupted_object_s3(tmp_path: Path) -> None:
    with S3Server() as s3:
        s3.client().create_bucket(Bucket="backup")
        backup = open_store("s3://backup/copies", s3=S3Config(endpoint_url=s3.url))
        primary = LocalStore(tmp_path / "primary")

        def corrupt(key: str) -> None:  # overwritten behind our back, with the old sha256 metadata
            head = backup.head(key)
            assert head is not None
            s3.client().put_object(Bucket="backup", Key=f"copies/{key}", Body=b"bit rot", Metadata={"sha256": head.checksum})

        _backup_case(primary, backup, corrupt, lambda key: s3.client().delete_object(Bucket="backup", Key=f"copies/{key}"))


def test_publishing_copies_to_the_backup_and_the_cli_verifies_it(tmp_path: Path, make_config: Any) -> None:
    """Publishing copies every published object to the S3 backup; ``backup verify`` exits 0,
    then 1 naming the object deleted from the backup."""
    from cli.main import app
    from storage.ledger import ImageLedger
    from publishing.publish import publish_image
    from wiring.runtime import get_runtime

    with S3Server() as s3:
        s3.client().create_bucket(Bucket="copies")
        make_config(publishing={"backup_url": "s3://copies/cp"}, s3={"endpoint_url": s3.url})
        rt = get_runtime()
        backup = open_store("s3://copies/cp", s3=S3Config(endpoint_url=s3.url))
        rows = published_images(rt.db, 2, store=rt.store)
        ledger = ImageLedger(rt.db)
        for row in rows:  # published before the backup existed: publishing again is a no-op ...
            assert publish_image(ledger, rt.store, row.id, backup=backup).published_at == row.published_at
        runner = CliRunner()
        result = runner.invoke(app, ["backup", "verify"])
        assert result.exit_code == 1 and "4 objects checked: 4 missing" in result.output, result.output
        from storage.backup import copy_to_backup
        from publishing.publish import published_keys

        for row in rows:  # ... so copy them as publishing does
            copy_to_backup(rt.store, backup, published_keys(rt.db, row))
        result = runner.invoke(app, ["backup", "verify"])
        assert result.exit_code == 0 and "4 objects checked: 0 missing, 0 differing" in result.output, result.output
        s3.client().delete_object(Bucket="copies", Key=f"cp/{rows[0].storage_key}")
        result = runner.invoke(app, ["backup", "verify"])
        assert result.exit_code == 1 and f"missing   {rows[0].storage_key}" in result.output


# -- the ledger's publishing transitions -------------------------------------------------------------
def test_review_transitions_versions_and_one_published_version_per_slot(db_url: str) -> None:
    from storage.ledger import TransitionError

    db = Database(db_url)
    ledger = ImageLedger(db)
    [first] = published_images(db, 1)
    assert first.published_at is not None and first.status == "done"
    with pytest.raises(TransitionError, match="done -> approved is not allowed"):
        ledger.approve(first.id, "ana")
    v2 = plan_version(db, first.id, seed=7)
    assert plan_version(db, first.id).id == v2.id  # idempotent: the same row again
    assert (v2.version, v2.previous_pk, v2.seed, v2.status) == (2, first.id, 7, "planned")
    assert v2.idempotency_key == f"{first.idempotency_key}:v2" and v2.image_id != first.image_id
    key = f"content/food/2026/11/v2-{v2.image_id}.png"
    ledger.claim(v2.id, "run-2")
    ledger.mark_generating(v2.id, "run-2")
    ledger.mark_generated(v2.id, "run-2", GeneratedImage("automatic1111", "sd", 7, 64, 64, False, 0.1, "/s", "0" * 64))
    ledger.mark_done(v2.id, "run-2", StoredImage(key, None, (StoredFile("original", key, "png", 64, 64, 1, "0" * 64),)))
    in_review = ledger.send_to_review(v2.id)
    assert in_review.status == "in_review" and in_review.run_key is None
    with pytest.raises(TransitionError, match="done -> rejected"):
        ledger.reject(first.id, "ana", "no")  # a published image is not reviewed again
    approved = ledger.approve(v2.id, "ana", "better")
    assert (approved.status, approved.reviewed_by, approved.review_note) == ("approved", "ana", "better")
    ledger.publish(v2.id)
    assert [(r.version, r.status) for r in versions(db, first.id)] == [(1, "superseded"), (2, "done")]
    v3 = plan_version(db, v2.id)
    assert (v3.version, v3.previous_pk) == (3, v2.id)
    with pytest.raises(TransitionError, match="superseded -> in_review"):
        ledger.send_to_review(first.id)
    # a published image that is superseded is no longer reservable: only version 2 is
    reservation = reserve_image(db, "food", date(2026, 12, 1))
    assert reservation is not None and reservation.image_pk == v2.id
    assert reserve_image(db, "food", date(2026, 12, 2)) is None
    db.dispose()


def test_a_private_prompt_is_neither_sent_nor_shown_in_the_review_form(local_db: Database, tmp_path: Path) -> None:
    from publishing.delivery import webhook_payload
    from publishing.review import image_details, review_form

    store = LocalStore(tmp_path / "store")
    [row] = published_images(local_db, 1, store=store)
    assert row.id is not None and row.prompt
    assert webhook_payload(row, local_db.renditions(row.id), store, include_prompt=True, link_expires_s=60)["prompt"] == row.prompt
    row.prompt_private = True  # embed_prompt: false
    assert webhook_payload(row, local_db.renditions(row.id), store, include_prompt=True, link_expires_s=60)["prompt"] is None
    shown = image_details(row, None)
    assert row.prompt not in shown and "private prompt" in shown
    assert row.prompt not in str(review_form([row]).model_json_schema())


def test_review_form_shows_each_image_above_its_own_decision_and_all_images_decides_the_rest(local_db: Database, tmp_path: Path) -> None:
    """Each decision field's description (rendered as markdown in the field's header by the
    Prefect UI) holds that image's thumbnail, provider, cost and prompt; "reject all" applies
    to the images left at wait, never over an image's own decision."""
    from config.secrets import Secrets
    from config.settings import Settings
    from publishing.review import Publisher, apply_decisions, review_form

    store = LocalStore(tmp_path / "store")
    rows = published_images(local_db, 3, store=store, review=True)
    assert {r.status for r in rows} == {"in_review"}
    form = review_form(rows, {r.image_id: f"data:image/jpeg;base64,{r.image_id}" for r in rows})
    properties = form.model_json_schema()["properties"]
    assert properties["all_images"]["enum"] == ["wait", "approve all", "reject all"]
    for row in rows:
        details = properties[f"image_{row.image_id}"]["description"]
        assert details.startswith(f"![{row.image_id}](data:image/jpeg;base64,{row.image_id})")
        assert "automatic1111 (sd)" in details and f"USD {row.cost_usd:.4f}" in details and row.prompt in details
        assert all(other.image_id not in details for other in rows if other is not row)
    publisher = Publisher(db=local_db, store=store, settings=Settings(), secrets=Secrets(), backup=None)
    first, *rest = rows
    decided = form(reviewer="ann", all_images="reject all", **{f"image_{first.image_id}": "approve"})
    assert apply_decisions(publisher, rows, decided) == []
    ledger = ImageLedger(local_db)
    assert ledger.get(first.id).status == "done" and ledger.get(first.id).published_at is not None
    assert [ledger.get(r.id).status for r in rest] == ["rejected", "rejected"]
    assert {ledger.get(r.id).reviewed_by for r in rows} == {"ann"}
