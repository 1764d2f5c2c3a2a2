"""The shared vocabulary: quality tiers, formats, templates, requests, results, statuses.

Figures (tiers, formats, default negative prompt) come from ../shared/MISSION.md.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_NEGATIVE_PROMPT = "blurry, low quality, distorted, ugly, bad anatomy, watermark, signature, text"

#: Pixel side limits accepted by every backend we drive (SD-family latents are 1/8 size).
MIN_SIDE, MAX_SIDE, SIDE_MULTIPLE = 64, 4096, 8


class Quality(str, Enum):
    """Quality tier: (num_inference_steps, guidance_scale) from MISSION.md."""

    standard = "standard"
    hd = "hd"
    ultra_hd = "ultra-hd"

    @property
    def num_inference_steps(self) -> int:
        return {"standard": 30, "hd": 50, "ultra-hd": 70}[self.value]

    @property
    def guidance_scale(self) -> float:
        return {"standard": 7.5, "hd": 8.5, "ultra-hd": 9.5}[self.value]


class ImageFormat(str, Enum):
    """Output format: (width, height) in pixels from MISSION.md."""

    square = "square"
    portrait = "portrait"
    landscape = "landscape"

    @property
    def size(self) -> tuple[int, int]:
        return {"square": (1024, 1024), "portrait": (1024, 1792), "landscape": (1792, 1024)}[self.value]


Side = Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE, multiple_of=SIDE_MULTIPLE)]


class TemplateParameters(BaseModel):
    """Generation parameters of a template.

    Give ``quality`` and/or ``format`` for the MISSION.md presets, or the explicit
    fields; explicit fields win. Sides are pixels, 64..4096, multiples of 8.
    """

    model_config = ConfigDict(extra="forbid")

    quality: Quality | None = None
    format: ImageFormat | None = None
    width: Side | None = None
    height: Side | None = None
    num_inference_steps: Annotated[int, Field(ge=1, le=150)] | None = None
    guidance_scale: Annotated[float, Field(ge=0.0, le=30.0)] | None = None

    def resolved(self, quality: Quality | None = None, fmt: ImageFormat | None = None) -> dict[str, Any]:
        """Width, height, steps and guidance after applying presets (``quality``/``fmt`` override)."""
        q = quality or self.quality or Quality.standard
        f = fmt or self.format or ImageFormat.square
        width, height = f.size
        if fmt is None:
            width = self.width or width
            height = self.height or height
        return {
            "width": width,
            "height": height,
            "num_inference_steps": self.num_inference_steps if quality is None and self.num_inference_steps else q.num_inference_steps,
            "guidance_scale": self.guidance_scale if quality is None and self.guidance_scale is not None else q.guidance_scale,
        }


WILDCARD = re.compile(r"\{([^{}]*\|[^{}]*)\}")


class Template(BaseModel):
    """A prompt template (templates/<category>/<name>.yaml).

    ``prompt`` may hold ``{a|b|c}`` wildcards; ``variants`` are named alternative
    prompts for A/B tests; ``styles`` are modifiers appended to the prompt.
    """

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    category: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    version: Annotated[int, Field(ge=1)] = 1
    description: str = ""
    prompt: Annotated[str, Field(min_length=3, max_length=2000)]
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    parameters: TemplateParameters = Field(default_factory=TemplateParameters)
    styles: list[str] = Field(default_factory=list)
    tags: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(default_factory=list)
    variants: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")], Annotated[str, Field(min_length=3)]] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _check_wildcards(self) -> Template:
        for text in [self.prompt, *self.variants.values()]:
            if text.count("{") != text.count("}"):
                raise ValueError(f"unbalanced braces in prompt {text!r}")
            for group in WILDCARD.findall(text):
                if any(not choice.strip() for choice in group.split("|")):
                    raise ValueError(f"empty wildcard choice in {{{group}}}")
        return self


class ImageStatus(str, Enum):
    """The life of an image slot (DESIGN.md). Moves are the typed transitions of
    storage/ledger.py (``TRANSITIONS`` lists every allowed one).

    ``planned -> generating -> generated -> processed -> uploaded -> done`` is the way
    of a real image. A run ends a slot it could not finish as ``failed`` (with its
    FailureKind: transient failures are retried by the next run), ``blocked`` (content
    policy), ``skipped`` (budget, near-duplicate) or ``placeholder`` (every real provider
    was down: a stand-in is stored under ``placeholder/``; the next run of the date
    replaces it, it is never published as content).

    Publishing (tasks/review.py, tasks/publish.py): ``done`` with ``published_at`` set is
    the published image (files under ``content/``; DESIGN.md: "uploaded/published -> done").
    A stored image of a category whose review is ``required`` waits ``in_review`` (files
    under ``review/``) until a person ``approved`` it (then published: ``done``) or
    ``rejected`` it (files moved to ``rejected/`` with the note). Regenerating makes
    version n+1 of the slot (a new row linked to the previous one); publishing it moves the
    slot's earlier published version to ``superseded``: one published version per slot.
    """

    planned = "planned"
    generating = "generating"
    generated = "generated"
    processed = "processed"
    uploaded = "uploaded"
    done = "done"
    failed = "failed"
    blocked = "blocked"
    skipped = "skipped"
    placeholder = "placeholder"
    in_review = "in_review"
    approved = "approved"
    rejected = "rejected"
    superseded = "superseded"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def terminal(self) -> bool:
        """Finished for this run: nothing more happens to the slot until a later run claims it."""
        return self in _FINISHED


_RANK = {
    ImageStatus.planned: 0,
    ImageStatus.generating: 1,
    ImageStatus.generated: 2,
    ImageStatus.processed: 3,
    ImageStatus.uploaded: 4,
    ImageStatus.done: 5,
    ImageStatus.failed: 5,
    ImageStatus.blocked: 5,
    ImageStatus.skipped: 5,
    ImageStatus.placeholder: 5,
    ImageStatus.in_review: 6,
    ImageStatus.approved: 7,
    ImageStatus.rejected: 8,
    ImageStatus.superseded: 9,
}
#: Statuses of the publishing step (after an image is stored): never generated again.
PUBLISHING_STATUSES = frozenset({ImageStatus.in_review, ImageStatus.approved, ImageStatus.rejected,
                                 ImageStatus.superseded})
_FINISHED = frozenset({ImageStatus.done, ImageStatus.failed, ImageStatus.blocked, ImageStatus.skipped,
                       ImageStatus.placeholder}) | PUBLISHING_STATUSES


class FailureKind(str, Enum):
    """Why a slot did not end ``done``; decides whether the next run retries it.

    ``transient``: outage, 429, timeout, refused connection, every real provider down
    (retried by later runs up to ``pipeline.max_attempts`` claims); ``error``: our side
    (post-processing, storage, configuration; retried likewise); ``rejected``: content
    filtered, validation, a deterministic output mismatch (kept unless ``--retry-failed``);
    ``policy`` (blocked), ``budget`` and ``duplicate`` (skipped).
    """

    transient = "transient"
    error = "error"
    rejected = "rejected"
    policy = "policy"
    budget = "budget"
    duplicate = "duplicate"

    @property
    def retryable(self) -> bool:
        return self in (FailureKind.transient, FailureKind.error)


@dataclass(frozen=True)
class ImageSlot:
    """One planned image: the idempotency key is ``flow:run_date:slot:index``."""

    flow: str
    run_date: date
    slot: str
    index: int
    category: str
    template: str | None = None  # fixed template (ad-hoc) or None to rotate
    quality: Quality | None = None
    format: ImageFormat | None = None
    extra_tags: tuple[str, ...] = ()

    @property
    def idempotency_key(self) -> str:
        return f"{self.flow}:{self.run_date.isoformat()}:{self.slot}:{self.index}"


def key_digest(idempotency_key: str) -> str:
    """12 hex characters identifying an image: stable, used in file names."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]


