"""Typed configuration: one YAML file plus environment overrides, and secrets from the environment.

Sources, highest priority first:

1. environment variables ``CONTENT_PIPELINE_<FIELD>`` (nested with ``__``, e.g.
   ``CONTENT_PIPELINE_BUDGET__DAILY_USD=2.5``), then the same names in ``.env``;
2. the YAML file: ``$CONTENT_PIPELINE_CONFIG`` or ``./content-pipeline.yaml``;
3. the defaults below, which run offline.

Secrets (API keys, Apprise URLs) are never read from the YAML file: only from the
environment or ``.env`` (``Secrets``). Providers are not listed here: the ``providers:``
section and the provider secrets come from the provider registry (providers/registry.py),
where each provider module declares its own config model and secret variable names. ``get_settings()`` / ``get_secrets()`` are
cached factories; nothing is read at import time. An unknown key or a bad value raises
``ConfigError`` naming the file (or variable), the line, the key and the value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from domain.errors import ConfigError
from policy.config import PolicyRules
from providers.chain import RetryConfig
from storage.objects import S3Config
from domain.yamlio import Locator, format_validation_error, load_yaml, shorten, shown
from providers.registry import PROVIDERS, ProvidersConfig, secret_env_names
from providers.spec import ProviderConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_ENV = "CONTENT_PIPELINE_CONFIG"
DEFAULT_CONFIG_NAME = "content-pipeline.yaml"
ENV_PREFIX = "CONTENT_PIPELINE_"

_Strict = ConfigDict(extra="forbid", allow_inf_nan=False)  # inf / nan are never a valid setting



def _store_url(value: str | None) -> str | None:
    """A storage or backup URL the object stores open (storage/objects.py ``open_store``):
    a folder path, ``file:///path`` or ``s3://bucket[/prefix]``; ValueError otherwise."""
    if value is None or not value.strip():
        return None
    from urllib.parse import urlparse

    parsed = urlparse(value.strip())
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and value[1:3] in (":\\", ":/")):
        return value.strip()
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"{shorten(value)}: an S3 URL names its bucket (s3://bucket/prefix)")
        return value.strip()
    raise ValueError(f"unsupported scheme {parsed.scheme!r} in {shorten(value)} (a folder, file:///path or s3://bucket/prefix)")

class ProviderBudgetConfig(BaseModel):
    """Caps of one provider in USD (None: only the global caps apply)."""

    model_config = _Strict
    daily_usd: Annotated[float, Field(ge=0)] | None = None
    monthly_usd: Annotated[float, Field(ge=0)] | None = None


class BudgetConfig(BaseModel):
    """Spending caps in USD: global (``daily_usd``, ``monthly_usd``) and per provider
    (``providers: {stability: {daily_usd: 1.0}}``). Days and months are local to ``timezone``."""

    model_config = _Strict
    daily_usd: Annotated[float, Field(ge=0)] = 5.0
    monthly_usd: Annotated[float, Field(ge=0)] = 100.0
    providers: dict[str, ProviderBudgetConfig] = Field(default_factory=dict)
    #: A reservation not settled after this long (its process died mid-call) is counted as spent.
    reservation_timeout_s: Annotated[float, Field(gt=0)] = 7200.0


class PipelineConfig(BaseModel):
    """How runs share image slots (storage/ledger.py) and retry them across runs.

    ``lease_s``: seconds a run's claim on a slot lasts without renewal (renewed every
    ``lease_s / 3`` while the run works): after a crash another run takes the slot over
    once it has expired. ``max_attempts``: generation attempts per slot over all runs
    before a transient failure (or a placeholder) is no longer retried (``--retry-failed``
    still retries it). ``wait_for_others_s``: how long a run waits for slots another live
    run is working on before it reports them as not done.
    """

    model_config = _Strict
    lease_s: Annotated[float, Field(ge=1, le=86400)] = 120.0
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    wait_for_others_s: Annotated[float, Field(ge=0, le=86400)] = 1800.0


