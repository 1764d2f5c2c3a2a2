"""The policy's optional second layer: OpenAI's moderation endpoint.

``POST {base_url}/moderations`` with ``{"model": "omni-moderation-latest", "input": ...}``,
the input a string, or (with an image) a list of ``{"type": "text", "text": ...}`` and
``{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`` parts; the
answer ``{"id", "model", "results": [{"flagged", "categories", "category_scores",
"category_applied_input_types"}]}`` (https://platform.openai.com/docs/api-reference/moderations/create,
https://platform.openai.com/docs/api-reference/moderations/object, request fields as in the
official client, https://github.com/openai/openai-python/blob/main/src/openai/types/moderation_create_params.py).
Categories (https://platform.openai.com/docs/guides/moderation): ``harassment``,
``harassment/threatening``, ``hate``, ``hate/threatening``, ``illicit``, ``illicit/violent``,
``self-harm``, ``self-harm/intent``, ``self-harm/instructions``, ``sexual``,
``sexual/minors``, ``violence``, ``violence/graphic``.

Any failure to get a well-formed answer (connection, timeout, a non-200 status, a body of
another shape) raises ``ModerationUnavailable``, whose message never quotes the prompt;
the caller (``policy.gate.judge``) refuses or allows on it as configured.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))


class ModerationUnavailable(Exception):
    """The moderation endpoint gave no usable answer (the message names the failure, not the prompt)."""


@dataclass(frozen=True)
class ModerationResult:
    """``flagged``: a category that refuses was found; ``categories``: those categories."""

    flagged: bool
    categories: tuple[str, ...] = ()


def image_data_url(data: bytes) -> str:
    """``data`` (PNG, JPEG, GIF or WebP bytes) as a base64 ``data:`` URL."""
    mime = next((m for magic, m in _IMAGE_TYPES if data.startswith(magic)), None)
    if mime is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        raise ModerationUnavailable("the reference image is not PNG, JPEG, GIF or WebP")
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _results(body: Any) -> list[Mapping[str, Any]]:
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or not results:
        raise ModerationUnavailable("moderation answer without results")
    for result in results:
        if not (
            isinstance(result, dict)
            and isinstance(result.get("flagged"), bool)
            and isinstance(result.get("categories"), dict)
            and isinstance(result.get("category_scores"), dict)
        ):
            raise ModerationUnavailable("moderation answer of an unknown shape")
    return results


class OpenAIModeration:
    """A client of OpenAI's moderation endpoint. ``categories``: the categories that refuse (empty:
    every category OpenAI flags); ``threshold``: also refuse a category whose score reaches it."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.openai.com/v1",
        model: str = "omni-moderation-latest",
        timeout_s: float = 10.0,
        categories: Iterable[str] = (),
        threshold: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_key = api_key
        self.url = base_url.rstrip("/") + "/moderations"
        self.model = model
        self.timeout_s = timeout_s
        self.categories = tuple(categories)
        self.threshold = threshold
        self.transport = transport

    def payload(self, text: str, image: bytes | None) -> dict[str, Any]:
        """The request body: the text alone, or the text and the image as a data URL."""
        if image is None:
            return {"model": self.model, "input": text}
        parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text.strip() else []
        parts.append({"type": "image_url", "image_url": {"url": image_data_url(image)}})
        return {"model": self.model, "input": parts}

    def _post(self, payload: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        try:
            with httpx.Client(timeout=self.timeout_s, transport=self.transport) as client:
                response = client.post(self.url, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise ModerationUnavailable(f"moderation endpoint unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise ModerationUnavailable(f"moderation endpoint answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise ModerationUnavailable("moderation answer is not JSON") from exc

    def _refusing(self, result: Mapping[str, Any]) -> list[str]:
        flagged = [name for name, on in result["categories"].items() if on is True]
        if self.threshold is not None:
            flagged += [
                name for name, score in result["category_scores"].items() if isinstance(score, (int, float)) and score >= self.threshold and name not in flagged
            ]
        return [name for name in flagged if not self.categories or name in self.categories]

    def check(self, text: str, image: bytes | None = None) -> ModerationResult:
        """The endpoint's answer for ``text`` and the optional ``image``; raises ModerationUnavailable."""
        if not self.api_key:
            raise ModerationUnavailable("no API key for the moderation endpoint")
        found: list[str] = []
        for result in _results(self._post(self.payload(text, image))):
            found += [name for name in self._refusing(result) if name not in found]
        return ModerationResult(bool(found), tuple(found))
