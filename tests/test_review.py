"""The review step in-process (a flow run outside a deployment does not suspend): a category
with review required waits in review under review/, the CLI approves (published under
content/, announced through Apprise and a signed webhook), rejects (kept under rejected/
with the note), regenerates (version 2 of the slot, linked to version 1) and shows the chain."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from domain.model import ImageStatus
from wiring.runtime import get_runtime
from tests.conftest import a1111_config
from tests.servers import A1111Server, HttpSink

pytestmark = pytest.mark.usefixtures("prefect_server")

RUN_DATE = date(2026, 11, 18)


def files_under(output: Path, top: str) -> list[str]:
    base = output / top
    return sorted(p.relative_to(output).as_posix() for p in base.rglob("*") if p.is_file() and not p.name.endswith(".meta.json")) if base.exists() else []


def test_review_required_waits_then_cli_approves_rejects_regenerates(
    make_config: Any, a1111: A1111Server, sink: HttpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import app
    from flows.daily import daily_content
    from storage.db import DeliveryRecord
    from storage.ledger import ImageLedger
    from storage.versions import versions
    from publishing.review import review_form, thumbnail_data_uri

    monkeypatch.setenv("PUBLISH_APPRISE_URLS", f"json://127.0.0.1:{sink.httpd.server_address[1]}/published")
    monkeypatch.setenv("HOOK_SECRET", "hook-secret")
    make_config(
        **a1111_config(a1111.url),
        dedup={"enabled": False},
        publishing={"review": {"food": "required"}, "backup_url": (tmp_path / "backup").as_uri()},
        delivery={"webhooks": [{"url": f"{sink.url}/hook", "secret_env": "HOOK_SECRET", "backoff_s": 0}], "allow_private_addresses": True},
    )
    summary = daily_content(run_date=RUN_DATE, categories=["food", "products"])
    rt = get_runtime()
    output = tmp_path / "output"
    rows = {r.id: r for r in rt.db.images()}
    food = sorted((r for r in rows.values() if r.category == "food"), key=lambda r: r.slot_index)
    products = [r for r in rows.values() if r.category == "products"]
    assert {i.status for i in summary.images} == {"in_review", "done"}
    # waiting for a person is not a failure: the run ends Completed and says how many wait
    assert summary.complete and summary.verdict() == "2 of 4 images done, 2 wait for review (content-pipeline review list)"
    assert [r.status for r in food] == ["in_review", "in_review"] and all(r.published_at is None for r in food)
    assert all(r.status == "done" and r.published_at is not None for r in products)  # auto: published at once
    assert all(r.storage_key.startswith("review/food/") for r in food)
    assert all(r.storage_key.startswith("content/products/") for r in products)
    assert not files_under(output, "content/food") and len(files_under(output, "review/food")) == 2 * 4
    # the auto-published products: one Apprise announcement with the count and a link each, a webhook each
    announcements = [json.loads(r["body"]) for r in sink.received if r["path"] == "/published"]
    assert len(announcements) == 1 and announcements[0]["title"] == "content-pipeline: 2 images published"
    assert all(r.image_id in announcements[0]["message"] and "file://" in announcements[0]["message"] for r in products)
    hooks = [json.loads(r["body"]) for r in sink.received if r["path"] == "/hook"]
    assert sorted(h["id"] for h in hooks) == sorted(r.image_id for r in products)
    # the backup holds every published object, the review files are not published
    assert sorted(files_under(tmp_path / "backup", "content")) == files_under(output, "content")

    thumbnails = {r.image_id: thumbnail_data_uri(ImageLedger(rt.db), rt.store, r) for r in food}
    schema = review_form(food, thumbnails).model_json_schema()["properties"]
    assert all(schema[f"image_{r.image_id}"]["description"].count("data:image/jpeg;base64,") == 1 for r in food)

    runner = CliRunner()
    listed = runner.invoke(app, ["review", "list"])
    assert listed.exit_code == 0 and "2 image(s) in review" in listed.output
    assert all(r.image_id in listed.output for r in food)

    approved, rejected = food
    result = runner.invoke(app, ["review", "approve", approved.image_id, "--reviewer", "alice", "--note", "lovely"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["review", "reject", rejected.image_id, "--reviewer", "bob", "--note", "too dark"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(app, ["review", "approve", rejected.image_id])
    assert again.exit_code == 1 and "is rejected, not in review" in again.output

    a, r = rt.db.get(approved.id), rt.db.get(rejected.id)
    assert (a.status, a.reviewed_by, a.review_note) == ("done", "alice", "lovely") and a.published_at and a.reviewed_at
    assert a.storage_key.startswith("content/food/") and (output / a.storage_key).is_file()
    assert (r.status, r.reviewed_by, r.review_note) == ("rejected", "bob", "too dark")
    assert r.storage_key.startswith("rejected/food/") and (output / r.storage_key).is_file()
    note = json.loads((output / (r.storage_key.rsplit(".", 1)[0] + ".review.json")).read_text())
    assert note["reviewer"] == "bob" and note["note"] == "too dark"
    assert not files_under(output, "review")  # moved, nothing left behind
    # the files moved byte for byte, the sidecar lists the new keys
    assert {f.storage_key for f in rt.db.renditions(a.id)} <= set(files_under(output, "content"))
    sidecar = json.loads((output / a.sidecar_key).read_text())
    assert {f["key"] for f in sidecar["files"]} == {f.storage_key for f in rt.db.renditions(a.id)}
    assert sidecar["provenance"] and a.sidecar_key.startswith("content/")

    # regenerate the approved one: version 2 of its slot, reviewed in turn (food requires it)
    result = runner.invoke(app, ["regenerate", approved.image_id, "--seed", "7"])
    assert result.exit_code == 0, result.output
    chain = versions(rt.db, approved.id)
    assert [(v.version, v.status) for v in chain] == [(1, "done"), (2, "in_review")]
    v2 = chain[1]
    assert v2.previous_pk == approved.id and v2.seed == 7 and v2.trigger == "regenerate"
    assert v2.idempotency_key == f"{approved.idempotency_key}:v2" and v2.storage_key.startswith("review/")
    assert a1111.requests[-1]["json"]["seed"] == 7
    result = runner.invoke(app, ["review", "approve", v2.image_id, "--reviewer", "carol"])
    assert result.exit_code == 0, result.output
    chain = versions(rt.db, approved.id)
    assert [(v.version, v.status) for v in chain] == [(1, "superseded"), (2, "done")]  # one published per slot
    shown = runner.invoke(app, ["history", "--image", approved.image_id])
    assert shown.exit_code == 0 and "2 version(s)" in shown.output and v2.image_id in shown.output
    assert "superseded" in shown.output and "carol" in shown.output

    from sqlmodel import select

    with rt.db.session() as session:
        deliveries = list(session.exec(select(DeliveryRecord)))
    assert {d.status for d in deliveries} == {"delivered"}
    assert sorted(d.image_pk for d in deliveries if d.kind == "webhook") == sorted([p.id for p in products] + [approved.id, v2.id])
    assert ImageStatus(rt.db.get(rejected.id).status) is ImageStatus.rejected

    # the same date again: nothing is made twice, the decisions stand, the run ends Completed
    # (rejected and superseded are a reviewer's decisions, not failures)
    again_summary = daily_content(run_date=RUN_DATE, categories=["food", "products"])
    assert again_summary.verdict() == "3 of 5 images done, 1 rejected, 1 superseded", again_summary.verdict()
    assert len(rt.db.images()) == 5


def test_the_run_end_counts_review_decisions_and_waiting_but_not_an_unpublished_approval() -> None:
    """RunSummary's rule (the exit code and the flow run's state): done, rejected, superseded
    and in_review end a run Completed; approved but not published, a placeholder, failed do not."""
    from reporting.summary import ImageSummary, RunSummary

    def image(n: int, status: str, placeholder: bool = False) -> ImageSummary:
        return ImageSummary(f"img{n}", f"s#{n}", "t", "p", placeholder, 0.0, 0.0, status, None, None)

    def summary(*images: ImageSummary) -> RunSummary:
        return RunSummary("daily", list(images), "output", "sqlite://", [])

    decided = summary(image(1, "done"), image(2, "rejected"), image(3, "superseded"), image(4, "in_review"))
    assert decided.complete
    assert decided.verdict() == ("1 of 4 images done, 1 rejected, 1 superseded, 1 waits for review (content-pipeline review list)")
    unpublished = summary(image(1, "done"), image(2, "approved"))
    assert not unpublished.complete and unpublished.verdict() == "1 of 2 images not done as real content: 1 approved"
    mixed = summary(image(1, "rejected"), image(2, "placeholder", placeholder=True), image(3, "failed"))
    assert not mixed.complete
    assert mixed.verdict() == "2 of 3 images not done as real content: 1 failed, 1 placeholder"


def test_the_verdict_says_held_by_another_run_only_for_a_live_lease() -> None:
    """A non-terminal image is ``held by another run`` only while a lease holds it; one whose
    upload failed waits to upload; any other a later run resumes."""
    from reporting.summary import ImageSummary, RunSummary

    def image(n: int, status: str, *, error: str | None = None, held: bool = False) -> ImageSummary:
        return ImageSummary(f"img{n}", f"s#{n}", "t", "p", False, 0.0, 0.0, status, None, error, held=held)

    summary = RunSummary(
        "daily", [image(1, "processed", error="store is read-only"), image(2, "generating", held=True), image(3, "planned")], "output", "sqlite://", []
    )
    assert summary.verdict() == (
        "3 of 3 images not done as real content: 1 held by another run, "
        "1 unfinished (a later run resumes it), "
        "1 waiting to upload (the store failed; see the errors); "
        "the store failed: store is read-only"
    )


def test_a_late_upload_goes_through_review_like_any_image(make_config: Any, a1111: A1111Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store (S3 on moto's server) is down during the first run: the images wait
    upload-pending. The next run uploads them first, then publishes them as the run's own
    would be: food (review required) waits ``in_review`` under review/, products (auto) is
    published under content/. A late upload never skips the review."""
    from flows.daily import daily_content
    from tests.s3server import S3Server, free_port

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    make_config(
        **a1111_config(a1111.url),
        dedup={"enabled": False},
        publishing={"review": {"food": "required"}},
        storage_url="s3://content",
        s3={"endpoint_url": f"http://127.0.0.1:{port}", "max_attempts": 1, "connect_timeout_s": 1},
    )
    daily_content(run_date=RUN_DATE, categories=["food", "products"], return_state=True)
    rt = get_runtime()
    first = rt.db.images()
    assert len(first) == 4 and all(r.status == "processed" and r.upload_pending for r in first)
    with S3Server(port) as server:
        server.client().create_bucket(Bucket="content")
        daily_content(run_date=date(2026, 11, 19), categories=["landscapes"], return_state=True)
        keys = {o["Key"] for o in server.client().list_objects_v2(Bucket="content").get("Contents", [])}
    late = {r.id: r for r in rt.db.images() if r.run_date == RUN_DATE}
    food = [r for r in late.values() if r.category == "food"]
    products = [r for r in late.values() if r.category == "products"]
    assert len(food) == 2 and all(r.status == ImageStatus.in_review.value and r.published_at is None for r in food)
    assert all(r.storage_key.startswith("review/food/") and r.storage_key in keys for r in food)
    assert len(products) == 2 and all(r.status == "done" and r.published_at is not None for r in products)
    assert all(r.storage_key.startswith("content/products/") and r.storage_key in keys for r in products)
    assert not any(r.upload_pending for r in late.values())
    assert not [k for k in keys if k.startswith("content/food/")]  # nothing of food published before its review
