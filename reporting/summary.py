"""What a flow run made, in words and figures: one ImageSummary per image, the RunSummary
of the run (its verdict: complete or not, and why), IncompleteRunError carrying it.
Pure values: no Prefect, no database session (built from ImageRecord rows)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url

from domain.errors import ContentPipelineError
from domain.model import ImageStatus
from storage.db import ImageRecord, utcnow


#: The outcomes, in the order they are counted and printed.
OUTCOMES = ("done", "placeholder", "failed", "blocked", "skipped", "rejected", "superseded", "in review", "unfinished")
#: Outcomes counted only when some image has them: a reviewer's decisions (``rejected``,
#: ``superseded``), an image waiting for one (``in review``), and ``unfinished`` (waits for a later run).
OPTIONAL_OUTCOMES = frozenset({"rejected", "superseded", "in review", "unfinished"})
#: Statuses that are their own outcome (domain.model.ImageStatus values).
_AS_IS = {"failed": "failed", "blocked": "blocked", "skipped": "skipped", "rejected": "rejected", "superseded": "superseded", "in_review": "in review"}


def outcome_of(image: Any) -> str:
    """``done``, ``placeholder``, ``failed``, ``blocked``, ``skipped``, ``rejected``,
    ``superseded``, ``in review`` or ``unfinished``."""
    status = str(getattr(image.status, "value", image.status))
    if status == "placeholder":  # ImageStatus.placeholder: a stand-in while real providers were down
        return "placeholder"
    if status == "done":
        return "placeholder" if image.placeholder else "done"
    return _AS_IS.get(status, "unfinished")


def count_outcomes(images: Iterable[Any]) -> dict[str, int]:
    """Every outcome of OUTCOMES (in that order) with its count; those of OPTIONAL_OUTCOMES only when > 0."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for image in images:
        counts[outcome_of(image)] += 1
    return {word: n for word, n in counts.items() if n or word not in OPTIONAL_OUTCOMES}


def _plural(word: str, count: int) -> str:
    return f"{word}s" if word == "placeholder" and count != 1 else word


def outcome_words(counts: dict[str, int]) -> str:
    """``{"done": 2, "placeholder": 4}`` -> ``"2 done, 4 placeholders"``."""
    return ", ".join(f"{n} {_plural(word, n)}" for word, n in counts.items())


def summary_words(images: Sequence[Any], cost_usd: float | None = None) -> str:
    """``"6 images: 2 done, 4 placeholders, 0 failed, 0 blocked, 0 skipped; USD 0.12"``
    (``rejected``, ``superseded``, ``in review`` and ``unfinished`` appear when some image has them)."""
    counts = count_outcomes(images)
    cost = sum(float(i.cost_usd) for i in images) if cost_usd is None else cost_usd
    parts = outcome_words(counts)
    return f"{len(images)} image{'' if len(images) == 1 else 's'}: {parts}; USD {cost:.2f}"


_TERMINAL = frozenset(s.value for s in ImageStatus if s.terminal)


