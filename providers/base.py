"""The provider interface and the one place where HTTP failures are classified.

A provider is one class in one module (``providers/<name>.py``) with its metadata as
class attributes, a keyword-only constructor ``(config=, secrets=, downloader=)`` (the
SSRF-safe fetcher of output URLs, providers/download.py) and one method,
``generate(request) -> GenerationResult``; ``check()`` tests reachability and
credentials without spending money. Every failure leaves it as a
``ProviderError`` subclass (see core/errors.py); httpx exceptions are translated by
``translate_httpx`` and statuses by ``raise_for_status``, following the "Common rules"
of ../shared/contracts/providers.md:

* 401, 402, 403 -> AuthBillingProviderError (next provider, disabled for the run)
* 400, 404, 413, 422 -> RejectedProviderError (next provider, no retry)
* 408, 425, 429, 5xx, timeouts, connection errors -> TransientProviderError
* a 2xx body that is not a usable image -> InvalidOutputError (see ``validate_image``)
* a content filter's flag, moderation error or all-black image -> ContentFilteredError
  (a rejection: the same prompt and seed give the same refusal)

SDK clients (huggingface_hub, openai) raise their own exceptions: each adapter turns
them into a status, message and headers and calls ``error_for_status``.
"""

from __future__ import annotations

import email.utils
import io
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import httpx
from PIL import Image, ImageStat, UnidentifiedImageError

from core.domain import GenerationRequest, GenerationResult
from core.errors import (
    AuthBillingProviderError,
    ContentFilteredError,
    InvalidOutputError,
    ProviderError,
    RejectedProviderError,
    TransientProviderError,
)
from core.settings import ProviderConfig, Secrets, price_from_table

#: Largest image a provider may hand us: 64 megapixels, 64 MiB of encoded bytes.
MAX_PIXELS = 64_000_000
MAX_BYTES = 64 * 1024 * 1024
ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP"}


class Provider(ABC):
    """Base class of every image-generation backend.

    Class attributes: ``name`` (registry key), ``display_name``, ``models`` (known
    model ids), ``default_model``, ``prices_usd`` (USD per image by model),
    ``secret_settings`` (names of the Secrets fields it reads), ``is_placeholder``.
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    models: ClassVar[tuple[str, ...]] = ()
    default_model: ClassVar[str] = ""
    prices_usd: ClassVar[dict[str, float]] = {}
    secret_settings: ClassVar[tuple[str, ...]] = ()
    is_placeholder: ClassVar[bool] = False

    def __init__(self, *, config: ProviderConfig, secrets: Secrets, downloader: Any = None) -> None:
        self.config = config
        self.secrets = secrets
        if downloader is None:
            from providers.download import SafeDownloader

            downloader = SafeDownloader()
        #: Fetches output URLs the provider hands back (providers/download.py: SSRF-safe).
        self.downloader = downloader

    @property
    def model(self) -> str:
        """The model this provider will use unless a request names one."""
        return self.config.model or self.default_model

    def estimate_cost(self, request: GenerationRequest) -> float:
        """Estimated price of one image in USD: the configured ``cost_usd``, else the
        configured price table (model, quality tier), else the class's ``prices_usd``."""
        if self.config.cost_usd:
            return self.config.cost_usd
        return self.unit_price(request)

    def unit_price(self, request: GenerationRequest) -> float:
        """The price-table entry (USD) for the request's model and quality tier: the
        configured ``prices_usd`` first, then the class's ``prices_usd``, else 0."""
        model = request.model or self.model
        price = price_from_table(getattr(self.config, "prices_usd", {}) or {}, model, request.quality_tier)
        if price is not None:
            return price
        return self.prices_usd.get(model, 0.0)

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

    def missing_secrets(self) -> list[str]:
        """Names of the environment variables this provider needs and lacks."""
        env_names = {"huggingface_token": "HUGGINGFACE_TOKEN", "replicate_api_token": "REPLICATE_API_TOKEN",
                     "stability_api_key": "STABILITY_API_KEY", "openai_api_key": "OPENAI_API_KEY",
                     "fal_key": "FAL_KEY", "civitai_api_token": "CIVITAI_API_TOKEN"}
        return [env_names[name] for name in self.secret_settings
                if name in env_names and getattr(self.secrets, name, None) is None]

    def secret(self, name: str) -> str | None:
        """The plain value of the Secrets field ``name`` (never log it)."""
        value = getattr(self.secrets, name, None)
        return value.get_secret_value() if value is not None else None

    @abstractmethod
    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Generate one image; raises a ProviderError subclass on any failure."""

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


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date, RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def _error_message(response: httpx.Response) -> str:
    message = response.headers.get("x-error-message", "")
    if not message:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:200]
        if isinstance(body, dict):
            for key in ("detail", "error", "message", "title", "errors"):
                if body.get(key):
                    message = str(body[key])
                    break
            else:
                message = str(body)
        else:
            message = str(body)
    return " ".join(message.split())[:300]


def error_for_status(
    code: int, detail: str, *, provider: str, model: str | None, retry_after: float | None = None
) -> ProviderError:
    """The classified ProviderError for HTTP status ``code`` (>= 400) with message ``detail``."""
    message = f"HTTP {code}: {detail}"
    kwargs: dict[str, Any] = {"provider": provider, "model": model, "status_code": code}
    if code in (401, 402, 403):
        return AuthBillingProviderError(message, **kwargs)
    if code in (408, 425, 429) or code >= 500:
        return TransientProviderError(message, retry_after=retry_after, **kwargs)
    return RejectedProviderError(message, **kwargs)


def retry_after_of(response: httpx.Response) -> float | None:
    """Seconds from Retry-After, else from a JSON body's ``retry_after`` (Replicate) or
    ``estimated_time`` (Hugging Face "model loading")."""
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if retry_after is None and response.status_code in (429, 503):
        try:
            body = response.json()
        except ValueError:
            return None
        if isinstance(body, dict):
            for key in ("retry_after", "estimated_time"):
                if isinstance(body.get(key), (int, float)):
                    return max(0.0, float(body[key]))
    return retry_after


def rate_limit_headers(response: httpx.Response) -> dict[str, str]:
    """The answer's rate-limit headers (``*ratelimit*``, lower-case names): the quota hints
    that core/quota.py reads from an attempt (``metadata["headers"]`` or ``error.headers``)."""
    return {name.lower(): value for name, value in response.headers.items() if "ratelimit" in name.lower()}


def raise_for_status(response: httpx.Response, *, provider: str, model: str | None) -> None:
    """Raise the classified ProviderError for a status >= 400; return for success.

    The error carries the answer's rate-limit headers (``error.headers``)."""
    code = response.status_code
    if code < 400:
        return
    error = error_for_status(code, _error_message(response), provider=provider, model=model,
                             retry_after=retry_after_of(response))
    error.headers = rate_limit_headers(response)
    raise error


