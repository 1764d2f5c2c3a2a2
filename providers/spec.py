"""What every provider module declares, and the mapping of a request onto a model.

A provider module (``providers/<name>.py``) holds one ``Provider`` subclass that declares,
as class attributes (see providers/base.py):

* ``Config``: its configuration model, a ``ProviderConfig`` subclass, validated from
  ``providers.<name>`` of the YAML file through the registry (providers/registry.py);
* ``secret_env``: its secrets, ``{secret name: (ENV_NAME, other accepted names ...)}``,
  read from the environment or ``.env`` only;
* ``price_table``: a ``PriceTable`` (USD per image, per megapixel or per second) with
  the URL of the provider's published price list and the date it was checked;
* ``model_specs``: per model, a ``ModelSpec``: the sizes or aspect ratios it accepts, its
  step and guidance ranges, whether it takes a negative prompt, img2img or a mask.

``map_request(spec, request)`` turns the pipeline's request (any size, 30 / 50 / 70
steps, guidance 7.5 / 8.5 / 9.5) into what the model accepts: the nearest allowed size
or aspect ratio, steps and guidance clamped (or dropped where the model has none), each
change written down as a note. The output check then compares the image with the size
actually asked for (``Mapped.width`` x ``Mapped.height``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # pragma: no cover
    from domain.model import GenerationRequest

PriceEntry = Annotated[float, Field(ge=0)] | dict[str, Annotated[float, Field(ge=0)]]


class RateLimit(BaseModel):
    """A provider's requests-per-window limit: at most ``requests`` calls in any
    ``per_s`` seconds (``per_s`` 60: requests per minute), e.g. the tier limits of
    https://platform.openai.com/docs/guides/rate-limits or
    https://platform.stability.ai/docs/getting-started/rate-limits."""

    model_config = ConfigDict(extra="forbid")
    requests: Annotated[int, Field(ge=1, le=1_000_000)]
    per_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0


class ProviderConfig(BaseModel):
    """Settings every provider has.

    ``model``: the model used unless a request (a template's pin) names one;
    ``cost_usd`` > 0: a flat estimated price per image (USD) that overrides the price
    table; ``timeout_s``: seconds one call may take; ``prices_usd``: overrides of the
    provider's price table entries (model -> USD, or model -> {key -> USD}; ``"*"`` for
    any model). A cost the provider reports (usage, GPU seconds) wins over both.
    ``allow_private_addresses``: let the provider's clients reach private, loopback and
    link-local addresses other than its configured URLs (off by default: a redirect there
    is refused, providers/netguard.py).
    ``rate_limit``: the provider's requests-per-window limit (``{requests: 50, per_s: 60}``),
    kept by every run and worker through a Prefect global rate limit
    (generation/limits.py); ``model_rate_limits``: per model (model id -> limit), in place
    of ``rate_limit`` for that model.
    """

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    model: str | None = None
    cost_usd: Annotated[float, Field(ge=0)] = 0.0
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0
    prices_usd: dict[str, PriceEntry] = Field(default_factory=dict)
    allow_private_addresses: bool = False
    rate_limit: RateLimit | None = None
    model_rate_limits: dict[Annotated[str, Field(min_length=1, max_length=200)], RateLimit] = Field(default_factory=dict)


def price_from_table(table: Mapping[str, Any], model: str, key: str) -> float | None:
    """USD for ``model`` at ``key`` (``/``-joined parts such as ``hd/1792x1024``: a quality
    tier, the provider's quality name, a size or aspect ratio) in a price mapping, or None.
    A nested entry is looked up by ``key``, then by its shorter runs of parts (longest
    first: ``hd``, ``1792x1024``), then ``default``; ``"*"`` stands for any model."""
    entry = table.get(model, table.get("*"))
    if entry is None:
        return None
    if isinstance(entry, Mapping):
        parts = key.split("/")
        candidates = ["/".join(parts[i : i + n]) for n in range(len(parts), 0, -1) for i in range(len(parts) - n + 1)]
        for candidate in (*candidates, "default"):
            if candidate in entry:
                return float(entry[candidate])
        return None
    return float(entry)