def seed_from_key(idempotency_key: str, salt: str = "seed") -> int:
    """Deterministic seed in 0..2**32-1 from the idempotency key (SHA-256)."""
    digest = hashlib.sha256(f"{salt}:{idempotency_key}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate: sizes in pixels, guidance_scale unitless (CFG)."""

    prompt: str
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    width: int = 1024
    height: int = 1024
    num_inference_steps: int = 30
    guidance_scale: float = 7.5
    seed: int | None = None
    model: str | None = None
    output_format: str = "png"
    idempotency_key: str | None = None
    #: Quality tier name (``standard`` / ``hd`` / ``ultra-hd``) for price tables; None: from the steps.
    quality: str | None = None
    #: img2img / inpainting: the source image and mask (encoded PNG/JPEG bytes; white = repaint),
    #: and how much of the source to change (0..1, ``denoising_strength`` / ``strength``).
    init_image: bytes | None = None
    mask_image: bytes | None = None
    strength: float | None = None
    #: LoRAs to apply (local diffusers): ``(name, weight)`` pairs; None: the model's defaults.
    loras: tuple[tuple[str, float], ...] | None = None

    @property
    def quality_tier(self) -> str:
        """``quality`` if given, else the MISSION.md tier whose steps this request reaches."""
        if self.quality:
            return self.quality
        if self.num_inference_steps >= Quality.ultra_hd.num_inference_steps:
            return Quality.ultra_hd.value
        if self.num_inference_steps >= Quality.hd.num_inference_steps:
            return Quality.hd.value
        return Quality.standard.value


@dataclass
class GenerationResult:
    """A provider's successful answer: encoded image bytes and their story.

    ``cost_usd`` in USD, ``latency_s`` in seconds, ``width`` x ``height`` in pixels.
    """

    image: bytes
    provider: str
    model: str
    seed: int | None
    width: int
    height: int
    cost_usd: float
    latency_s: float
    is_placeholder: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Attempt:
    """One call to one provider (recorded whatever its outcome)."""

    provider: str
    model: str | None
    status: str  # "success" | "failed" | "skipped"
    latency_s: float
    cost_usd: float = 0.0
    error_class: str | None = None
    error: str | None = None
    http_status: int | None = None
    quota_remaining: int | None = None  # calls left, from rate-limit headers (see quota_hints)
    quota_limit: int | None = None
