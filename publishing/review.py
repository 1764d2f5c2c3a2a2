"""The review step: publish at once, or wait for a person's decision in the Prefect UI.

``publish_or_review`` is the one call the orchestration makes once a run's images are
stored. Per category (``publishing.review``):

* ``auto``: each stored real image is published (publishing.publish.publish_image);
* ``required``: each waits ``in_review`` (its files under ``review/``, where the upload
  put them: ``staging_folder``), and, when the run belongs to a deployment, the flow run
  SUSPENDS (``prefect.flow_runs.suspend_flow_run(wait_for_input=...)``, no worker held)
  until someone submits the form the Prefect UI shows on the run page ("Resume"): a
  per image, its thumbnail, prompt, provider and cost directly above its decision (approve /
  reject / regenerate / wait) and a note, "All images" (approve all / reject all), and the
  reviewer's name. The API does the same:
  ``POST /api/flow_runs/{id}/resume`` with ``{"run_input": {...}}``
  (https://docs.prefect.io/v3/advanced/interactive). Resumed, Prefect runs the flow
  again from the start: every step before is idempotent (rows already made are not made
  again), and ``suspend_flow_run`` with the same key returns the submitted input at once.
  Approved images are published, rejected ones moved under ``rejected/`` with the note,
  "regenerate" makes version n+1 of the slot (storage.versions.plan_version),
  which is produced and reviewed in the next round (at most ``max_review_rounds``).

Outside a deployment (the CLI's in-process runs) nothing suspends: the images wait
``in_review`` for ``content-pipeline review approve|reject``. The reviewer and the time
are recorded on each image.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import ConfigDict, Field, create_model

from domain.model import ImageStatus
from domain.errors import ReviewerRefusedError
from domain.log import get_logger
from config.secrets import Secrets
from config.settings import Settings
from generation.upload import REVIEW, staging_folder
from publishing.clients import check_reviewer, deliver_by_client
from publishing.delivery import announce
from publishing.publish import publish_image, reject_image, relocate, top_folder
from storage.db import Database, ImageRecord
from storage.ledger import ImageLedger
from storage.versions import plan_version
from storage.objects import ObjectStore
from PIL import Image
from storage.crypto import is_encrypted
from sqlmodel import select

S = ImageStatus
Decision = Literal["wait", "approve", "reject", "regenerate"]
#: Statuses of a stored image the publishing step starts from.
STORED = (S.done, S.uploaded)


def field_name(image_id: str) -> str:
    return f"image_{image_id}"


def note_name(image_id: str) -> str:
    return f"note_{image_id}"


#: The form's "all images" field: applied to every image whose own decision stays ``wait``.
ALL_IMAGES = "all_images"
AllDecision = Literal["wait", "approve all", "reject all"]
#: Side (pixels) of the thumbnail shown above each image's decision in the review form.
THUMBNAIL_SIDE = 384


def image_details(row: ImageRecord, thumbnail: str | None) -> str:
    """The markdown the Prefect UI renders directly above one image's decision field (a
    schema property's ``description`` is rendered as markdown in the field's header):
    the thumbnail, the version, category and template, the provider and model, the cost
    (USD) and the prompt."""
    prompt = shown_prompt(row).replace("\n", " ")[:400]
    return "\n\n".join(
        [
            f"![{row.image_id}]({thumbnail})" if thumbnail else "(no thumbnail)",
            f"**v{row.version}** · {row.category}/{row.template or '-'} · "
            f"**provider** {row.provider or '-'} ({row.model or '-'}) · **cost** USD {row.cost_usd:.4f}",
            f"> {prompt}",
        ]
    )


def review_form(rows: Sequence[ImageRecord], thumbnails: dict[str, str | None] | None = None) -> type[Any]:
    """The RunInput model of one review round: ``reviewer``, ``all_images`` (wait / approve
    all / reject all: applied to each image left at ``wait``), a general ``note``, and per
    image a decision (``wait`` = no decision yet) whose description holds that image's
    thumbnail and details (``image_details``; ``thumbnails``: image id -> data URI), then
    its note. Unknown keys are ignored, so the input of a round loads again after some
    images were decided from the CLI."""
    from prefect.input import RunInput  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    thumbnails = thumbnails or {}
    fields: dict[str, Any] = {
        "reviewer": (str, Field(min_length=1, max_length=120, title="Reviewer", description="Your name: recorded on every image you decide.")),
        ALL_IMAGES: (
            AllDecision,
            Field(default="wait", title="All images", description="**approve all** / **reject all**: applied to every image below left at *wait*."),
        ),
        "note": (str, Field(default="", max_length=4000, title="Note", description="Applies to every image without its own note.")),
    }
    for row in rows:
        label = f"Decision on {row.image_id}"
        details = image_details(row, thumbnails.get(row.image_id))
        fields[field_name(row.image_id)] = (Decision, Field(default="wait", title=label, description=details))
        fields[note_name(row.image_id)] = (str, Field(default="", max_length=4000, title=f"Note on {row.image_id}"))
    base = type("ReviewInput", (RunInput,), {"model_config": ConfigDict(extra="ignore")})
    model: type[Any] = create_model("ImageReview", __base__=base, **fields)
    return model


def thumbnail_data_uri(ledger: ImageLedger, store: Any, row: ImageRecord, side: int = THUMBNAIL_SIDE) -> str | None:
    """A ``data:image/jpeg;base64,...`` thumbnail (``side`` pixels) of row's smallest stored
    rendition: the UI shows it whatever the store (a ``file://`` link would be blocked)."""

    assert row.id is not None
    files = ledger.db.renditions(row.id)
    if not files:
        return None
    # the smallest rendition at least ``side`` pixels wide or high (else the largest): sharp, small to send
    large = [f for f in files if max(f.width, f.height) >= side]
    smallest = min(large, key=lambda f: f.width * f.height) if large else max(files, key=lambda f: f.width * f.height)
    try:
        with Image.open(io.BytesIO(store.get(smallest.storage_key))) as image:
            image.thumbnail((side, side))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=80)
    except Exception as exc:
        get_logger().warning("no thumbnail for %s: %s", row.image_id, exc)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def shown_prompt(row: ImageRecord) -> str:
    """The prompt as the review form may show it: a private prompt (``embed_prompt: false``)
    never leaves the metrics database (the form is stored by the Prefect server)."""

    if getattr(row, "prompt_private", False):
        return "(private prompt: content-pipeline review list shows it)"
    if is_encrypted(row.prompt):
        return "(prompt encrypted at rest)"
    return row.prompt or "-"


