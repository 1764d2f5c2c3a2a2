"""Google Gemini API (image models) loopback server.

Protocol: ``POST /v1beta/models/{model}:generateContent`` (https://ai.google.dev/api/generate-content)
with the key in ``x-goog-api-key`` (https://ai.google.dev/api, "Authentication"), a JSON
``GenerateContentRequest`` ``{contents: [{role, parts: [{text} | {inlineData: {mimeType,
data}}]}], generationConfig: {responseModalities, imageConfig: {aspectRatio}, seed}}`` and
the image models' aspect ratios and output sizes (1290 output tokens each) from
https://ai.google.dev/gemini-api/docs/image-generation. The answer is a
``GenerateContentResponse`` ``{candidates: [{content: {role: "model", parts}, finishReason,
index}], usageMetadata: {promptTokenCount, candidatesTokenCount, totalTokenCount,
promptTokensDetails, candidatesTokensDetails: [{modality, tokenCount}]}, modelVersion,
responseId}``; a blocked prompt has no candidates and ``promptFeedback: {blockReason}``
(https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse). Errors follow
the google.rpc.Status model, ``{"error": {code, message, status, details}}``, with
``ErrorInfo`` / ``RetryInfo`` details (https://cloud.google.com/apis/design/errors,
https://ai.google.dev/gemini-api/docs/troubleshooting): a missing key is 403
PERMISSION_DENIED, a wrong key 400 INVALID_ARGUMENT with reason API_KEY_INVALID, an unknown
field 400 INVALID_ARGUMENT ('Invalid JSON payload received. Unknown name ...'), an unknown
model 404 NOT_FOUND, a rate limit 429 RESOURCE_EXHAUSTED with ``RetryInfo.retryDelay``.

Modes beyond common.py's: ``image_safety`` (candidate finishReason IMAGE_SAFETY, no image),
``text_only`` (finishReason STOP, a text part and no image), ``no_key`` / ``bad_key`` are not
modes: the headers decide.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

from tests.providers.servers.common import PROMPT, ContractCase, ProtocolServer, Reply, Request, b64, image_for

KEY = "AIzaSy-test-key"
MODELS = ("gemini-2.5-flash-image", "gemini-3-pro-image-preview", "gemini-3.1-flash-image-preview")
#: aspect ratio -> output size of gemini-2.5-flash-image (the image-generation guide's table).
SIZES = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
IMAGE_TOKENS = 1290
PROMPT_TOKENS = 12
PATH = re.compile(r"/v1beta/models/([^/:]+):generateContent")
STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "FAILED_PRECONDITION",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
MESSAGES = {
    400: "* GenerateContentRequest.contents: contents is not specified",
    401: "Request had invalid authentication credentials.",
    402: "Billing is not enabled for this project.",
    403: "Method doesn't allow unregistered callers (callers without established identity). Please use API "
    "Key or other form of API consumer identity to call this API.",
    422: "Request contains an invalid argument.",
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
REQUEST_FIELDS = {"contents", "generationConfig", "safetySettings", "systemInstruction", "tools", "toolConfig", "cachedContent"}
CONFIG_FIELDS = {"responseModalities", "imageConfig", "seed", "candidateCount", "temperature", "topP", "topK"}


def status_body(code: int, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A google.rpc.Status error body."""
    return {"error": {"code": code, "message": message, "status": STATUS.get(code, "UNKNOWN"), **({"details": details} if details else {})}}


def usage(image_tokens: int = IMAGE_TOKENS, text_tokens: int = 0) -> dict[str, Any]:
    """usageMetadata of an answer with ``image_tokens`` image and ``text_tokens`` text output tokens."""
    details = [{"modality": m, "tokenCount": n} for m, n in (("IMAGE", image_tokens), ("TEXT", text_tokens)) if n]
    out = image_tokens + text_tokens
    return {
        "promptTokenCount": PROMPT_TOKENS,
        "candidatesTokenCount": out,
        "totalTokenCount": PROMPT_TOKENS + out,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": PROMPT_TOKENS}],
        **({"candidatesTokensDetails": details} if details else {}),
    }


