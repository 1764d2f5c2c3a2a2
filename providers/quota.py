"""Quota hints from rate-limit headers: how many calls a provider will still take.

Read from a provider's response headers, which an adapter passes on in
``GenerationResult.metadata`` (either the header names as keys, or a ``headers``
mapping) or as a ``headers`` attribute of a ProviderError. Header families, first
match wins:

* ``X-RateLimit-Remaining-Requests`` / ``X-RateLimit-Limit-Requests`` (OpenAI,
  https://platform.openai.com/docs/guides/rate-limits);
* ``X-RateLimit-Remaining`` / ``X-RateLimit-Limit`` (GitHub-style, most APIs);
* ``RateLimit-Remaining`` / ``RateLimit-Limit`` (IETF draft-ietf-httpapi-ratelimit-headers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

_FAMILIES = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-limit-requests"),
    ("x-ratelimit-remaining", "x-ratelimit-limit"),
    ("ratelimit-remaining", "ratelimit-limit"),
)


def _int(value: Any) -> int | None:
    try:
        return int(float(str(value).split(",")[0].split(";")[0].strip()))
    except (TypeError, ValueError):
        return None


class QuotaHints(TypedDict):
    """Calls left and the limit, as far as an answer tells (keyword arguments of ``Attempt``)."""

    quota_remaining: int | None
    quota_limit: int | None


def quota_hints(source: Mapping[str, Any] | None) -> QuotaHints:
    """``{"quota_remaining": calls left or None, "quota_limit": limit or None}`` from
    headers or provider metadata (names matched case-insensitively, ``_`` = ``-``)."""
    if not source:
        return {"quota_remaining": None, "quota_limit": None}
    flat: dict[str, Any] = {}
    nested = source.get("headers") if isinstance(source.get("headers"), Mapping) else None
    for mapping in (nested or {}, source):
        for key, value in mapping.items():
            flat.setdefault(str(key).lower().replace("_", "-"), value)
    for remaining_name, limit_name in _FAMILIES:
        if remaining_name in flat:
            return {"quota_remaining": _int(flat[remaining_name]), "quota_limit": _int(flat.get(limit_name))}
    return {"quota_remaining": None, "quota_limit": None}