@dataclass(frozen=True)
class PriceTable:
    """A provider's published prices.

    ``unit``: ``image`` (USD per image), ``megapixel`` (USD per output megapixel) or
    ``second`` (USD per second of GPU time). ``prices``: model -> USD, or model ->
    {key -> USD} where the key is a quality tier (``standard`` / ``hd`` / ``ultra-hd``),
    a size (``1024x1792``) or both (``hd/1024x1792``). ``hardware_usd_per_second``:
    GPU prices of time-billed models (Replicate), with ``model_hardware`` naming each
    model's GPU and ``typical_seconds`` the usual run time used for the estimate.
    ``source_url`` is the published price list, ``checked`` the ISO date it was read.
    """

    source_url: str
    checked: str
    prices: Mapping[str, float | Mapping[str, float]] = field(default_factory=dict)
    unit: Literal["image", "megapixel", "second"] = "image"
    hardware_usd_per_second: Mapping[str, float] = field(default_factory=dict)
    model_hardware: Mapping[str, str] = field(default_factory=dict)
    typical_seconds: Mapping[str, float] = field(default_factory=dict)
    note: str = ""

    def lookup(self, model: str, key: str) -> float | None:
        """USD for ``model`` at ``key`` in this table (see ``price_from_table``)."""
        return price_from_table(self.prices, model, key)

    def per_second(self, model: str) -> float | None:
        """USD per second of the GPU ``model`` runs on, when it is billed by time."""
        hardware = self.model_hardware.get(model)
        return self.hardware_usd_per_second.get(hardware) if hardware else None


@dataclass(frozen=True)
class ModelSpec:
    """The inputs one model accepts.

    Size, one of: ``sizes`` (the allowed (width, height) pairs, pixels), ``aspect_ratios``
    (``"16:9"`` ...; the output is about ``megapixels`` MP), ``side_choices`` (the values
    width and height may each take) or ``side_range`` (min, max pixels per side) with
    ``side_multiple`` and ``max_pixels``. ``steps`` / ``guidance``: (min, max), None when
    the model takes no such input. ``negative_prompt``, ``img2img`` (an init image and
    a strength), ``inpainting`` (a mask), ``loras`` (LoRAs by name), ``controlnet``
    (ControlNet units with control images) and ``ip_adapter`` (an IP-Adapter style
    reference: an image prompt) say what else it takes.
    """

    sizes: tuple[tuple[int, int], ...] = ()
    aspect_ratios: tuple[str, ...] = ()
    megapixels: float = 1.0
    side_choices: tuple[int, ...] = ()
    side_range: tuple[int, int] | None = (64, 4096)
    side_multiple: int = 8
    max_pixels: int | None = None
    steps: tuple[int, int] | None = (1, 150)
    guidance: tuple[float, float] | None = (0.0, 30.0)
    negative_prompt: bool = True
    img2img: bool = False
    inpainting: bool = False
    loras: bool = False
    controlnet: bool = False
    ip_adapter: bool = False


@dataclass(frozen=True)
class Mapped:
    """A request mapped onto a model: the size asked for (pixels; for aspect-ratio models
    the expected output at ``aspect_ratio``), steps and guidance to send (None: not
    sent), whether the negative prompt is sent, and the notes on what changed."""

    width: int
    height: int
    aspect_ratio: str | None
    num_inference_steps: int | None
    guidance_scale: float | None
    negative_prompt: str | None
    notes: tuple[str, ...] = ()

    @property
    def size_label(self) -> str:
        """``1536x1024``, or the aspect ratio (``16:9``) for models that take one."""
        return self.aspect_ratio or f"{self.width}x{self.height}"


def _ratio(text: str) -> float:
    a, b = (float(x) for x in text.split(":"))
    return a / b


def nearest_aspect_ratio(width: int, height: int, choices: tuple[str, ...]) -> str:
    """The ratio of ``choices`` (``"16:9"``) closest to ``width`` / ``height`` (log space)."""
    target = math.log(width / height)
    return min(choices, key=lambda r: abs(math.log(_ratio(r)) - target))


def size_for_ratio(ratio: str, megapixels: float = 1.0, multiple: int = 64) -> tuple[int, int]:
    """About ``megapixels`` MP at ``ratio``, sides rounded to ``multiple`` pixels."""
    r = _ratio(ratio)
    height = math.sqrt(megapixels * 1_048_576 / r)
    return max(multiple, round(height * r / multiple) * multiple), max(multiple, round(height / multiple) * multiple)