@dataclass(frozen=True)
class ImageSummary:
    """One line of the run summary (cost USD, seconds, stored key)."""

    image_id: str
    slot: str
    template: str | None
    provider: str | None
    placeholder: bool
    cost_usd: float
    seconds: float
    status: str
    storage_key: str | None
    error: str | None
    #: Its files wait in the spool because the store failed (storage/ledger.py mark_upload_pending).
    upload_pending: bool = False
    #: A run's lease on it was live when the summary was made (storage/ledger.py claim).
    held: bool = False

    @classmethod
    def of(cls, row: ImageRecord) -> ImageSummary:
        held = row.run_key is not None and row.lease_expires_at is not None and row.lease_expires_at > utcnow()
        return cls(
            row.image_id,
            f"{row.slot}#{row.slot_index}",
            row.template,
            row.provider,
            row.is_placeholder,
            round(row.cost_usd, 4),
            round(row.seconds, 3),
            row.status,
            row.storage_key,
            row.error,
            bool(row.upload_pending),
            held,
        )

    @property
    def why_not_done(self) -> str:
        """Why an image is not done, in words: its terminal status (``failed``, ...),
        ``waiting to upload (the store failed; see the errors)`` when its files wait in the
        spool, ``held by another run`` when a live lease holds it, else ``unfinished``."""
        if self.status in _TERMINAL:
            return self.status
        stored = self.status in (ImageStatus.processed.value, ImageStatus.uploaded.value)
        if self.upload_pending or (stored and self.error):
            return "waiting to upload (the store failed; see the errors)"
        return "held by another run" if self.held else "unfinished (a later run resumes it)"

    @property
    def done(self) -> bool:
        """Done as real content (not a placeholder): published, or stored when nothing publishes."""
        return self.status == ImageStatus.done.value and not self.placeholder

    @property
    def decided(self) -> bool:
        """A person's review decision ended it: ``rejected`` (also the version a regenerate
        replaced) or ``superseded`` by a newer published version. Not a failure."""
        return self.status in (ImageStatus.rejected.value, ImageStatus.superseded.value)

    @property
    def waiting(self) -> bool:
        """Made as real content and waiting for a person's review (``in_review``)."""
        return self.status == ImageStatus.in_review.value


@dataclass(frozen=True)
class RunSummary:
    """What a flow run made: one ImageSummary per image, totals in USD and seconds."""

    flow: str
    images: list[ImageSummary]
    output_dir: str
    database_url: str
    alerts: list[str]

    @property
    def cost_usd(self) -> float:
        return round(sum(i.cost_usd for i in self.images), 4)

    def counts(self) -> dict[str, int]:
        """Images per outcome in words: done, placeholder, failed, blocked, skipped (reporting/artifacts.py)."""
        return count_outcomes(self.images)

    @property
    def complete(self) -> bool:
        """Every planned image is done as real content, decided by a reviewer (rejected,
        superseded) or waiting for one (``in_review``: nothing more the run can do)."""
        return all(i.done or i.decided or i.waiting for i in self.images)

    def verdict(self) -> str:
        """One line: ``8 of 8 images done``, ``6 of 8 images done, 1 rejected, 1 waits for review``
        or ``3 of 8 images not done as real content: 2 placeholder, 1 failed``."""
        missing = [i for i in self.images if not (i.done or i.decided or i.waiting)]
        if not missing:
            line = f"{sum(i.done for i in self.images)} of {len(self.images)} images done"
            decided = {s: sum(i.status == s for i in self.images) for s in ("rejected", "superseded")}
            line += "".join(f", {n} {s}" for s, n in decided.items() if n)
            waiting = sum(i.waiting for i in self.images)
            if waiting:
                line += f", {waiting} wait{'s' if waiting == 1 else ''} for review (content-pipeline review list)"
            return line
        by_status: dict[str, int] = {}
        for image in missing:
            key = image.why_not_done
            by_status[key] = by_status.get(key, 0) + 1
        detail = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))
        line = f"{len(missing)} of {len(self.images)} images not done as real content: {detail}"
        cause = self.store_error(missing)
        return f"{line}; the store failed: {cause}" if cause else line

    @staticmethod
    def store_error(missing: list[ImageSummary]) -> str | None:
        """The cause the store gave (its first line, e.g. ``cannot write '...' under output:
        [Errno 30] Read-only file system``) for the first of ``missing`` waiting to upload."""
        for image in missing:
            if image.error and image.why_not_done.startswith("waiting to upload"):
                text = image.error.strip().splitlines()[0] if image.error.strip() else image.error
                return text.removeprefix("upload pending: ")
        return None


class IncompleteRunError(ContentPipelineError):
    """A run ended with images that are not done as real content; ``summary`` is its RunSummary."""

    def __init__(self, summary: RunSummary) -> None:
        super().__init__(summary.verdict())
        self.summary = summary

    def __reduce__(self) -> tuple[Any, ...]:
        return (IncompleteRunError, (self.summary,))


def safe_db_url(url: str) -> str:
    """The database URL with any password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable URL)"
