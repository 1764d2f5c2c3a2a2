"""Classifying a provider's HTTP answer: the error an HTTP status and a JSON error body mean
(RFC 9110 status codes, https://www.rfc-editor.org/rfc/rfc9110#section-15), Retry-After
(https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3) and rate-limit headers, and httpx
transport errors turned into TransientProviderError (https://www.python-httpx.org/exceptions/).

providers/base.py re-exports these names; providers/download.py uses them without base.
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from domain.errors import (
    AuthBillingProviderError,
    ContentFilteredError,
    ProviderError,
    RejectedProviderError,
    TransientProviderError,
)

#: Provider error codes that mean "no money / no access": the provider is disabled for the run.
BILLING_CODES = frozenset(
    {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active", "payment_required", "insufficient_credit", "insufficient_credits"}
)
#: Provider error codes that mean "the safety system refused this prompt or image".
FILTER_CODES = frozenset({"content_policy_violation", "moderation_blocked", "content_moderation", "content_moderated", "request_moderated"})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date, RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
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
            error = body.get("error")
            if isinstance(error, dict) and error.get("message"):  # OpenAI-style {"error": {"message", "code"}}
                message = str(error["message"])
            else:
                for key in ("detail", "error", "message", "title", "errors"):
                    if body.get(key):
                        message = str(body[key])
                        break
                else:
                    message = str(body)
        else:
            message = str(body)
    return " ".join(message.split())[:300]


def error_code_of(response: httpx.Response) -> str | None:
    """The provider's own error code in a JSON error body: OpenAI's ``error.code`` /
    ``error.type``, Stability's ``name``, a top-level ``code``; lower case, or None."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        value = error.get("code") or error.get("type")
    else:
        value = body.get("code") or body.get("name")
    return str(value).lower() if isinstance(value, str) and value else None


def error_for_status(
    code: int,
    detail: str,
    *,
    provider: str,
    model: str | None,
    retry_after: float | None = None,
    error_code: str | None = None,
) -> ProviderError:
    """The classified ProviderError for HTTP status ``code`` (>= 400) with message ``detail``.

    ``error_code`` (the provider's own code, lower case) wins over the status: a
    ``BILLING_CODES`` member is auth/billing whatever the status (OpenAI answers
    ``insufficient_quota`` with 429), a ``FILTER_CODES`` member a content filter."""
    message = f"HTTP {code}: {error_code + ': ' if error_code and error_code not in detail else ''}{detail}"
    kwargs: dict[str, Any] = {"provider": provider, "model": model, "status_code": code}
    if error_code in BILLING_CODES:
        return AuthBillingProviderError(message, **kwargs)
    if error_code in FILTER_CODES:
        return ContentFilteredError(f"content filtered: {message}", **kwargs)
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
    that providers/quota.py reads from an attempt (``metadata["headers"]`` or ``error.headers``)."""
    return {name.lower(): value for name, value in response.headers.items() if "ratelimit" in name.lower()}


def raise_for_status(response: httpx.Response, *, provider: str, model: str | None) -> None:
    """Raise the classified ProviderError for a status >= 400; return for success.

    The error carries the answer's rate-limit headers (``error.headers``)."""
    code = response.status_code
    if code < 400:
        return
    error = error_for_status(
        code, _error_message(response), provider=provider, model=model, retry_after=retry_after_of(response), error_code=error_code_of(response)
    )
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