def review_description(rows: Sequence[ImageRecord], round_no: int) -> str:
    """The markdown above the form: the round and what each choice does (each image's
    thumbnail and details sit above its own decision: ``review_form``)."""
    return "\n".join(
        [
            f"### Review round {round_no}: {len(rows)} image{'s' if len(rows) != 1 else ''}",
            "",
            "Per image below: **approve** (publish), **reject** (kept under rejected/ with your note), "
            "**regenerate** (a new version, reviewed next), or wait; **All images** decides every image left at wait.",
        ]
    )


def _in_deployment() -> bool:
    try:
        from prefect.runtime import deployment, flow_run  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

        return bool(flow_run.id and deployment.id)
    except Exception:
        return False


class Publisher:
    """The publishing step over a ledger, a store and an optional backup store; the
    composition root (wiring.runtime.Runtime.publisher) builds it."""

    def __init__(self, *, db: Database, store: ObjectStore, settings: Settings, secrets: Secrets, backup: ObjectStore | None) -> None:
        self.db = db
        self.settings = settings
        self.secrets = secrets
        self.ledger = ImageLedger(db)
        self.store = store
        self.backup = backup
        #: Rows this publisher published (and has not announced yet): see ``deliver_new``.
        self.newly_published: list[ImageRecord] = []

    def _publish(self, pk: int, run_key: str | None = None) -> ImageRecord:
        before = self.ledger.get(pk).published_at
        row = publish_image(self.ledger, self.store, pk, backup=self.backup, run_key=run_key)
        if before is None and row.published_at is not None:
            self.newly_published.append(row)
        return row

    # -- one image ----------------------------------------------------------------------
    def stage(self, pk: int) -> ImageRecord:
        """A stored real image -> published (auto) or ``in_review`` (required); other rows
        unchanged. The claim a run may still hold on the row is released."""
        row = self.ledger.get(pk)
        if S(row.status) not in STORED or row.published_at is not None or row.is_placeholder or not row.storage_key:
            return row
        if staging_folder(row.category, self.settings.publishing) == REVIEW:
            stored, old = relocate(self.ledger.db, self.store, row, REVIEW) if top_folder(row.storage_key) != REVIEW else (None, [])
            row = self.ledger.send_to_review(pk, stored, run_key=row.run_key)
            for key in old:
                self.store.delete(key)
            return row
        return self._publish(pk, row.run_key)

    def approve(self, pk: int, reviewer: str, note: str | None = None) -> ImageRecord:
        """``in_review`` -> ``approved`` -> ``published``. ReviewerRefusedError when the image's
        client does not list ``reviewer`` (publishing/clients.py), the image left as it is."""
        check_reviewer(self.settings.clients, self.ledger.get(pk), reviewer)
        if S(self.ledger.get(pk).status) is S.in_review:
            self.ledger.approve(pk, reviewer, note)
        return self._publish(pk)

    def reject(self, pk: int, reviewer: str, note: str | None = None) -> ImageRecord:
        """-> ``rejected``; ReviewerRefusedError as ``approve``."""
        check_reviewer(self.settings.clients, self.ledger.get(pk), reviewer)
        return reject_image(self.ledger, self.store, pk, reviewer=reviewer, note=note)

    def regenerate(self, pk: int, reviewer: str, note: str | None = None, *, seed: int | None = None) -> ImageRecord:
        """Reject row ``pk`` with ``note`` (when in review) and plan version n+1 of its slot;
        ReviewerRefusedError as ``approve``."""
        check_reviewer(self.settings.clients, self.ledger.get(pk), reviewer)
        if S(self.ledger.get(pk).status) in (S.in_review, S.approved):
            self.reject(pk, reviewer, f"regenerate: {note}" if note else "regenerate")
        return plan_version(self.ledger.db, pk, seed=seed)

    # -- delivery -----------------------------------------------------------------------
    def deliver_new(self) -> None:
        """Apprise announcement and webhooks for the rows published since the last call (never raises)."""
        rows, self.newly_published = self.newly_published, []
        if not rows:
            return
        try:
            deliver_by_client(self.db, self.store, self.settings.delivery, self.settings.clients, rows)
            announce(self.db, self.store, self.secrets, rows, link_expires_s=self.settings.delivery.link_expires_s)
        except Exception:
            get_logger().exception("delivery of %d published images failed", len(rows))