def nearest_size(width: int, height: int, sizes: tuple[tuple[int, int], ...] | list[tuple[int, int]]) -> tuple[int, int]:
    """The allowed size nearest ``width`` x ``height``: among those within 3 % of its
    aspect ratio the one closest in area, else the one closest in aspect ratio."""
    target = math.log(width / height)
    area = width * height
    close = [s for s in sizes if abs(math.log(s[0] / s[1]) - target) <= 0.03]
    if close:
        return min(close, key=lambda s: (abs(math.log(s[0] * s[1] / area)), -s[0] * s[1]))
    return min(sizes, key=lambda s: (abs(math.log(s[0] / s[1]) - target), -s[0] * s[1]))


def _clamp_side(value: float, low: int, high: int, multiple: int) -> int:
    value = min(max(value, low), high)
    snapped = int(round(value / multiple) * multiple)
    while snapped > high:
        snapped -= multiple
    while snapped < low:
        snapped += multiple
    return snapped


def map_size(spec: ModelSpec, width: int, height: int) -> tuple[int, int, str | None]:
    """(width, height, aspect ratio or None) the model accepts, nearest ``width`` x ``height``."""
    if spec.aspect_ratios:
        ratio = nearest_aspect_ratio(width, height, spec.aspect_ratios)
        w, h = size_for_ratio(ratio, spec.megapixels)
        return w, h, ratio
    if spec.sizes:
        w, h = nearest_size(width, height, spec.sizes)
        return w, h, None
    if spec.side_choices:
        pairs = [(w, h) for w in spec.side_choices for h in spec.side_choices if spec.max_pixels is None or w * h <= spec.max_pixels]
        w, h = nearest_size(width, height, pairs)
        return w, h, None
    low, high = spec.side_range or (64, 4096)
    w_f, h_f = float(width), float(height)
    if spec.max_pixels and w_f * h_f > spec.max_pixels:
        scale = math.sqrt(spec.max_pixels / (w_f * h_f))
        w_f, h_f = w_f * scale, h_f * scale
    if min(w_f, h_f) < low:  # scale up, keeping the aspect ratio
        scale = low / min(w_f, h_f)
        w_f, h_f = w_f * scale, h_f * scale
    if max(w_f, h_f) > high:  # scale down, keeping the aspect ratio
        scale = high / max(w_f, h_f)
        w_f, h_f = w_f * scale, h_f * scale
    w, h = _clamp_side(w_f, low, high, spec.side_multiple), _clamp_side(h_f, low, high, spec.side_multiple)
    while spec.max_pixels and w * h > spec.max_pixels:  # rounding went over the cap: shave the longer side
        if w >= h:
            w -= spec.side_multiple
        else:
            h -= spec.side_multiple
    return w, h, None


_N = TypeVar("_N", int, float)


def _fit(name: str, value: _N, bounds: tuple[_N, _N] | None, notes: list[str]) -> _N | None:
    """``value`` clamped into ``bounds`` (None: the model takes no such parameter, dropped),
    with a note in ``notes`` when it changed."""

    def show(v: float) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    if bounds is None:
        notes.append(f"{name} {show(value)} dropped (the model takes none)")
        return None
    low, high = bounds
    if low <= value <= high:
        return value
    fitted = min(max(value, low), high)
    notes.append(f"{name} {show(value)} -> {show(fitted)} (allowed {show(low)}..{show(high)})")
    return fitted


def map_request(spec: ModelSpec, request: GenerationRequest) -> Mapped:
    """``request`` mapped onto ``spec`` (see the module docstring); never raises."""
    notes: list[str] = []
    width, height, ratio = map_size(spec, request.width, request.height)
    if ratio is not None:
        notes.append(f"size {request.width}x{request.height} -> aspect ratio {ratio}")
    elif (width, height) != (request.width, request.height):
        notes.append(f"size {request.width}x{request.height} -> {width}x{height}")
    steps = _fit("num_inference_steps", request.num_inference_steps, spec.steps, notes)
    guidance = _fit("guidance_scale", request.guidance_scale, spec.guidance, notes)
    negative: str | None = request.negative_prompt or None
    if negative and not spec.negative_prompt:
        notes.append("negative_prompt dropped (the model takes none)")
        negative = None
    return Mapped(width, height, ratio, steps, guidance, negative, tuple(notes))
