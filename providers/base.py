"""The provider interface and the one place where HTTP failures are classified.

A provider is one class in one module (``providers/<name>.py``) with its metadata as
class attributes, a keyword-only constructor ``(config=, secrets=)`` and one method,
``generate(request) -> GenerationResult``. Every failure leaves it as a
``ProviderError`` subclass (see core/errors.py); httpx exceptions are translated by
``translate_httpx`` and statuses by ``raise_for_status``, following the "Common rules"
of ../shared/contracts/providers.md:

* 401, 402, 403 -> AuthBillingProviderError (next provider, disabled for the run)
* 400, 404, 413, 422 -> RejectedProviderError (next provider, no retry)
* 408, 425, 429, 5xx, timeouts, connection errors -> TransientProviderError
* a 2xx body that is not a usable image -> InvalidOutputError (see ``validate_image``)
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
    InvalidOutputError,
    ProviderError,
    RejectedProviderError,
    TransientProviderError,
)
from core.settings import ProviderConfig, Secrets

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

    def __init__(self, *, config: ProviderConfig, secrets: Secrets) -> None:
        self.config = config
        self.secrets = secrets

    @property
    def model(self) -> str:
        """The model this provider will use unless a request names one."""
        return self.config.model or self.default_model

    def estimate_cost(self, request: GenerationRequest) -> float:
        """Estimated price of one image in USD: the configured ``cost_usd``, else the price table."""
        if self.config.cost_usd:
            return self.config.cost_usd
        return self.prices_usd.get(request.model or self.model, 0.0)

    @abstractmethod
    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Generate one image; raises a ProviderError subclass on any failure."""

    def close(self) -> None:
        """Release connections and loaded models."""

    def scrub(self, text: str) -> str:
        """``text`` with every configured secret replaced by ``***``."""
        for value in self.secrets.known_values():
            text = text.replace(value, "***")
        return text


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


def raise_for_status(response: httpx.Response, *, provider: str, model: str | None) -> None:
    """Raise the classified ProviderError for a status >= 400; return for success."""
    code = response.status_code
    if code < 400:
        return
    message = f"HTTP {code}: {_error_message(response)}"
    kwargs: dict[str, Any] = {"provider": provider, "model": model, "status_code": code}
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if code in (401, 402, 403):
        raise AuthBillingProviderError(message, **kwargs)
    if code in (408, 425, 429) or code >= 500:
        raise TransientProviderError(message, retry_after=retry_after, **kwargs)
    raise RejectedProviderError(message, **kwargs)


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
    standard deviation under 2: the all-black "filtered" image some backends return).
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