def publish_or_review(publisher: Publisher, pks: Sequence[int], run_key: str | None = None, *, produce: Callable[[int, str], Any]) -> list[ImageRecord]:
    """THE ORCHESTRATION'S CALL, once the images ``pks`` of a run are stored (status ``done``
    or ``uploaded``): publish them or send them to review, suspend the flow run for the
    review when it runs from a deployment, apply the decisions, produce the requested new
    versions with ``produce(pk, run_key)`` (the per-image process of that run) and
    review those in turn. Returns the rows of ``pks`` and of the versions made, as they end.
    Idempotent: a re-run (a resumed suspended run starts again) repeats nothing."""
    ledger = publisher.ledger
    settings = publisher.settings.publishing
    log = get_logger()
    for pk in pks:
        publisher.stage(pk)
    publisher.deliver_new()
    known = _with_versions(ledger, list(pks))  # a resumed run finds the versions its earlier rounds made
    for round_no in range(1, settings.max_review_rounds + 1):
        waiting = [r for r in ledger.rows(known) if S(r.status) is S.in_review]
        if not waiting:
            break
        if not _in_deployment():
            log.warning("%d image(s) wait in review (content-pipeline review list); this run is not from a deployment, so it does not suspend", len(waiting))
            break
        decisions = _suspend_for(publisher, waiting, round_no, settings.review_timeout_s)
        new_versions = apply_decisions(publisher, waiting, decisions)
        publisher.deliver_new()
        if new_versions:
            for pk in new_versions:
                if pk not in known:
                    known.append(pk)
                produce(pk, run_key or "review")
                publisher.stage(pk)
            publisher.deliver_new()
    return ledger.rows(known)


