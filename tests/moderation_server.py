"""OpenAI moderation endpoint loopback server (127.0.0.1, port 0).

Protocol from https://platform.openai.com/docs/api-reference/moderations/create and the
official client openai-python (src/openai/types/moderation_create_params.py: ``input`` a
string, a list of strings or a list of ``{"type": "text", "text"}`` /
``{"type": "image_url", "image_url": {"url"}}`` parts, ``model`` optional;
src/openai/types/moderation_create_response.py and moderation.py: ``{id, model, results:
[{flagged, categories, category_scores, category_applied_input_types}]}``). Validated as
the service does: the bearer key (401 ``invalid_api_key``), a JSON body, no unknown
field, a known model, images only for the omni models (text-moderation models take text
only), each image a ``data:image/...;base64`` URL of a real image or an http(s) URL.

What it flags stands in for the classifier: ``flag_words`` (a word in the text -> the
category flagged) and ``flag_image`` (the category flagged whenever an image is sent).
Failures follow the common ``script`` modes (``500``, ``429``, ``timeout``, ``garbage``).
"""

from __future__ import annotations

import base64
import binascii
import io
import uuid
from typing import Any

from PIL import Image

from tests.providers.servers.common import ProtocolServer, Reply, Request, retry_after

KEY = "sk-moderation-test"
MODELS = ("omni-moderation-latest", "omni-moderation-2024-09-26", "text-moderation-latest", "text-moderation-stable")
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
#: the categories the omni models also score on images (https://platform.openai.com/docs/guides/moderation)
IMAGE_CATEGORIES = ("self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "violence", "violence/graphic")


def openai_error(status: int, message: str, code: str | None = None, param: str | None = None) -> Reply:
    return Reply.json(status, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}, retry_after(status))


def _image_ok(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    if url.startswith(("https://", "http://")):
        return True
    head, _, data = url.partition(",")
    if not (head.startswith("data:image/") and head.endswith(";base64")):
        return False
    try:
        Image.open(io.BytesIO(base64.b64decode(data, validate=True))).verify()
    except (binascii.Error, OSError, ValueError):
        return False
    return True


def _parts(value: Any) -> tuple[list[str], int] | str:
    """(texts, image count) of ``input``, or the 400 message."""
    if isinstance(value, str):
        return [value], 0
    if not isinstance(value, list) or not value:
        return "'input' must be a string, an array of strings or an array of input objects"
    if all(isinstance(v, str) for v in value):
        return list(value), 0
    texts, images = [], 0
    for part in value:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str) and set(part) == {"type", "text"}:
            texts.append(part["text"])
        elif kind == "image_url" and set(part) == {"type", "image_url"} and isinstance(part["image_url"], dict) and _image_ok(part["image_url"].get("url")):
            images += 1
        else:
            return "Invalid value for 'input': each part is a text or an image_url with a valid image"
    return texts, images


class ModerationServer(ProtocolServer):
    """POST /v1/moderations."""

    def __init__(self, default: str = "ok", **kwargs: Any) -> None:
        super().__init__(default, **kwargs)
        self.flag_words: dict[str, str] = {}
        self.flag_image: str | None = None

    def __enter__(self) -> ModerationServer:
        super().__enter__()
        return self

    def error(self, code: int) -> Reply:
        return openai_error(code, f"error {code}", "server_error" if code >= 500 else None)

    def validate(self, request: Request) -> Reply | None:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return openai_error(401, "Incorrect API key provided.", "invalid_api_key")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return openai_error(400, "Invalid content type: expected application/json")
        try:
            body = request.json()
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict) or "input" not in body:
            return openai_error(400, "Missing required parameter: 'input'.", param="input")
        unknown = set(body) - {"input", "model"}
        if unknown:
            return openai_error(400, f"Unrecognized request argument supplied: {sorted(unknown)[0]}")
        if body.get("model", MODELS[0]) not in MODELS:
            return openai_error(400, "Invalid value for 'model'.", "invalid_value", "model")
        parts = _parts(body["input"])
        if isinstance(parts, str):
            return openai_error(400, parts, "invalid_value", "input")
        if parts[1] and not body.get("model", MODELS[0]).startswith("omni"):
            return openai_error(400, "Image inputs are only supported by the omni-moderation models.")
        return None

    def route(self, request: Request) -> Reply | None:
        if request.method != "POST" or request.path != "/v1/moderations":
            return openai_error(404, "Unknown request URL")
        mode, reply = self.admit(self.validate(request))
        if reply is not None:
            return reply
        if mode == "garbage":
            return Reply(200, b"<html>upstream said no</html>", "text/html")
        body = request.json()
        parts = _parts(body["input"])
        assert not isinstance(parts, str)  # validated above
        texts, images = parts
        return Reply.json(
            200, {"id": f"modr-{uuid.uuid4().hex[:24]}", "model": body.get("model", MODELS[0]), "results": [self.result(" ".join(texts).lower(), images)]}
        )

    def result(self, text: str, images: int) -> dict[str, Any]:
        flagged = {category for word, category in self.flag_words.items() if word in text}
        if images and self.flag_image:
            flagged.add(self.flag_image)
        return {
            "flagged": bool(flagged),
            "categories": {c: c in flagged for c in CATEGORIES},
            "category_scores": {c: 0.97 if c in flagged else 0.0012 for c in CATEGORIES},
            "category_applied_input_types": {c: ["text", "image"] if images and c in IMAGE_CATEGORIES else ["text"] for c in CATEGORIES},
        }
