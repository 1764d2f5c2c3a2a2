"""The provider interface and the one place where HTTP failures are classified.

A provider is one class in one module (``providers/<name>.py``) with its metadata as
class attributes (Apprise's plugin layout, apprise/plugins/*.py): its ``Config`` model,
``secret_env`` (secret name -> environment variable names), ``price_table`` (with the
URL of the published price list) and ``model_specs`` (per model, the inputs it accepts:
providers/spec.py). It has a keyword-only constructor ``(config=, secrets=,
downloader=)`` (the SSRF-safe fetcher of output URLs, providers/download.py) and one
method, ``generate(request) -> GenerationResult``; ``check()`` tests reachability and
credentials without spending money. Every failure leaves it as a ``ProviderError``
subclass (see domain/errors.py); httpx exceptions are translated by ``translate_httpx``
and statuses by ``raise_for_status``:

* 401, 402, 403 -> AuthBillingProviderError (next provider, disabled for the run)
* 400, 404, 413, 422 -> RejectedProviderError (next provider, no retry)
* 408, 425, 429, 5xx, timeouts, connection errors -> TransientProviderError
* a provider's own error code wins over its status (``error_for_status(code=)``):
  OpenAI's ``insufficient_quota`` / ``billing_hard_limit_reached`` (sent with 429) are
  auth/billing, ``content_policy_violation`` / ``moderation_blocked`` a content filter
  (https://platform.openai.com/docs/guides/error-codes);
* a 2xx body that is not a usable image -> InvalidOutputError (see ``validate_image``)
* a content filter's flag, moderation error or all-black image -> ContentFilteredError
  (a rejection: the same prompt and seed give the same refusal)

SDK clients (huggingface_hub, openai) raise their own exceptions: each adapter turns
them into a status, message, error code and headers and calls ``error_for_status``.

Asynchronous APIs (submit a job, then poll it: bfl, fal, replicate) read each answer
with ``Provider.call_json`` (a JSON object, or the classified error) and poll with
``poll_until`` (an interval, a deadline, their own classification of each answer).
"""

from __future__ import annotations

import io
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Protocol

import httpx
from PIL import Image, ImageStat, UnidentifiedImageError

from domain.model import GenerationRequest, GenerationResult
from domain.errors import (
    ContentFilteredError,
    InvalidOutputError,
    ProviderError,
    RejectedProviderError,
)
from providers.lifecycle import ModelStatus
from providers.httperrors import raise_for_status, translate_httpx
from providers.spec import Mapped, ModelSpec, PriceTable, ProviderConfig, map_request, price_from_table
from providers.download import SafeDownloader

#: Largest image a provider may hand us: 64 megapixels, 64 MiB of encoded bytes.
MAX_PIXELS = 64_000_000
MAX_BYTES = 64 * 1024 * 1024
ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP"}
#: How far (relative) an output's aspect ratio may be from the size asked for: 10 %.
ASPECT_TOLERANCE = 0.10

#: Set by the chain around one provider call (``recording_jobs``): called with the job id as
#: soon as an asynchronous provider's submit is answered, before it waits for the job.
_JOB_LISTENER: ContextVar[Callable[[str], None] | None] = ContextVar("job_listener", default=None)


@contextmanager
def recording_jobs(listener: Callable[[str], None] | None) -> Iterator[None]:
    """Within the block (one provider call in this thread), ``job_submitted(job_id)`` calls
    ``listener(job_id)``: the chain records the id on the call's in-flight attempt row."""
    token = _JOB_LISTENER.set(listener)
    try:
        yield
    finally:
        _JOB_LISTENER.reset(token)


def job_submitted(job_id: str) -> None:
    """Tell the caller (``recording_jobs``) the id of the job just submitted, before waiting:
    a run killed while the job runs leaves the id for the next run to poll."""
    listener = _JOB_LISTENER.get()
    if listener is not None and job_id:
        listener(job_id)