def _with_versions(ledger: ImageLedger, pks: list[int]) -> list[int]:
    """``pks`` and every later version made from them (the ``previous_pk`` chain), in order."""

    known = list(pks)
    frontier = list(pks)
    while frontier:
        with ledger.db.session() as session:
            query = select(ImageRecord.id).where(ImageRecord.previous_pk.in_(frontier))  # type: ignore[union-attr]
            found = [pk for pk in session.exec(query.order_by(ImageRecord.id)) if pk is not None and pk not in known]  # type: ignore[arg-type]
        known.extend(found)
        frontier = found
    return known


def _suspend_for(publisher: Publisher, waiting: Sequence[ImageRecord], round_no: int, timeout_s: int) -> Any:
    from prefect.flow_runs import suspend_flow_run  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    thumbnails = {row.image_id: thumbnail_data_uri(publisher.ledger, publisher.store, row) for row in waiting}
    form = review_form(waiting, thumbnails)
    description = review_description(waiting, round_no)
    get_logger().info(
        "review round %d: %d image(s) wait for a decision; the run suspends (Resume in the Prefect UI, or POST /api/flow_runs/<id>/resume)",
        round_no,
        len(waiting),
    )
    return suspend_flow_run(wait_for_input=form.with_initial_data(description=description), timeout=timeout_s, key=f"review-round-{round_no}")


def _may_decide(publisher: Publisher, row: ImageRecord, reviewer: str) -> bool:
    """False (and a warning) when the image's client does not list ``reviewer``: it stays in review."""
    try:
        check_reviewer(publisher.settings.clients, row, reviewer)
    except ReviewerRefusedError as exc:
        get_logger().warning("%s: left in review", exc)
        return False
    return True


def apply_decisions(publisher: Publisher, waiting: Sequence[ImageRecord], decisions: Any) -> list[int]:
    """Apply one round's decisions (the submitted ``review_form`` input, or its dict) to the
    rows still ``in_review``: an image left at ``wait`` takes ``all_images`` (approve all /
    reject all) when set. Returns the primary keys of the versions planned."""
    values = decisions.model_dump() if hasattr(decisions, "model_dump") else dict(decisions)
    reviewer = str(values.get("reviewer") or "prefect-ui")
    general = str(values.get("note") or "")
    for_all = {"approve all": "approve", "reject all": "reject"}.get(str(values.get(ALL_IMAGES) or "wait"), "wait")
    planned: list[int] = []
    log = get_logger()
    for row in waiting:
        assert row.id is not None
        decision = values.get(field_name(row.image_id)) or "wait"
        decision = for_all if decision == "wait" else decision
        note = str(values.get(note_name(row.image_id)) or general) or None
        current = publisher.ledger.get(row.id)
        if decision != "wait" and not _may_decide(publisher, current, reviewer):
            continue
        if decision == "regenerate":
            version = publisher.regenerate(row.id, reviewer, note)
            assert version.id is not None
            planned.append(version.id)
            log.info("image %s: regenerate (version %d: %s) by %s", row.image_id, version.version, version.image_id, reviewer)
        elif S(current.status) is not S.in_review:
            continue
        elif decision == "approve":
            publisher.approve(row.id, reviewer, note)
            log.info("image %s approved by %s and published", row.image_id, reviewer)
        elif decision == "reject":
            publisher.reject(row.id, reviewer, note)
            log.info("image %s rejected by %s: %s", row.image_id, reviewer, note or "-")
    return planned