class GeminiServer(ProtocolServer):
    """Gemini API: POST /v1beta/models/{model}:generateContent; GET /v1beta/models/{model}."""

    def error(self, code: int) -> Reply:
        details: list[dict[str, Any]] = []
        if code == 429:
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                        }
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"},
            ]
        return Reply.json(code, status_body(code, MESSAGES.get(code, "error"), details))

    def refuse(self, message: str) -> Reply:
        return Reply.json(400, status_body(400, message, [{"@type": "type.googleapis.com/google.rpc.BadRequest"}]))

    def authorise(self, request: Request) -> Reply | None:
        key = request.headers.get("x-goog-api-key")
        if key is None:
            return self.error(403)
        if key != KEY:
            return Reply.json(
                400,
                status_body(
                    400,
                    "API key not valid. Please pass a valid API key.",
                    [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                            "metadata": {"service": "generativelanguage.googleapis.com"},
                        }
                    ],
                ),
            )
        return None

    def validate(self, request: Request) -> Reply | None:
        refused = self.authorise(request)
        if refused is not None:
            return refused
        if not request.headers.get("content-type", "").startswith("application/json"):
            return self.refuse("Invalid JSON payload received. Unexpected token.")
        body = request.json()
        unknown = sorted(set(body) - REQUEST_FIELDS) or sorted(set(body.get("generationConfig") or {}) - CONFIG_FIELDS)
        if unknown:
            return self.refuse(f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.')
        return self.validate_contents(body.get("contents")) or self.validate_config(body.get("generationConfig") or {})

    def validate_contents(self, contents: Any) -> Reply | None:
        if not isinstance(contents, list) or not contents:
            return self.refuse("* GenerateContentRequest.contents: contents is not specified")
        parts = contents[-1].get("parts") if isinstance(contents[-1], dict) else None
        if not isinstance(parts, list) or not parts:
            return self.refuse("* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.")
        for part in parts:
            inline = part.get("inlineData")
            if inline is None:
                if not isinstance(part.get("text"), str) or not part["text"]:
                    return self.refuse("* GenerateContentRequest.contents[0].parts: a part must have data")
                continue
            if inline.get("mimeType") not in ("image/png", "image/jpeg", "image/webp"):
                return self.refuse(f"Unsupported MIME type: {inline.get('mimeType')}")
            try:
                base64.b64decode(inline.get("data", ""), validate=True)
            except (binascii.Error, ValueError):
                return self.refuse("Invalid value at 'contents[0].parts[1].inline_data.data' (TYPE_BYTES), Base64 decoding failed")
        return None

    def validate_config(self, config: dict[str, Any]) -> Reply | None:
        modalities = config.get("responseModalities")
        if not isinstance(modalities, list) or "IMAGE" not in modalities or set(modalities) - {"TEXT", "IMAGE"}:
            return self.refuse("The requested combination of response modalities is not supported by the model.")
        ratio = (config.get("imageConfig") or {}).get("aspectRatio", "1:1")
        if ratio not in SIZES:
            return self.refuse(f"Invalid aspect ratio: {ratio}")
        seed = config.get("seed", 0)
        if not isinstance(seed, int) or not -(2**31) <= seed < 2**31:
            return self.refuse("Invalid value at 'generation_config.seed' (TYPE_INT32)")
        return None

    def route(self, request: Request) -> Reply | None:
        model_path = re.fullmatch(r"/v1beta/models/([^/:]+)", request.path)
        if model_path and request.method == "GET":
            refused = self.authorise(request)
            if refused is not None:
                return refused
            if model_path.group(1) not in MODELS:
                return Reply.json(404, status_body(404, f"models/{model_path.group(1)} is not found for API version v1beta"))
            return Reply.json(
                200, {"name": f"models/{model_path.group(1)}", "version": "2.0", "supportedGenerationMethods": ["generateContent", "countTokens"]}
            )
        match = PATH.fullmatch(request.path)
        if request.method != "POST" or match is None:
            return Reply.json(404, status_body(404, f"{request.path} not found"))
        refused = self.authorise(request)
        if refused is None and match.group(1) not in MODELS:
            return Reply.json(404, status_body(404, f"models/{match.group(1)} is not found for API version v1beta, or is not supported for generateContent."))
        mode, answer = self.admit(refused or self.validate(request))
        if answer is not None:
            return answer
        ratio = request.json().get("generationConfig", {}).get("imageConfig", {}).get("aspectRatio", "1:1")
        return Reply.json(200, self.answer(mode, match.group(1), *SIZES[ratio]))

    def answer(self, mode: str, model: str, width: int, height: int) -> dict[str, Any]:
        """The GenerateContentResponse of ``mode``."""
        common = {"modelVersion": model, "responseId": uuid.uuid4().hex[:22]}
        if mode == "filtered":  # the prompt itself blocked: no candidates, input tokens only
            return {
                "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                "usageMetadata": {"promptTokenCount": PROMPT_TOKENS, "totalTokenCount": PROMPT_TOKENS},
                **common,
            }
        if mode == "image_safety":
            return {
                "candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "IMAGE_SAFETY", "index": 0}],
                "usageMetadata": usage(0),
                **common,
            }
        if mode == "text_only":
            return {
                "candidates": [
                    {"content": {"role": "model", "parts": [{"text": "I can describe the image, but I cannot draw it."}]}, "finishReason": "STOP", "index": 0}
                ],
                "usageMetadata": usage(0, 11),
                **common,
            }
        data = b64(image_for(mode, width, height))
        parts = [{"text": "Here is the image you asked for."}, {"inlineData": {"mimeType": "image/png", "data": data}}]
        return {
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage(IMAGE_TOKENS, 8),
            **common,
        }


#: USD of the standard answer: 12 input tokens x 0.30, 1290 image tokens x 30, 8 text tokens x 2.50 (per 1M).
STANDARD_COST = round((PROMPT_TOKENS * 0.30 + IMAGE_TOKENS * 30.0 + 8 * 2.50) / 1e6, 9)


def _sent(r: Request) -> None:
    body = r.json()
    assert r.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert r.headers["x-goog-api-key"] == KEY and r.headers["content-type"].startswith("application/json")
    assert body["contents"] == [{"role": "user", "parts": [{"text": PROMPT}]}]
    assert body["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "4:3"}, "seed": 123}


CASE = ContractCase(
    provider="gemini",
    server=GeminiServer,
    settings=lambda url: {"base_url": url},
    secrets={"GEMINI_API_KEY": KEY},
    cost_usd=STANDARD_COST,
    sent=_sent,
    is_generation=lambda r: r.method == "POST",
    wrong_key_status=(400,),
)
