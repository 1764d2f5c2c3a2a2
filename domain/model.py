"""The shared vocabulary: quality tiers, formats, templates, requests, results, statuses.

Figures (tiers, formats, default negative prompt) are the product's own presets: three
quality tiers (30 / 50 / 70 denoising steps at guidance 7.5 / 8.5 / 9.5) and three formats
(1024x1024, 1024x1792, 1792x1024 pixels).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
import itertools

DEFAULT_NEGATIVE_PROMPT = "blurry, low quality, distorted, ugly, bad anatomy, watermark, signature, text"

#: Pixel side limits accepted by every backend we drive (SD-family latents are 1/8 size).
MIN_SIDE, MAX_SIDE, SIDE_MULTIPLE = 64, 4096, 8


class Quality(str, Enum):
    """Quality tier: (num_inference_steps, guidance_scale), the product's presets."""

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
    """Output format: (width, height) in pixels, the product's presets."""

    square = "square"
    portrait = "portrait"
    landscape = "landscape"

    @property
    def size(self) -> tuple[int, int]:
        return {"square": (1024, 1024), "portrait": (1024, 1792), "landscape": (1792, 1024)}[self.value]


Side = Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE, multiple_of=SIDE_MULTIPLE)]


class TemplateParameters(BaseModel):
    """Generation parameters of a template.

    Give ``quality`` and/or ``format`` for the presets, or the explicit
    fields; explicit fields win. Sides are pixels, 64..4096, multiples of 8.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

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

#: Length caps of a template's texts (characters). A prompt longer than what the
#: providers accept is refused by them anyway (SDXL's CLIP reads 77 tokens; Stability
#: AI's v2beta API takes at most 10,000 characters:
#: https://platform.stability.ai/docs/api-reference); the caps keep the whole
#: expanded prompt, its styles and its tags far inside the embedded metadata limits
#: (XMP in a JPEG APP1 segment: 65,502 bytes, imaging.provenance).
MAX_PROMPT_CHARS = 2000
MAX_STYLE_CHARS = 300
MAX_STYLES = 50
MAX_TAG_CHARS = 40
MAX_TAGS = 50
MAX_VARIANTS = 20
MAX_DESCRIPTION_CHARS = 1000
#: at most this many combinations of wildcard choices are enumerated by ``expansions``
MAX_EXPANSIONS = 5000


def wildcard_problem(text: str) -> str | None:
    """What is wrong with the ``{a|b|c}`` wildcards of ``text``, or None.

    Refused: a ``}`` that closes nothing (reversed braces), a ``{`` never closed, a
    wildcard inside a wildcard (``{a|{b|c}}``), a group with one choice (``{a}``)
    and an empty choice (``{a|}``). Positions are 1-based characters.
    """
    depth, start = 0, 0
    for position, char in enumerate(text, 1):
        if char == "{":
            if depth:
                return f"nested wildcard at character {position} (a wildcard inside {{...}} is not supported)"
            depth, start = 1, position
        elif char == "}":
            if not depth:
                return f"'}}' at character {position} closes no '{{'"
            depth = 0
            group = text[start : position - 1]
            choices = group.split("|")
            if len(choices) < 2:
                return f"wildcard at character {start} has a single choice; write {{a|b}}"
            if any(not choice.strip() for choice in choices):
                return f"empty wildcard choice in {{{group[:60]}}} at character {start}"
    if depth:
        return f"'{{' at character {start} is never closed"
    return None


def expansions(text: str, limit: int = MAX_EXPANSIONS) -> tuple[list[str], bool]:
    """Every text ``text`` can expand to (one choice per wildcard), at most ``limit``;
    returns (texts, complete) where ``complete`` is False when there were more."""

    parts = WILDCARD.split(text)
    literals, groups = parts[0::2], [[c.strip() for c in g.split("|")] for g in parts[1::2]]
    out: list[str] = []
    for combination in itertools.product(*groups):
        if len(out) >= limit:
            return out, False
        pieces = [literals[0]]
        for choice, literal in zip(combination, literals[1:]):
            pieces += [choice, literal]
        out.append("".join(pieces))
    return out, True


PromptText = Annotated[str, Field(min_length=3, max_length=MAX_PROMPT_CHARS)]


def check_reference(value: str, field_name: str = "reference_image") -> str:
    """``value`` if it is an https URL or a relative path that stays inside its folder
    (no ``..``, not absolute); ValueError quoting it otherwise."""
    if value.startswith("https://"):
        return value
    if "://" in value or value.startswith(("/", "\\", "~")) or ".." in value.replace("\\", "/").split("/"):
        raise ValueError(f"{field_name} {value[:80]!r} must be a path inside the templates folder or an https URL")
    return value


class ControlUnit(BaseModel):
    """One ControlNet unit of a template (AUTOMATIC1111's sd-webui-controlnet extension,
    https://github.com/Mikubill/sd-webui-controlnet/wiki/API): the control ``image`` (a path
    relative to the templates folder or an https URL), the preprocessor ``module`` ("none":
    the image is already a control map; "canny", "depth_midas", "openpose" ...), the
    ControlNet ``model`` as the WebUI lists it, its ``weight`` (0..2) and the fraction of
    the sampling steps it acts on (``guidance_start`` < ``guidance_end``, 0..1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: Annotated[str, Field(min_length=1, max_length=2000)]
    module: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.+-]+$")] = "none"
    model: Annotated[str, Field(min_length=1, max_length=200)]
    weight: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0
    guidance_start: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    guidance_end: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> ControlUnit:
        if self.guidance_start >= self.guidance_end:
            raise ValueError(f"guidance_start {self.guidance_start} must be below guidance_end {self.guidance_end}")
        return self


class HiresFix(BaseModel):
    """A hires-fix pass (AUTOMATIC1111 txt2img ``enable_hr``): the first image is upscaled
    ``scale`` times (1..4) with ``upscaler`` (a name the WebUI lists: "Latent", "R-ESRGAN 4x+"
    ...) and re-sampled with ``denoising_strength`` (0..1). Providers without it ignore it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scale: Annotated[float, Field(gt=1.0, le=4.0)] = 2.0
    upscaler: Annotated[str, Field(min_length=1, max_length=80)] = "Latent"
    denoising_strength: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5


class StyleReference(BaseModel):
    """An IP-Adapter style reference of a template (the brand's look from a reference image):
    the ``image`` (a path relative to the templates folder or an https URL), the IP-Adapter
    ``model`` (AUTOMATIC1111: the name the ControlNet extension lists, e.g.
    "ip-adapter_sd15 [6a3f6166]"; local diffusers: a name under the model's ``ip_adapters``),
    the extension's preprocessor ``module`` ("ip-adapter_clip_sd15", "ip-adapter_clip_sdxl"
    ...; https://github.com/Mikubill/sd-webui-controlnet/wiki/API) and its ``weight`` (0..2,
    the IP-Adapter scale). Providers that cannot take an image prompt are skipped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: Annotated[str, Field(min_length=1, max_length=2000)]
    model: Annotated[str, Field(min_length=1, max_length=200)]
    module: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.+-]+$")] = "ip-adapter_clip_sd15"
    weight: Annotated[float, Field(ge=0.0, le=2.0)] = 0.6


MAX_CONTROL_UNITS = 3


class Template(BaseModel):
    """A prompt template (templates/<category>/<name>.yaml).

    ``prompt`` may hold ``{a|b|c}`` wildcards; ``variants`` are named alternative
    prompts for A/B tests; ``styles`` are modifiers appended to the prompt.
    ``embed_prompt: false`` keeps the prompt out of every published file (it stays in
    the database and the private sidecar); None: the category / global setting
    (``privacy`` in the configuration). Lengths are capped (``MAX_*``, characters).
    """

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    category: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    version: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS)] = ""
    prompt: PromptText
    negative_prompt: Annotated[str, Field(max_length=MAX_PROMPT_CHARS)] = DEFAULT_NEGATIVE_PROMPT
    parameters: TemplateParameters = Field(default_factory=TemplateParameters)
    styles: Annotated[list[Annotated[str, Field(min_length=1, max_length=MAX_STYLE_CHARS)]], Field(max_length=MAX_STYLES)] = Field(default_factory=list)
    tags: Annotated[list[Annotated[str, Field(min_length=1, max_length=MAX_TAG_CHARS)]], Field(max_length=MAX_TAGS)] = Field(default_factory=list)
    variants: Annotated[dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=60)], PromptText], Field(max_length=MAX_VARIANTS)] = Field(
        default_factory=dict
    )
    embed_prompt: bool | None = None
    #: Pins: the provider (a registered name) and its model, LoRAs by name with their weights
    #: (local diffusers / AUTOMATIC1111), a fixed seed (0..2**32-1) for every image.
    provider: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")] | None = None
    model: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    loras: dict[Annotated[str, Field(min_length=1, max_length=200)], Annotated[float, Field(ge=-4, le=4)]] = Field(default_factory=dict)
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    #: img2img / inpainting: a reference image and a mask (white = repaint), each a path
    #: relative to the templates folder or an https URL, and how much to change (0..1).
    reference_image: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    mask: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    strength: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    #: Brand consistency: ControlNet units (at most ``MAX_CONTROL_UNITS``; providers that cannot
    #: apply them are skipped) and a hires-fix pass (AUTOMATIC1111; ignored by others).
    controlnet: Annotated[list[ControlUnit], Field(max_length=MAX_CONTROL_UNITS)] = Field(default_factory=list)
    hires_fix: HiresFix | None = None
    #: An IP-Adapter style reference (AUTOMATIC1111's ControlNet extension, local diffusers).
    ip_adapter: StyleReference | None = None

    @model_validator(mode="after")
    def _check_pins(self) -> Template:
        if self.model and not self.provider:
            raise ValueError(f"model {self.model!r} needs a provider: model names differ between providers")
        if (self.mask or self.strength is not None) and not self.reference_image:
            raise ValueError("mask and strength need a reference_image")
        if self.ip_adapter:
            check_reference(self.ip_adapter.image, "ip_adapter.image")
        return self

    @field_validator("reference_image", "mask")
    @classmethod
    def _inside_the_folder(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else check_reference(value, info.field_name or "reference_image")

    @field_validator("prompt")
    @classmethod
    def _prompt_wildcards(cls, value: str) -> str:
        problem = wildcard_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("variants")
    @classmethod
    def _variant_wildcards(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            problem = wildcard_problem(text)
            if problem:
                raise ValueError(f"variant {name!r}: {problem}")
        return value

    def prompts(self) -> dict[str, str]:
        """The base prompt and each A/B variant, by variant name (``base`` first)."""
        return {"base": self.prompt, **self.variants}


class ImageStatus(str, Enum):
    """The life of an image slot (DESIGN.md). Moves are the typed transitions of
    storage/ledger.py (``TRANSITIONS`` lists every allowed one).

    ``planned -> generating -> generated -> processed -> uploaded -> done`` is the way
    of a real image. A run ends a slot it could not finish as ``failed`` (with its
    FailureKind: transient failures are retried by the next run), ``blocked`` (content
    policy), ``skipped`` (budget, near-duplicate) or ``placeholder`` (every real provider
    was down: a stand-in is stored under ``placeholder/``; the next run of the date
    replaces it, it is never published as content).

    Publishing (publishing/review.py, publishing/publish.py): ``done`` with ``published_at`` set is
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
PUBLISHING_STATUSES = frozenset({ImageStatus.in_review, ImageStatus.approved, ImageStatus.rejected, ImageStatus.superseded})
_FINISHED = frozenset({ImageStatus.done, ImageStatus.failed, ImageStatus.blocked, ImageStatus.skipped, ImageStatus.placeholder}) | PUBLISHING_STATUSES


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
    #: Ad-hoc img2img / inpainting: reference image and mask (a path in the templates folder
    #: or an https URL) and strength 0..1; they override the template's.
    reference_image: str | None = None
    mask: str | None = None
    strength: float | None = None
    #: Ad-hoc brand references (same rules): the IP-Adapter style image and the first
    #: ControlNet unit's control image; they replace the template's (which names the models).
    style_image: str | None = None
    control_image: str | None = None

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
class ControlInput:
    """A ControlNet unit and its control image (encoded PNG / JPEG / WebP bytes)."""

    unit: ControlUnit
    image: bytes


@dataclass(frozen=True)
class StyleInput:
    """An IP-Adapter style reference and its image (encoded PNG / JPEG / WebP bytes)."""

    unit: StyleReference
    image: bytes


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
    #: LoRAs to apply (local diffusers, AUTOMATIC1111): ``(name, weight)`` pairs; None: the model's defaults.
    loras: tuple[tuple[str, float], ...] | None = None
    #: The provider this request must run on (a template's pin); None: any of the chain.
    provider: str | None = None
    #: ControlNet units with their control images (encoded bytes); None: none.
    control_units: tuple[ControlInput, ...] | None = None
    #: A hires-fix pass (AUTOMATIC1111, local diffusers); None: none.
    hires_fix: HiresFix | None = None
    #: An IP-Adapter style reference with its image; None: none.
    style_reference: StyleInput | None = None

    @property
    def quality_tier(self) -> str:
        """``quality`` if given, else the preset tier whose steps this request reaches."""
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
    #: The image as the output check decoded it (a PIL image, pixels loaded), when the adapter
    #: went through ``providers.base.result_from_bytes``: post-processing starts from it
    #: instead of decoding the bytes a second time. Not part of equality or repr.
    decoded: Any = field(default=None, repr=False, compare=False)
    #: The size (``1536x1024``) or aspect ratio (``16:9``) actually asked of the model,
    #: after mapping the request onto what it accepts (providers/spec.py); None: as requested.
    mapped_size: str | None = None


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
    #: When the call ended (aware UTC); None: when it is recorded.
    at: datetime | None = None
    #: The provider's job id (asynchronous APIs), when the submit was answered.
    job_id: str | None = None
    #: The budget reservation of the call: its in-flight attempt row becomes this attempt.
    reservation_id: int | None = None