class AlertsConfig(BaseModel):
    """Alert rules. URLs are secrets: ``APPRISE_URLS`` in the environment."""

    model_config = _Strict
    consecutive_failures: Annotated[int, Field(ge=1, le=1000)] = 3
    cooldown_s: Annotated[float, Field(ge=0)] = 3600.0
    #: Budget alerts when spending reaches these fractions of a cap (0.8 = 80 %).
    budget_thresholds: list[Annotated[float, Field(gt=0, le=1)]] = Field(default_factory=lambda: [0.8, 1.0])
    #: A provider is slow when its last call took more than ``latency_factor`` x the median
    #: of its previous ``latency_window`` successful calls (at least ``latency_min_samples``).
    latency_factor: Annotated[float, Field(gt=1)] = 3.0
    latency_window: Annotated[int, Field(ge=3, le=10000)] = 50
    latency_min_samples: Annotated[int, Field(ge=2, le=10000)] = 5
    #: Quota alert when a provider reports fewer than this fraction of its calls left.
    quota_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1


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


def _default_renditions() -> list[RenditionConfig]:
    return [
        RenditionConfig(name="web", width=1024, height=1024, fit="contain", format="jpeg", quality=85),
        RenditionConfig(name="thumb", width=320, height=320, fit="cover", format="webp", quality=80),
    ]


#: NudeNet 3.4 detector classes (nudenet/nudenet.py ``__labels``, https://github.com/notAI-tech/NudeNet)
NUDENET_CLASSES = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
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
    blocked_classes: list[str] = Field(default_factory=lambda: [
        "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED"])
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


class ABConfig(BaseModel):
    """A/B selection of template variants (generation.ab): ``thompson`` sampling over Beta
    posteriors (prior ``prior_alpha``, ``prior_beta``), or ``uniform``."""

    model_config = _Strict
    strategy: Literal["thompson", "uniform"] = "thompson"
    prior_alpha: Annotated[float, Field(gt=0)] = 1.0
    prior_beta: Annotated[float, Field(gt=0)] = 1.0


class ProcessingConfig(BaseModel):
    """Where post-processing runs: ``threads`` (the image's own task thread, at most
    ``workers`` images at once, 0 = one per CPU; the default) or ``processes`` (a pool of
    ``workers`` spawned processes). Alone, the pool post-processes 5-9 % more images a
    second (benchmarks/postprocess_throughput.py: Pillow keeps the GIL in parts of PNG
    decoding and JPEG / WebP encoding); inside a flow run, whose own work keeps its
    process busy as well, threads finish as soon and spend about 15 % less CPU per image
    (no pool to start, no image pickled to a worker and no worker importing the
    pipeline: benchmarks/RESULTS-flow.md), and the run's tree holds about 135 MiB less."""

    model_config = _Strict
    executor: Literal["processes", "threads"] = "threads"
    workers: Annotated[int, Field(ge=0, le=64)] = 0


class ScaleConfig(BaseModel):
    """Scale-out across worker processes and machines (README: the many-machine path).

    ``global_limits``: when true, every provider call holds a slot of the Prefect global
    concurrency limit ``provider-<name>`` (enforced by the Prefect server, shared by
    every worker); when false (the default) only the in-process ``concurrency``
    semaphore applies. ``provider_limits``: slots per provider for limits that do not
    exist yet on the server (default: ``concurrency``); limits already on the server
    (``prefect gcl create provider-automatic1111 --limit 2``) are kept as they are.
    """

    model_config = _Strict
    global_limits: bool = False
    provider_limits: dict[str, Annotated[int, Field(ge=1, le=1000)]] = Field(default_factory=dict)


ReviewMode = Literal["required", "auto"]


class PublishingConfig(BaseModel):
    """The publishing step (publishing/review.py, publishing/publish.py).

    ``review``: per category, ``required`` (stored images wait ``in_review`` under
    ``review/`` and the flow run suspends for a person's decision in the Prefect UI, or
    the CLI's ``review approve|reject``) or ``auto`` (published at once under
    ``content/``); ``"*"`` sets the default of unlisted categories (else ``default_review``).
    ``review_timeout_s``: seconds a suspended run waits for the decision before it fails
    (the images stay ``in_review`` for the CLI). ``max_review_rounds``: review, regenerate,
    review again at most this many times in one run. ``backup_url``: a second store
    (``file:///path`` or ``s3://bucket/prefix``, same S3 options and credentials as
    ``storage_url``) every published object is copied to (``content-pipeline backup verify``).
    ``on_demand_template``: per category, the template ``reserve`` asks an ad-hoc
    generation of when no image is free (the ``generate`` deployment; none: refuse).
    """

    model_config = _Strict
    review: dict[str, ReviewMode] = Field(default_factory=dict)
    default_review: ReviewMode = "auto"
    review_timeout_s: Annotated[int, Field(ge=60, le=30 * 86400)] = 7 * 86400
    max_review_rounds: Annotated[int, Field(ge=1, le=20)] = 3
    backup_url: str | None = None
    on_demand_template: dict[str, str] = Field(default_factory=dict)

    @field_validator("backup_url")
    @classmethod
    def _known_store(cls, value: str | None) -> str | None:
        return _store_url(value)

    def review_mode(self, category: str) -> ReviewMode:
        """``required`` or ``auto`` for ``category``."""
        return self.review.get(category, self.review.get("*", self.default_review))