class SecretSource(Protocol):
    """Where providers read their secrets (config.secrets.Secrets: environment and .env)."""

    def lookup(self, names: Sequence[str]) -> str | None:
        """The first non-empty value among the environment variables ``names``."""

    def known_values(self) -> list[str]:
        """Every secret value known, for scrubbing messages."""


class Provider(ABC):
    """Base class of every image-generation backend.

    Class attributes: ``name`` (registry key), ``display_name``, ``Config`` (its
    ProviderConfig subclass), ``secret_env`` ({secret: (ENV_NAME, ...)}), ``price_table``
    (PriceTable or None when free), ``model_specs`` ({model: ModelSpec}) with
    ``default_spec`` for models not listed, ``models`` (known model ids, shown by
    ``providers list``), ``default_model``, ``is_placeholder``, ``model_lifecycle``
    ({model: ModelStatus}: status, shutdown date, replacement and source URL,
    providers/lifecycle.py).
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    Config: ClassVar[type[ProviderConfig]] = ProviderConfig
    secret_env: ClassVar[dict[str, tuple[str, ...]]] = {}
    price_table: ClassVar[PriceTable | None] = None
    model_specs: ClassVar[dict[str, ModelSpec]] = {}
    default_spec: ClassVar[ModelSpec] = ModelSpec()
    models: ClassVar[tuple[str, ...]] = ()
    default_model: ClassVar[str] = ""
    #: Keys of ``secret_env`` the provider works without (an optional login, a token for
    #: gated models only): ``missing_secrets()`` does not list them.
    optional_secret_env: ClassVar[frozenset[str]] = frozenset()
    is_placeholder: ClassVar[bool] = False
    #: The models this provider knows with their lifecycle (providers/lifecycle.py).
    model_lifecycle: ClassVar[dict[str, ModelStatus]] = {}

    def __init__(self, *, config: ProviderConfig, secrets: SecretSource, downloader: Any = None) -> None:
        self.config = config
        self.secrets = secrets
        if downloader is None:
            downloader = SafeDownloader()
        #: Fetches output URLs the provider hands back (providers/download.py: SSRF-safe).
        self.downloader = downloader

    @property
    def model(self) -> str:
        """The model this provider will use unless a request names one."""
        return self.config.model or self.default_model

    def model_of(self, request: GenerationRequest) -> str:
        """The model ``request`` runs on: its own (a template's pin) or the configured one."""
        return request.model or self.model

    def model_status(self, model: str) -> ModelStatus:
        """``model``'s lifecycle: adapters whose API tells (a model endpoint) ask it; the
        base class answers the declared ``model_lifecycle`` entry, else ``unknown``."""
        return self.model_lifecycle.get(model, ModelStatus(model, "unknown"))

    def model_spec(self, model: str) -> ModelSpec:
        """The input schema of ``model`` (``default_spec`` when it is not listed)."""
        return self.model_specs.get(model, self.default_spec)

    def map(self, request: GenerationRequest) -> Mapped:
        """``request`` mapped onto what its model accepts (providers/spec.py)."""
        return map_request(self.model_spec(self.model_of(request)), request)

    def cannot(self, request: GenerationRequest) -> str | None:
        """Why this provider cannot serve ``request`` at all (img2img, a mask, LoRAs, ControlNet units, a style reference), else None.

        The chain skips the provider for that request with this reason on the attempt row."""
        model = self.model_of(request)
        spec = self.model_spec(model)
        if request.mask_image is not None and not spec.inpainting:
            return f"{self.name} {model} cannot inpaint (a mask was given)"
        if request.init_image is not None and not spec.img2img:
            return f"{self.name} {model} cannot do img2img (a reference image was given)"
        if request.loras and not spec.loras:
            return f"{self.name} {model} cannot apply LoRAs ({', '.join(name for name, _ in request.loras)})"
        if request.control_units and not spec.controlnet:
            units = ", ".join(f"{c.unit.module}/{c.unit.model}" for c in request.control_units)
            return f"{self.name} {model} cannot apply ControlNet units ({units})"
        if request.style_reference is not None and not spec.ip_adapter:
            return f"{self.name} {model} cannot take an IP-Adapter style reference ({request.style_reference.unit.model})"
        return None

    def price_key(self, request: GenerationRequest, mapped: Mapped) -> str:
        """The price-table key of ``request``: ``<quality tier>/<size or aspect ratio>``."""
        return f"{request.quality_tier}/{mapped.size_label}"

    def estimate_cost(self, request: GenerationRequest) -> float:
        """Estimated price of one image in USD: the configured ``cost_usd``, else the
        configured ``prices_usd`` overrides, else the class's ``price_table`` (per image,
        per output megapixel, or per GPU second x the model's typical seconds)."""
        if self.config.cost_usd:
            return self.config.cost_usd
        model = self.model_of(request)
        mapped = self.map(request)
        key = self.price_key(request, mapped)
        unit_price = price_from_table(self.config.prices_usd, model, key)
        table = self.price_table
        if unit_price is None and table is not None:
            per_second = table.per_second(model)
            if per_second is not None:
                return round(per_second * table.typical_seconds.get(model, 10.0), 6)
            unit_price = table.lookup(model, key)
        if unit_price is None:
            return 0.0
        if table is not None and table.unit == "megapixel":
            return round(unit_price * mapped.width * mapped.height / 1e6, 6)
        return unit_price

    def max_cost(self, request: GenerationRequest, timeout_s: float | None = None) -> float:
        """Upper bound of what one call may be billed (USD): for a model billed by GPU
        time, its hardware price per second x ``timeout_s`` (default: the configured
        timeout); else ``estimate_cost``."""
        if not self.config.cost_usd and self.price_table is not None:
            model = self.model_of(request)
            per_second = self.price_table.per_second(model)
            if per_second is not None and price_from_table(self.config.prices_usd, model, "") is None:
                return round(per_second * (timeout_s if timeout_s is not None else self.config.timeout_s), 6)
        return self.estimate_cost(request)

    def unit_price(self, request: GenerationRequest) -> float:
        """The price-table entry (USD, in the table's unit) for the request's model and key."""
        model = self.model_of(request)
        key = self.price_key(request, self.map(request))
        price = price_from_table(self.config.prices_usd, model, key)
        if price is None and self.price_table is not None:
            price = self.price_table.lookup(model, key)
        return price or 0.0

    def check(self) -> ProviderCheck:
        """Reachability and credentials, without spending money where the API allows.

        The base class only reports whether the secrets it needs are set; adapters call
        a free endpoint (model list, account, balance) on top.
        """
        missing = self.missing_secrets()
        if missing:
            return ProviderCheck(False, f"missing {', '.join(missing)} in the environment or .env")
        return ProviderCheck(True, "no remote check for this provider")

    def probe_get(self, client: httpx.Client, path: str) -> httpx.Response | ProviderCheck:
        """GET ``path`` (a free endpoint) for ``check()``: the response, or a failed
        ProviderCheck when a secret is missing or the call fails (secrets scrubbed)."""
        missing = self.missing_secrets()
        if missing:
            return ProviderCheck(False, f"missing {missing[0]} in the environment or .env")
        try:
            with translate_httpx(provider=self.name, model=self.model):
                response = client.get(path)
            raise_for_status(response, provider=self.name, model=self.model)
        except ProviderError as exc:
            return ProviderCheck(False, self.scrub(str(exc)))
        return response

    def call_json(self, client: httpx.Client, method: str, url: str, model: str, **kwargs: Any) -> dict[str, Any]:
        """``method`` ``url`` on ``client`` (``kwargs``: httpx's ``json=``, ``headers=`` ...)
        and its answer's JSON object; a transport error, an error status or a body that is
        not a JSON object raises the classified ProviderError (``translate_httpx``,
        ``raise_for_status``, ``json_object``)."""
        with translate_httpx(provider=self.name, model=model):
            response = client.request(method, url, **kwargs)
        raise_for_status(response, provider=self.name, model=model)
        return json_object(response, provider=self.name, model=model)

    @classmethod
    def secret_names(cls) -> list[str]:
        """The main environment variable name of each secret this provider reads."""
        return [names[0] for names in cls.secret_env.values()]

    def missing_secrets(self) -> list[str]:
        """Names of the environment variables this provider needs and lacks."""
        return [names[0] for key, names in self.secret_env.items() if key not in self.optional_secret_env and self.secrets.lookup(names) is None]

    def secret(self, name: str) -> str | None:
        """The plain value of this provider's secret ``name`` (a key of ``secret_env``;
        never log it), or None when no environment variable holds a non-empty value."""
        return self.secrets.lookup(self.secret_env[name])

    @abstractmethod
    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Generate one image; raises a ProviderError subclass on any failure."""

    #: True for asynchronous APIs whose jobs can be polled again by id (``resume``).
    resumable: ClassVar[bool] = False

    def resume(self, job_id: str, request: GenerationRequest) -> GenerationResult:
        """The result of job ``job_id`` submitted earlier for ``request`` (a run killed or
        timed out while it ran), polled by id without submitting again; raises its failure
        (with ``billed_usd`` when known) like ``generate``. Only for ``resumable`` providers."""
        raise RejectedProviderError(f"{self.name} cannot resume job {job_id}", provider=self.name, model=self.model_of(request))

    def close(self) -> None:  # noqa: B027  (optional hook: most providers hold nothing to release)
        """Release connections and loaded models."""

    def scrub(self, text: str) -> str:
        """``text`` with every configured secret replaced by ``***``."""
        for value in self.secrets.known_values():
            text = text.replace(value, "***")
        return text


class ProviderCheck:
    """Outcome of ``Provider.check()``: ``ok`` and a one-line ``detail`` (no secrets)."""

    __slots__ = ("ok", "detail")

    def __init__(self, ok: bool, detail: str) -> None:
        self.ok = ok
        self.detail = detail

    def __repr__(self) -> str:
        return f"ProviderCheck(ok={self.ok}, detail={self.detail!r})"


def json_object(response: httpx.Response, *, provider: str, model: str | None) -> dict[str, Any]:
    """The answer's body as a JSON object; InvalidOutputError when it is not JSON or not an object."""
    try:
        data = response.json()
    except ValueError as exc:
        raise InvalidOutputError("invalid answer: body is not JSON", provider=provider, model=model) from exc
    if not isinstance(data, dict):
        raise InvalidOutputError("invalid answer: not a JSON object", provider=provider, model=model)
    return data


def poll_until(
    poll: Callable[[], dict[str, Any]],
    finished: Callable[[dict[str, Any]], bool],
    timed_out: Callable[[dict[str, Any]], ProviderError],
    *,
    deadline: float,
    interval_s: float,
    first: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Poll an asynchronous job until ``finished``; returns that last answer.

    The first answer is ``first`` (the submit call's, when it already tells the job's
    state), else a ``poll()`` made at once; then, while ``finished(answer)`` is False, one
    ``poll()`` after each ``interval_s`` seconds of sleep. ``finished`` also raises the
    job's own failures (a content filter, an error status); ``poll`` raises what
    ``Provider.call_json`` raises. When a sleep would end past ``deadline``
    (``time.monotonic()``), ``timed_out(answer)`` (the last answer) is raised instead.
    Cancelling or billing a job left behind is the caller's (``except ProviderError``
    around the call)."""
    answer = poll() if first is None else first
    while not finished(answer):
        if time.monotonic() + interval_s > deadline:
            raise timed_out(answer)
        time.sleep(interval_s)
        answer = poll()
    return answer


def validate_image(data: bytes, *, provider: str, model: str | None, expected: tuple[int, int] | None = None) -> tuple[int, int, str]:
    """Check that ``data`` is a usable image; return (width, height, format).

    Refuses (InvalidOutputError): empty or oversized bodies, bytes that are not PNG /
    JPEG / WebP, truncated files, more than MAX_PIXELS, sides under 64 px, an aspect
    ratio more than ``ASPECT_TOLERANCE`` off ``expected`` (width, height), and blank images (greyscale
    standard deviation under 2). An all-black image (mean under 2 as well) is the
    "filtered" image of safety checkers: ContentFilteredError, a rejection.
    """
    width, height, fmt, _ = decode_output(data, provider=provider, model=model, expected=expected)
    return width, height, fmt


def decode_output(data: bytes, *, provider: str, model: str | None, expected: tuple[int, int] | None = None) -> tuple[int, int, str, Image.Image]:
    """``validate_image``, also returning the decoded image (pixels loaded, file closed), so
    that post-processing does not decode the same bytes again (GenerationResult.decoded)."""

    def bad(reason: str) -> InvalidOutputError:
        return InvalidOutputError(f"invalid image: {reason}", provider=provider, model=model)

    if not data:
        raise bad("empty body")
    if len(data) > MAX_BYTES:
        raise bad(f"{len(data)} bytes is over the {MAX_BYTES}-byte cap")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format or "?"
            width, height = probe.size
            if fmt not in ALLOWED_FORMATS:
                raise bad(f"format {fmt} not allowed")
            if width * height > MAX_PIXELS:
                raise bad(f"{width}x{height} is over {MAX_PIXELS} pixels")
            probe.load()
            stat = ImageStat.Stat(probe.convert("L").resize((64, 64)))
            decoded = probe
    except ProviderError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise bad(f"does not decode ({type(exc).__name__}: {str(exc)[:120]})") from exc
    _check_shape(width, height, expected, bad)
    if stat.stddev[0] < 2.0:
        if stat.mean[0] < 2.0:  # what safety checkers hand back instead of the image
            raise ContentFilteredError(f"content filtered: all-black image ({width}x{height})", provider=provider, model=model)
        raise bad(f"blank image (mean {stat.mean[0]:.0f}, stddev {stat.stddev[0]:.2f})")
    return width, height, fmt, decoded


def _check_shape(width: int, height: int, expected: tuple[int, int] | None, bad: Callable[[str], InvalidOutputError]) -> None:
    """Refuse an output under 64 px a side, or one whose aspect ratio is more than
    ``ASPECT_TOLERANCE`` from the ``expected`` size (providers round sides to 16, 32, 64 px,
    none changes the shape)."""
    if min(width, height) < 64:
        raise bad(f"{width}x{height} is too small")
    if expected:
        want = expected[0] / expected[1]
        got = width / height
        if abs(got - want) / want > ASPECT_TOLERANCE:
            raise bad(f"{width}x{height} does not match the requested {expected[0]}x{expected[1]}")


def result_from_bytes(
    data: bytes,
    *,
    provider: Provider,
    request: GenerationRequest,
    model: str,
    seed: int | None,
    cost_usd: float,
    started: float,
    metadata: dict[str, Any] | None = None,
    mapped: Mapped | None = None,
) -> GenerationResult:
    """Validate ``data`` and wrap it in a GenerationResult (latency measured from ``started``).

    The image is checked against the size actually asked for (``mapped``, default: the
    request mapped by the provider); the requested size, the mapped size or aspect ratio
    and the mapping notes go into ``metadata`` and ``GenerationResult.mapped_size``."""
    if mapped is None:
        mapped = provider.map(request)
    width, height, _, decoded = decode_output(data, provider=provider.name, model=model, expected=(mapped.width, mapped.height))
    details = dict(metadata or {})
    details.setdefault("requested_size", f"{request.width}x{request.height}")
    details.setdefault("mapped_size", mapped.size_label)
    if mapped.notes:
        details.setdefault("mapping_notes", list(mapped.notes))
    return GenerationResult(
        image=data,
        provider=provider.name,
        model=model,
        seed=seed,
        width=width,
        height=height,
        cost_usd=cost_usd,
        latency_s=time.monotonic() - started,
        is_placeholder=provider.is_placeholder,
        metadata=details,
        mapped_size=mapped.size_label,
        decoded=decoded,
    )