@contextmanager
def translate_httpx(*, provider: str, model: str | None) -> Iterator[None]:
    """Turn httpx transport errors raised inside the block into TransientProviderError."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TransientProviderError(f"timeout: {type(exc).__name__}", provider=provider, model=model) from exc
    except httpx.TransportError as exc:
        raise TransientProviderError(f"request failed: {type(exc).__name__}: {exc}", provider=provider, model=model) from exc


def validate_image(data: bytes, *, provider: str, model: str | None, expected: tuple[int, int] | None = None) -> tuple[int, int, str]:
    """Check that ``data`` is a usable image; return (width, height, format).

    Refuses (InvalidOutputError): empty or oversized bodies, bytes that are not PNG /
    JPEG / WebP, truncated files, more than MAX_PIXELS, sides under 64 px, an aspect
    ratio more than 25% off ``expected`` (width, height), and blank images (greyscale
    standard deviation under 2). An all-black image (mean under 2 as well) is the
    "filtered" image of safety checkers: ContentFilteredError, a rejection.
    """

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
    except ProviderError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise bad(f"does not decode ({type(exc).__name__}: {str(exc)[:120]})") from exc
    if min(width, height) < 64:
        raise bad(f"{width}x{height} is too small")
    if expected:
        want = expected[0] / expected[1]
        got = width / height
        if abs(got - want) / want > 0.25:
            raise bad(f"{width}x{height} does not match the requested {expected[0]}x{expected[1]}")
    if stat.stddev[0] < 2.0:
        if stat.mean[0] < 2.0:  # what safety checkers hand back instead of the image
            raise ContentFilteredError(f"content filtered: all-black image ({width}x{height})",
                                       provider=provider, model=model)
        raise bad(f"blank image (mean {stat.mean[0]:.0f}, stddev {stat.stddev[0]:.2f})")
    return width, height, fmt


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
) -> GenerationResult:
    """Validate ``data`` and wrap it in a GenerationResult (latency measured from ``started``)."""
    width, height, _ = validate_image(data, provider=provider.name, model=model, expected=(request.width, request.height))
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
        metadata=metadata or {},
    )
