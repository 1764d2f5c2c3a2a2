"""Configuration of imaging: renditions, safe decoding, upscaling, tagging, near-duplicates,
the content policy and its image check, prompt privacy, C2PA Content Credentials and the
invisible watermark (the ``renditions``, ``decode``, ``upscale``, ``tagging``, ``dedup``,
``policy``, ``privacy``, ``c2pa`` and ``watermark`` keys of config/settings.py ``Settings``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policy.config import PolicyRules

_Strict = ConfigDict(extra="forbid", allow_inf_nan=False)  # inf / nan are never a valid setting


class RenditionConfig(BaseModel):
    """One published rendition: a box in pixels, a fit, an encoding.

    ``fit``: ``contain`` (inside the box, aspect kept), ``cover`` (fills the box, centre
    crop), ``exact`` (stretched). ``scale`` > 1 upscales the original with Lanczos
    instead of a box. ``quality`` 1..100 for JPEG/WebP.
    """

    model_config = _Strict
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    width: Annotated[int, Field(ge=16, le=8192)] | None = None
    height: Annotated[int, Field(ge=16, le=8192)] | None = None
    scale: Annotated[float, Field(gt=0, le=8)] | None = None
    fit: Literal["contain", "cover", "exact"] = "contain"
    format: Literal["jpeg", "webp", "png", "avif"] = "jpeg"
    quality: Annotated[int, Field(ge=1, le=100)] = 85
    # additions (issue 4): crop of ``cover``, target size, enhancement, upscaler of ``scale`` > 1
    crop: Literal["centre", "attention"] = "centre"
    target_bytes: Annotated[int, Field(ge=1024)] | None = None
    enhance: list[Literal["autocontrast", "sharpen"]] = Field(default_factory=list)
    upscaler: Literal["lanczos", "model", "remote"] = "lanczos"

    @model_validator(mode="after")
    def _size_or_scale(self) -> RenditionConfig:
        if self.scale is None and (self.width is None or self.height is None):
            raise ValueError("a rendition needs width and height, or scale")
        if self.target_bytes is not None and self.format == "png":
            raise ValueError("target_bytes needs a lossy format (jpeg, webp, avif); png is lossless")
        return self


def default_renditions() -> list[RenditionConfig]:
    return [
        RenditionConfig(name="web", width=1024, height=1024, fit="contain", format="jpeg", quality=85),
        RenditionConfig(name="thumb", width=320, height=320, fit="cover", format="webp", quality=80),
    ]


#: NudeNet 3.4 detector classes (nudenet/nudenet.py ``__labels``, https://github.com/notAI-tech/NudeNet)
NUDENET_CLASSES = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)


class ImageSafetyConfig(BaseModel):
    """The NudeNet detector run on every image a provider made, not on placeholders (imaging.safety).

    An image is blocked when a class of ``blocked_classes`` is detected with a score
    of at least its threshold (``thresholds[class]``, else ``default_threshold``);
    scores are 0..1. Every detection at or above ``record_threshold`` is recorded on
    the image row. ``enabled: false`` switches the check off.
    """

    model_config = _Strict
    enabled: bool = True
    blocked_classes: list[str] = Field(
        default_factory=lambda: ["FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED", "ANUS_EXPOSED"]
    )
    default_threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    thresholds: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)
    record_threshold: Annotated[float, Field(ge=0.2, le=1)] = 0.25
    #: NudeNet's input side in pixels (its shipped 320n model)
    resolution: Annotated[int, Field(ge=160, le=1280, multiple_of=32)] = 320

    @field_validator("blocked_classes")
    @classmethod
    def _known_classes(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in NUDENET_CLASSES:
                raise ValueError(f"unknown NudeNet class {name!r} (known: {', '.join(NUDENET_CLASSES)})")
        return value

    @field_validator("thresholds")
    @classmethod
    def _known_threshold_classes(cls, value: dict[str, float]) -> dict[str, float]:
        for name in value:
            if name not in NUDENET_CLASSES:
                raise ValueError(f"unknown NudeNet class {name!r} (known: {', '.join(NUDENET_CLASSES)})")
        return value

    def threshold(self, name: str) -> float:
        return self.thresholds.get(name, self.default_threshold)


class PolicyConfig(BaseModel):
    """Content policy additions; the fixed refusals cannot be switched off (policy)."""

    model_config = _Strict
    deny_terms: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list)
    private_people: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list)
    #: the image check: NudeNet (``image_safety``), always on unless disabled there
    image_safety: ImageSafetyConfig = Field(default_factory=ImageSafetyConfig)
    # an additional image classifier on output (issue 4): "module:function" taking a PIL
    # image and returning {label: probability}; an image is blocked when a label of
    # ``image_blocked_labels`` reaches ``image_threshold``.
    image_classifier: str | None = None
    image_blocked_labels: list[str] = Field(default_factory=lambda: ["nsfw", "unsafe", "porn", "hentai", "sexy"])
    image_threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    #: the categories and the moderation layer of policy (policy.config.PolicyRules)
    rules: PolicyRules = Field(default_factory=PolicyRules)


class PrivacyConfig(BaseModel):
    """Prompt privacy.

    ``embed_prompt``: whether published files (renditions, the cleaned original, their
    object metadata and C2PA manifest) carry the prompt; ``categories`` overrides it
    per category (``{portraits: false}``) and a template's own ``embed_prompt`` wins
    over both. A private prompt stays in the database and the private sidecar.
    Encryption at rest: set ``PROMPT_ENCRYPTION_KEY`` (a Fernet key,
    ``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``;
    several comma-separated keys rotate: the first encrypts, all decrypt).
    """

    model_config = _Strict
    embed_prompt: bool = True
    categories: dict[str, bool] = Field(default_factory=dict)

    def embeds(self, category: str, template_setting: bool | None) -> bool:
        if template_setting is not None:
            return template_setting
        return self.categories.get(category, self.embed_prompt)


class C2paConfig(BaseModel):
    """C2PA Content Credentials on every published file (imaging.credentials, c2pa-python).

    ``certificate``: PEM file with the signing certificate first, then its chain (not
    the root); ``private_key``: its PEM private key file (or the ``C2PA_PRIVATE_KEY``
    environment variable holding the PEM); ``algorithm``: es256 / es384 / es512 /
    ps256 / ps384 / ps512 / ed25519. ``timestamp_url``: an RFC 3161 time-stamp
    authority (none by default: nothing is contacted). ``trust_anchors``: PEM roots
    that ``content-pipeline verify`` trusts (reports ``Trusted`` instead of ``Valid``).
    On by default: without ``certificate``, a per-installation self-signed chain is made
    on first use under ``<output_dir>/credentials/c2pa`` (imaging.signing_chain); its
    signer validates but is untrusted (``doctor`` and ``verify`` say so).
    """

    model_config = _Strict
    enabled: bool = True
    certificate: Path | None = None
    private_key: Path | None = None
    algorithm: Literal["es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"] = "es256"
    timestamp_url: str | None = None
    trust_anchors: Path | None = None
    claim_generator: str = "content-pipeline"

    @model_validator(mode="after")
    def _needs_certificate(self) -> C2paConfig:
        if self.private_key is not None and self.certificate is None:
            raise ValueError("c2pa.private_key needs c2pa.certificate (its PEM certificate chain)")
        return self


class WatermarkConfig(BaseModel):
    """The invisible watermark in the pixels of every published file of a real image
    (imaging.watermark; not placeholders): it survives the metadata being stripped, a JPEG
    re-encode and a resize, and ``content-pipeline verify`` reads it. On by default;
    ``enabled: false`` publishes unmarked pixels (XMP and C2PA marking are separate)."""

    model_config = _Strict
    enabled: bool = True


class DecodeConfig(BaseModel):
    """Safe decoding of generated or fetched images (imaging.decode).

    Caps sit well below Pillow's defaults (``Image.MAX_IMAGE_PIXELS`` = 89,478,485
    pixels, an error at twice that): ``max_bytes`` in bytes, ``max_pixels`` in pixels
    (width x height). ``formats`` are Pillow format names.
    """

    model_config = _Strict
    max_bytes: Annotated[int, Field(ge=1024, le=1 << 30)] = 50 * 1024 * 1024
    max_pixels: Annotated[int, Field(ge=4096, le=89_478_485)] = 40_000_000
    formats: list[Literal["PNG", "JPEG", "WEBP", "AVIF"]] = ["PNG", "JPEG", "WEBP", "AVIF"]  # pydantic copies it


class UpscaleConfig(BaseModel):
    """Upscalers used by renditions with ``scale`` > 1 (imaging.upscale).

    ``weights``: a spandrel-loadable file (Real-ESRGAN / ESRGAN / SwinIR / ... ``.pth``
    or ``.safetensors``) for ``upscaler: model``; ``tile`` and ``tile_overlap`` in
    pixels of the input; ``device`` ``auto`` = CUDA when present, else CPU.
    ``remote_url``: the FLUX studio API base URL for ``upscaler: remote`` (POST /upscale).
    """

    model_config = _Strict
    weights: Path | None = None
    tile: Annotated[int, Field(ge=32, le=4096)] = 256
    tile_overlap: Annotated[int, Field(ge=0, le=256)] = 16
    device: Literal["auto", "cpu", "cuda"] = "auto"
    remote_url: str | None = None
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0


class TaggingConfig(BaseModel):
    """Tags and quality score (imaging.tagging, imaging.quality).

    ``clip_model`` (an open_clip architecture such as ``ViT-B-32``) with
    ``clip_weights`` (a local weights file; nothing is downloaded) scores
    ``vocabulary``; tags whose probability reaches ``clip_threshold`` are added (at most
    ``clip_top_k``). ``aesthetic_scorer``: ``"module:function"`` taking a PIL image and
    returning a score in 0..1, averaged into the quality score.
    """

    model_config = _Strict
    clip_model: str | None = None
    clip_weights: Path | None = None
    vocabulary: list[str] = Field(default_factory=list)
    clip_threshold: Annotated[float, Field(ge=0, le=1)] = 0.2
    clip_top_k: Annotated[int, Field(ge=1, le=50)] = 5
    aesthetic_scorer: str | None = None


class DedupConfig(BaseModel):
    """Near-duplicate check by perceptual hash (64-bit pHash, imagehash).

    An image whose Hamming distance to an already published image is at most
    ``max_distance`` bits is a near-duplicate; ``scope`` compares with the same
    category or with all; ``action`` ``skip`` records it as skipped (never uploaded),
    ``keep`` only records ``duplicate_of``.
    """

    model_config = _Strict
    enabled: bool = True
    max_distance: Annotated[int, Field(ge=0, le=32)] = 8
    scope: Literal["category", "all"] = "category"
    action: Literal["skip", "keep"] = "skip"


class ChannelPreset(BaseModel):
    """A channel's rendition: its ``name``, the final ``width`` x ``height`` (pixels; the
    aspect ratio is theirs), the encoding, and whether a crop that would cut the subject is
    replaced by outpainting (``outpaint``; else the attention crop is made anyway)."""

    model_config = _Strict
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=40)]
    width: Annotated[int, Field(ge=64, le=4096)]
    height: Annotated[int, Field(ge=64, le=4096)]
    format: Literal["jpeg", "webp", "png", "avif"] = "jpeg"
    quality: Annotated[int, Field(ge=1, le=100)] = 85
    outpaint: bool = True


#: The built-in channel presets, by name (sizes from the channels' own guides: Instagram
#: 1080 x 1350 portrait and 1080 x 1920 story, a 1200 x 628 link card (1.91:1), Pinterest
#: 1000 x 1500 (2:3), a 1500 x 500 banner (3:1)).
CHANNEL_PRESETS: dict[str, ChannelPreset] = {
    p.name: p
    for p in (
        ChannelPreset(name="instagram_portrait", width=1080, height=1350),
        ChannelPreset(name="story", width=1080, height=1920),
        ChannelPreset(name="link_card", width=1200, height=628),
        ChannelPreset(name="pinterest", width=1000, height=1500),
        ChannelPreset(name="banner", width=1500, height=500),
    )
}


class ChannelsConfig(BaseModel):
    """``channels``: per-channel renditions made with the other renditions of each image.

    ``presets``: built-in names (``CHANNEL_PRESETS``) or full presets. Each is an attention
    crop when the subject fits the crop, else an outpainting: the canvas padded to the
    preset's aspect ratio, the new area masked and repainted by ``provider`` (one that can
    inpaint, e.g. ``automatic1111``; a call of the chain, gated, budgeted and billed like any)
    at ``strength`` (0..1), the canvas's longer side at most ``max_side`` pixels.
    ``subject_share``: the share of the image's interest (edges + saturation) the subject
    box holds (0.5..1). No provider: always the attention crop."""

    model_config = _Strict
    presets: list[str | ChannelPreset] = Field(default_factory=list)
    provider: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")] | None = None
    strength: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    max_side: Annotated[int, Field(ge=256, le=2048)] = 1024
    subject_share: Annotated[float, Field(ge=0.5, le=1.0)] = 0.85

    @field_validator("presets")
    @classmethod
    def _known(cls, presets: list[str | ChannelPreset]) -> list[str | ChannelPreset]:
        unknown = [p for p in presets if isinstance(p, str) and p not in CHANNEL_PRESETS]
        if unknown:
            raise ValueError(f"unknown channel preset {unknown[0]!r} (built in: {', '.join(CHANNEL_PRESETS)})")
        return presets

    def resolved(self) -> list[ChannelPreset]:
        """The presets, names replaced by the built-in ones."""
        return [CHANNEL_PRESETS[p] if isinstance(p, str) else p for p in self.presets]