class WebhookConfig(BaseModel):
    """One webhook: a JSON POST per published image to ``url``, signed with HMAC-SHA256 of
    the body (header ``X-Content-Pipeline-Signature: sha256=<hex>``) keyed by the value of
    the environment variable ``secret_env`` (never in this file). ``include_prompt``: send
    the prompt (false for private prompts). Retries: ``max_attempts`` POSTs in all, waiting
    ``backoff_s`` x 2^n seconds between them; ``timeout_s`` per POST."""

    model_config = _Strict
    url: str
    secret_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = "CONTENT_PIPELINE_WEBHOOK_SECRET"
    include_prompt: bool = True
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 4
    backoff_s: Annotated[float, Field(ge=0, le=600)] = 2.0
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0


class DeliveryConfig(BaseModel):
    """Announcing published images: an Apprise notification (URLs from the environment,
    ``PUBLISH_APPRISE_URLS``, separate from the alerts' ``APPRISE_URLS``) with the count and
    links, and ``webhooks``. Webhook URLs must be https to public addresses (the same guard
    as provider downloads) unless ``allow_private_addresses`` (a receiver on this network);
    ``link_expires_s``: lifetime of the presigned links (S3) in seconds."""

    model_config = _Strict
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    allow_private_addresses: bool = False
    link_expires_s: Annotated[int, Field(ge=60, le=604800)] = 604800


