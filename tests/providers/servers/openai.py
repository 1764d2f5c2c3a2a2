"""OpenAI Images API loopback server.

Protocol from https://platform.openai.com/docs/api-reference/images/create and the
official client openai-python (src/openai/resources/images.py: the request fields;
src/openai/types/images_response.py: ``{created, data: [{b64_json | url,
revised_prompt}], usage}``; src/openai/_exceptions.py and _client.py
``_make_status_error``: ``{"error": {message, type, param, code}}``). Validated as the
service does: the key, JSON content type, the model's sizes (gpt-image-1: 1024x1024,
1536x1024, 1024x1536, auto; dall-e-3: 1024x1024, 1792x1024, 1024x1792; dall-e-2: 256,
512, 1024 squares) and qualities, ``response_format`` only for DALL-E, ``output_format``
only for gpt-image, ``n`` = 1 for dall-e-3. Error codes from
https://platform.openai.com/docs/guides/error-codes: 429 ``insufficient_quota``, 400
``billing_hard_limit_reached``, 400 ``content_policy_violation`` (DALL-E) /
``moderation_blocked`` (gpt-image), 403 ``organization_must_be_verified``.

Model lifecycle (https://developers.openai.com/api/docs/deprecations): ``GET
/v1/models/{model}`` answers the model object (https://platform.openai.com/docs/api-reference/models/retrieve:
``id``, ``object``, ``created``, ``owned_by``) with the optional ``shutdown_date``
(YYYY-MM-DD) of a deprecated model (``shutdown_dates``); a model in ``retired`` answers
404 ``model_not_found`` there and on generation ("The model `X` does not exist or you do
not have access to it."). ``retired`` is empty by default so that the price tests can
still exercise the legacy models' sizes and qualities as the service took them.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from tests.providers.servers.common import PROMPT, ContractCase, ProtocolServer, Reply, Request, image_for, retry_after

KEY = "sk-test-key"
_GPT_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
_GPT_QUALITIES = ("low", "medium", "high", "auto")
GPT_IMAGE = ("gpt-image-2.6-flare", "gpt-image-2.6-sunburst", "gpt-image-1.5", "gpt-image-1-mini", "gpt-image-1")
SIZES = {**{m: _GPT_SIZES for m in GPT_IMAGE}, "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"), "dall-e-2": ("256x256", "512x512", "1024x1024")}
QUALITIES = {**{m: _GPT_QUALITIES for m in GPT_IMAGE}, "dall-e-3": ("standard", "hd"), "dall-e-2": ("standard",)}
PROMPT_LIMIT = {**{m: 32000 for m in GPT_IMAGE}, "dall-e-3": 4000, "dall-e-2": 1000}
#: Modes beyond the common ones: (status, type, code, message).
CODES = {
    "insufficient_quota": (429, "insufficient_quota", "insufficient_quota", "You exceeded your current quota, please check your plan and billing details."),
    "billing_hard_limit": (400, "billing_limit_user_error", "billing_hard_limit_reached", "Billing hard limit has been reached"),
    "content_policy": (400, "invalid_request_error", "content_policy_violation", "Your request was rejected as a result of our safety system."),
    "moderation_blocked": (400, "image_generation_user_error", "moderation_blocked", "Your request was rejected by the safety system."),
    "organization_must_be_verified": (
        403,
        "invalid_request_error",
        "organization_must_be_verified",
        "Your organization must be verified to use the model `gpt-image-1`.",
    ),
}


def openai_error(status: int, kind: str | None, code: str | None, message: str, param: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    return Reply.json(status, {"error": {"message": message, "type": kind, "param": param, "code": code}}, headers)


def _unknown_parameter(model: str, payload: dict[str, Any]) -> str | None:
    """The parameter ``model`` does not take (gpt-image: response_format; DALL-E: the
    gpt-image output options), the last one named; None when all are known."""
    unknown = "response_format" if model.startswith("gpt-image") and "response_format" in payload else None
    for field in ("output_format", "output_compression", "background", "moderation"):
        if not model.startswith("gpt-image") and field in payload:
            unknown = field
    return unknown


class OpenAIServer(ProtocolServer):
    """POST /v1/images/generations, GET /v1/models. ``answer_urls``: answer ``url`` items
    (served under /files/) instead of ``b64_json``."""

    answer_urls = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: models the service no longer serves (404 model_not_found)
        self.retired: set[str] = set()
        #: model -> its announced shutdown date (YYYY-MM-DD), shown by GET /v1/models/{model}
        self.shutdown_dates: dict[str, str] = {}

    def not_found(self, model: str) -> Reply:
        return openai_error(404, "invalid_request_error", "model_not_found", f"The model `{model}` does not exist or you do not have access to it.")

    def model_object(self, request: Request) -> Reply:
        """GET /v1/models/{model}: the model object, or 404 model_not_found."""
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return self.error(401)
        model = request.path.removeprefix("/v1/models/")
        if model in self.retired or model not in SIZES:
            return self.not_found(model)
        body: dict[str, Any] = {"id": model, "object": "model", "created": 1764547200, "owned_by": "system"}
        if model in self.shutdown_dates:
            body["shutdown_date"] = self.shutdown_dates[model]
        return Reply.json(200, body)

    def error(self, code: int) -> Reply:
        errors = {
            400: ("invalid_request_error", "invalid_value", "Invalid value for 'prompt'."),
            401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-te***key."),
            402: ("billing_limit_user_error", "billing_hard_limit_reached", "Billing hard limit has been reached"),
            403: ("invalid_request_error", "organization_must_be_verified", "Your organization must be verified"),
            422: ("invalid_request_error", "invalid_value", "Invalid value for 'quality'."),
            429: ("requests", "rate_limit_exceeded", "Rate limit reached for images per minute"),
            500: ("server_error", None, "The server had an error processing your request."),
            503: ("server_error", None, "The engine is currently overloaded, please try again later."),
        }
        kind, code_name, message = errors[code]
        return openai_error(code, kind, code_name, message, headers=retry_after(code, "retry-after"))

    def validate(self, request: Request) -> Reply | None:
        """What the service refuses before generating anything."""
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {KEY}":
            shown = auth.removeprefix("Bearer ")[:5] + "***"
            return openai_error(401, "invalid_request_error", "invalid_api_key", f"Incorrect API key provided: {shown}.")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return openai_error(400, "invalid_request_error", None, "Invalid Content-Type header, expected application/json.")
        payload: dict[str, Any] = request.json()
        model = str(payload.get("model", "dall-e-2"))
        if model in self.retired:
            return self.not_found(model)
        if model not in SIZES:
            return openai_error(400, "invalid_request_error", "invalid_value", f"Invalid value: '{model}'.", "model")
        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or not prompt or len(prompt) > PROMPT_LIMIT[model]:
            return openai_error(400, "invalid_request_error", "invalid_value", "Invalid 'prompt'.", "prompt")
        size = str(payload.get("size", "1024x1024"))
        if size not in SIZES[model]:
            allowed = ", ".join(f"'{s}'" for s in SIZES[model])
            return openai_error(400, "invalid_request_error", "invalid_value", f"Invalid value: '{size}'. Supported values are: {allowed}.", "size")
        if "quality" in payload and payload["quality"] not in QUALITIES[model]:
            return openai_error(400, "invalid_request_error", "invalid_value", f"Invalid value: '{payload['quality']}'.", "quality")
        unknown = _unknown_parameter(model, payload)
        if unknown:
            return openai_error(400, "invalid_request_error", "unknown_parameter", f"Unknown parameter: '{unknown}'.", unknown)
        if model == "dall-e-3" and payload.get("n", 1) != 1:
            return openai_error(400, "invalid_request_error", "invalid_value", "You must provide n=1 for this model.", "n")
        return None

    def route(self, request: Request) -> Reply | None:
        if request.path == "/v1/models" and request.method == "GET":
            if request.headers.get("authorization") != f"Bearer {KEY}":
                return self.error(401)
            return Reply.json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in SIZES if m not in self.retired]})
        if request.path.startswith("/v1/models/") and request.method == "GET":
            return self.model_object(request)
        if request.path != "/v1/images/generations" or request.method != "POST":
            return openai_error(404, "invalid_request_error", None, f"Invalid URL (POST {request.path})")
        mode, answer = self.admit(self.validate(request))
        if answer is not None:
            return answer
        payload = request.json()
        model = str(payload.get("model", "dall-e-2"))
        if mode == "filtered":
            mode = "moderation_blocked" if model.startswith("gpt-image") else "content_policy"
        if mode in CODES:
            status, kind, code, message = CODES[mode]
            return openai_error(status, kind, code, message)
        size = str(payload.get("size", "1024x1024")).replace("auto", "1024x1024")
        width, height = (int(v) for v in size.split("x"))
        fmt = {"jpeg": "JPEG", "webp": "WEBP"}.get(str(payload.get("output_format")), "PNG")
        data = image_for(mode, width, height, fmt)
        item: dict[str, Any] = {"revised_prompt": payload["prompt"] + ", photographed"} if model == "dall-e-3" else {}
        if payload.get("response_format") == "url" or (self.answer_urls and not model.startswith("gpt-image")):
            item["url"] = self.add_file(data)
        else:
            item["b64_json"] = base64.b64encode(data).decode()
        body: dict[str, Any] = {"created": int(time.time()), "data": [item]}
        if model.startswith("gpt-image"):
            body["usage"] = {"input_tokens": 50, "output_tokens": 1056, "total_tokens": 1106, "input_tokens_details": {"text_tokens": 50, "image_tokens": 0}}
        return Reply.json(200, body)


def _sent(r: Request) -> None:
    data = r.json()
    assert r.path == "/v1/images/generations" and r.headers["authorization"] == f"Bearer {KEY}"
    assert data["prompt"] == PROMPT and data["model"] == "gpt-image-2.6-flare" and data["n"] == 1
    assert data["size"] == "1536x1024" and data["quality"] == "low"


CASE = ContractCase(
    provider="openai",
    server=OpenAIServer,
    settings=lambda url: {"base_url": f"{url}/v1"},
    secrets={"OPENAI_API_KEY": KEY},
    cost_usd=round(50 * 5 / 1e6 + 1056 * 40 / 1e6, 6),
    sent=_sent,
    is_generation=lambda r: r.method == "POST",
    seed=None,
    overrides={"400": "rejected"},
)