class _YamlSource(PydanticBaseSettingsSource):
    """Feeds the pre-parsed YAML mapping into pydantic-settings below the environment."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


_yaml_data: ContextVar[dict[str, Any] | None] = ContextVar("_yaml_data", default=None)


class _DotEnvAsEnvironment(PydanticBaseSettingsSource):
    """``.env`` read the way the environment is: only the variables that name a setting
    (``CONTENT_PIPELINE_<FIELD>``) are configuration. Every other variable in the file (API
    keys, ``DB_PASSWORD``, ``GITHUB_TOKEN`` ...) belongs to someone else and is ignored here,
    never reported as an unknown key (pydantic-settings' dotenv source turns them into extra
    keys under ``extra="forbid"``, and the error would echo their values)."""

    def __init__(self, settings_cls: type[BaseSettings], dotenv: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._dotenv = dotenv

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not isinstance(self._dotenv, EnvSettingsSource):  # pragma: no cover - pydantic-settings always gives one
            return {}
        # the field-by-field reading of EnvSettingsSource over the file's variables, without the extras
        return EnvSettingsSource.__call__(self._dotenv)


class Settings(BaseSettings):
    """The effective configuration. Paths are resolved against the config file's folder."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", env_file=".env", extra="forbid", validate_default=True,
        allow_inf_nan=False,
        env_ignore_empty=True,
    )

    output_dir: Path = Path("output")
    templates_dir: Path = PROJECT_ROOT / "templates"
    database_url: str | None = None
    storage_url: str | None = None
    timezone: str = "UTC"
    concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    #: provider names in fallback order; ``CONTENT_PIPELINE_CHAIN=a,b`` (commas) or a JSON list
    chain: Annotated[list[str], Field(min_length=1), NoDecode] = Field(default_factory=lambda: ["automatic1111", "placeholder"])
    providers: ProvidersConfig = Field(default_factory=ProvidersConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    renditions: list[RenditionConfig] = Field(default_factory=_default_renditions)
    styles: list[str] = Field(
        default_factory=lambda: ["soft natural light", "golden hour", "studio lighting", "high detail", "minimalist composition"]
    )
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    c2pa: C2paConfig = Field(default_factory=C2paConfig)
    scale: ScaleConfig = Field(default_factory=ScaleConfig)
    s3: S3Config = Field(default_factory=S3Config)
    decode: DecodeConfig = Field(default_factory=DecodeConfig)
    upscale: UpscaleConfig = Field(default_factory=UpscaleConfig)
    tagging: TaggingConfig = Field(default_factory=TaggingConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    ab: ABConfig = Field(default_factory=ABConfig)
    processing: ProcessingConfig = Field(default_factory=ProcessingConfig)
    publishing: PublishingConfig = Field(default_factory=PublishingConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    config_file: Path | None = Field(default=None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        dotenv = _DotEnvAsEnvironment(settings_cls, dotenv_settings)
        return (init_settings, env_settings, dotenv, _YamlSource(settings_cls, _yaml_data.get() or {}))

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {shorten(value)}") from None
        return value

    @field_validator("storage_url")
    @classmethod
    def _known_store(cls, value: str | None) -> str | None:
        return _store_url(value)

    @field_validator("chain", mode="before")
    @classmethod
    def _split_chain(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                try:
                    return json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"not a JSON list: {exc.msg}") from None
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("chain")
    @classmethod
    def _known_providers(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in PROVIDERS:
                raise ValueError(f"unknown provider {name!r} (known: {', '.join(sorted(PROVIDERS))})")
        if len(set(value)) != len(value):
            raise ValueError("a provider appears twice in the chain")
        return value

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        base = self.config_file.parent if self.config_file else Path.cwd()
        self.output_dir = (base / self.output_dir).resolve()
        self.templates_dir = (base / self.templates_dir).resolve()
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.output_dir / 'content-pipeline.db'}"
        if self.storage_url is None:
            self.storage_url = self.output_dir.as_uri()
        if self.upscale.weights is not None:
            self.upscale.weights = (base / self.upscale.weights).resolve()
        if self.tagging.clip_weights is not None:
            self.tagging.clip_weights = (base / self.tagging.clip_weights).resolve()
        for attr in ("certificate", "private_key", "trust_anchors"):
            value = getattr(self.c2pa, attr)
            if value is not None:
                value = (base / value).resolve()
                setattr(self.c2pa, attr, value)
                if self.c2pa.enabled and not value.is_file():
                    raise ValueError(f"c2pa.{attr}: file {str(value)!r} not found")
        for r in self.renditions:
            if r.upscaler == "model" and self.upscale.weights is None:
                raise ValueError(f"rendition {r.name!r} uses upscaler 'model' but upscale.weights is not set")
            if r.upscaler == "remote" and not self.upscale.remote_url:
                raise ValueError(f"rendition {r.name!r} uses upscaler 'remote' but upscale.remote_url is not set")
        names = [r.name for r in self.renditions]
        if len(set(names)) != len(names):
            raise ValueError(f"rendition names must be unique: {names}")
        return self

    @property
    def credentials_dir(self) -> Path:
        """Where the per-installation C2PA signer is made when no ``c2pa.certificate`` is set."""
        return self.output_dir / "credentials" / "c2pa"

    @property
    def spool_dir(self) -> Path:
        """Local folder where image bytes wait between stages."""
        return self.output_dir / "spool"

    def provider_config(self, name: str) -> ProviderConfig:
        """The validated ``providers.<name>`` config (the provider's own ``Config`` class)."""
        return self.providers.get(name)


class _ProviderSecretsSource(PydanticBaseSettingsSource):
    """The provider secrets: every environment variable a registered provider declares
    (``secret_env``), from the environment, else from ``.env``; empty values are no key."""

    def __init__(self, settings_cls: type[BaseSettings], dotenv: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._dotenv = dotenv

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        from_file = {str(k).upper(): v for k, v in (getattr(self._dotenv, "env_vars", None) or {}).items()}
        found: dict[str, str] = {}
        for names in secret_env_names().values():
            for env_name in names:
                value = os.environ.get(env_name) or from_file.get(env_name)
                if value and value.strip():
                    found[env_name] = value.strip()
        return {"provider_secrets": found} if found else {}


class Secrets(BaseSettings):
    """Credentials, only from the environment or ``.env``; never logged or stored.

    ``provider_secrets``: environment variable name -> value, for the names the
    registered providers declare (``Provider.secret_env``); ``lookup(names)`` reads them.
    Tests pass them directly: ``Secrets(_env_file=None, provider_secrets={"FAL_KEY": "..."})``.
    """

    # an empty value (KEY= copied from .env.example) is no key: env_ignore_empty
    # (https://docs.pydantic.dev/latest/concepts/pydantic_settings/#parsing-environment-variable-values)
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True)

    provider_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    apprise_urls: SecretStr | None = Field(
        None, validation_alias=AliasChoices("APPRISE_URLS", f"{ENV_PREFIX}APPRISE_URLS")
    )
    publish_apprise_urls: SecretStr | None = Field(
        None, validation_alias=AliasChoices("PUBLISH_APPRISE_URLS", f"{ENV_PREFIX}PUBLISH_APPRISE_URLS")
    )
    # S3 credentials for an s3:// storage_url (when absent, boto3's own chain: environment, profile, role)
    aws_access_key_id: SecretStr | None = Field(None, validation_alias="AWS_ACCESS_KEY_ID")
    aws_secret_access_key: SecretStr | None = Field(None, validation_alias="AWS_SECRET_ACCESS_KEY")
    aws_session_token: SecretStr | None = Field(None, validation_alias="AWS_SESSION_TOKEN")
    #: Fernet key(s) encrypting prompts at rest (storage.crypto); the C2PA signing key as PEM
    prompt_encryption_key: SecretStr | None = Field(None, validation_alias="PROMPT_ENCRYPTION_KEY")
    c2pa_private_key: SecretStr | None = Field(None, validation_alias="C2PA_PRIVATE_KEY")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, _ProviderSecretsSource(settings_cls, dotenv_settings))

    def lookup(self, names: Sequence[str]) -> str | None:
        """The first non-empty value among the environment variables ``names`` (never log it)."""
        for env_name in names:
            value = self.provider_secrets.get(env_name)
            if value is not None and value.get_secret_value().strip():
                return value.get_secret_value()
        return None

    def aws_credentials(self) -> dict[str, str]:
        """boto3 client keyword arguments for the AWS_* secrets that are set (``.env`` included)."""
        names = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
        return {n: v.get_secret_value() for n in names if (v := getattr(self, n)) is not None and v.get_secret_value()}

    def apprise_url_list(self) -> list[str]:
        """The configured Apprise URLs (separated by whitespace or commas)."""
        if self.apprise_urls is None:
            return []
        return [u for u in re.split(r"[\s,]+", self.apprise_urls.get_secret_value()) if u]

    def publish_apprise_url_list(self) -> list[str]:
        """The Apprise URLs that announce published images (whitespace or commas between)."""
        if self.publish_apprise_urls is None:
            return []
        return [u for u in re.split(r"[\s,]+", self.publish_apprise_urls.get_secret_value()) if u]

    def masked(self) -> dict[str, str | None]:
        """Every secret by environment variable name, masked (``hf_***``) or None when unset."""
        shown: dict[str, str | None] = {name: mask(value.get_secret_value())
                                        for name, value in sorted(self.provider_secrets.items())}
        for field_name in ("apprise_urls", "publish_apprise_urls", "aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
            value = getattr(self, field_name)
            shown[field_name.upper()] = mask(value.get_secret_value()) if value is not None else None
        return shown

    def known_values(self) -> list[str]:
        """Every secret value, for scrubbing from logs and stored messages."""
        values = [s.get_secret_value() for s in self.provider_secrets.values()]
        values += [s.get_secret_value() for s in self.__dict__.values() if isinstance(s, SecretStr)]
        return [v for v in values if v] + [u for u in self.apprise_url_list() if u]


#: YAML keys that hold secrets and so are refused in the file: generic names, and every
#: provider secret's name and environment variable (lower case).
_GENERIC_SECRET_FIELDS = {"apprise_urls", "apprise_url", "api_key", "token", "password",
                          "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "secret_access_key",
                          "prompt_encryption_key", "c2pa_private_key",
                          # publishing: its Apprise URLs, a webhook secret written in the file by mistake
                          "publish_apprise_urls", "secret", "webhook_secret", "hmac_secret"}


def secret_fields() -> set[str]:
    """The lower-case YAML keys refused as secrets (see ``_GENERIC_SECRET_FIELDS``)."""
    fields = set(_GENERIC_SECRET_FIELDS)
    for qualified, names in secret_env_names().items():
        fields.add(qualified.split(".", 1)[1].lower())
        fields.update(n.lower() for n in names)
    return fields


def config_path() -> Path | None:
    """The YAML file in use: ``$CONTENT_PIPELINE_CONFIG`` or ``./content-pipeline.yaml`` when it exists."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser().resolve()
    candidate = Path.cwd() / DEFAULT_CONFIG_NAME
    return candidate.resolve() if candidate.exists() else None


def _find_secrets(data: Any, path: tuple[str, ...] = (), fields: set[str] | None = None) -> list[tuple[str, ...]]:
    fields = secret_fields() if fields is None else fields
    found: list[tuple[str, ...]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if str(key).lower() in fields:
                found.append((*path, str(key)))
            found.extend(_find_secrets(value, (*path, str(key)), fields))
    return found


def load_settings(path: Path | None = None) -> Settings:
    """Build the settings from ``path`` (or ``config_path()``) and the environment.

    Raises ConfigError naming the file, line, key and value of the first problems.
    """
    path = path if path is not None else config_path()
    dotenv = dotenv_values()
    data: dict[str, Any] = {}
    locate: Locator | None = None
    if path is not None:
        if not path.exists():
            raise ConfigError(f"{path}: configuration file not found (set by {CONFIG_ENV})")
        loaded, locate = load_yaml(path, error=ConfigError)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}:1: the configuration must be a mapping of keys, not {type(loaded).__name__}")
        for secret_path in _find_secrets(loaded):
            line = locate(secret_path)
            raise ConfigError(
                f"{path}:{line}: key {'.'.join(secret_path)!r} is a secret: set it in the environment or .env, never in the file"
            )
        data = loaded
    token = _yaml_data.set(data)
    try:
        return Settings(config_file=path)
    except SettingsError as exc:  # an environment value that is not valid JSON for a list / mapping field
        found = re.search(r'field "([^"]+)"', str(exc))
        name = ENV_PREFIX + (found.group(1).upper() if found else "")
        value = os.environ.get(name)
        echoed = f" = {shown(name, value)}" if value is not None else ""
        raise ConfigError(f"environment {name}{echoed}: cannot be parsed; a list or mapping is written as JSON, "
                          f'e.g. ["a", "b"] or {{"key": 1}}, or set nested keys as {name}__KEY') from None
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            env_name = ENV_PREFIX + "__".join(loc).upper()
            if env_name in os.environ:
                messages.append(f"environment {env_name} = {shown(env_name, os.environ[env_name])}: {str(err['msg'])[:300]}")
            elif env_name in dotenv:
                messages.append(f"{DOTENV} {env_name} = {shown(env_name, dotenv[env_name])}: {str(err['msg'])[:300]}")
        detail = format_validation_error(exc, source=str(path) if path else "configuration", locate=locate)
        raise ConfigError("\n".join(messages) or detail) from None
    finally:
        _yaml_data.reset(token)


#: The dotenv file read from the working directory (pydantic-settings' ``env_file``).
DOTENV = ".env"


def dotenv_values() -> dict[str, str | None]:
    """The variables of ``.env`` in the working directory ({} when there is none).

    Raises ConfigError naming the file and line when it is not UTF-8 text (python-dotenv,
    which pydantic-settings reads it with, would fail with a traceback)."""
    from dotenv import dotenv_values as read

    file = Path(DOTENV)
    if not file.is_file():
        return {}
    try:
        raw = file.read_bytes()
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{file.resolve()}:{line}: not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r}); "
                          "save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{file.resolve()}: cannot read: {exc.strerror}") from None
    return dict(read(file))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; ``get_settings.cache_clear()`` to reload)."""
    return load_settings()


@lru_cache(maxsize=1)
def get_secrets() -> Secrets:
    """The process-wide secrets (cached). ConfigError for a .env that is not UTF-8 text."""
    dotenv_values()
    return Secrets()


def mask(value: str) -> str:
    """``'hf_abcdef...'`` -> ``'hf_***'``: enough to recognise, nothing to use."""
    if len(value) <= 6:
        return "***"
    return value[:3] + "***"
