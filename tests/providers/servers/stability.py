"""Stability AI REST v2beta Stable Image loopback server.

Protocol from https://platform.stability.ai/docs/api-reference ("Generate": Stable Image
Ultra, Core, SD3.5): ``POST /v2beta/stable-image/generate/{ultra|core|sd3}`` as
multipart/form-data with ``authorization: Bearer``, ``accept: image/*`` (raw bytes, with
``finish-reason`` and ``seed`` headers) or ``application/json``; fields ``prompt``
(1..10000 characters), ``negative_prompt``, ``aspect_ratio`` (16:9 1:1 21:9 2:3 3:2 4:5
5:4 9:16 9:21), ``seed`` (0..4294967294), ``output_format`` (jpeg png webp),
``style_preset``; SD3 adds ``model``, ``mode``, ``cfg_scale`` (1..10), ``strength``.
Errors are ``{id, name, errors[]}``: 400 bad_request, 401 unauthorized, 402
payment_required, 403 content_moderation, 422 invalid_prompt (prompt language), 429,
500. Content filtered output: HTTP 200 with ``finish-reason: CONTENT_FILTERED``.
GET /v1/user/balance -> {"credits": ...}.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.providers.servers.common import NEGATIVE, PROMPT, ContractCase, ProtocolServer, Reply, Request, image_for, photo, ratio_size, retry_after

KEY = "sk-test-key"
ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
SD3_MODELS = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash")
FIELDS = {"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format", "style_preset", "model", "mode", "cfg_scale", "strength", "image", "none"}


def stability_size(ratio: str) -> tuple[int, int]:
    """About one megapixel at ``ratio`` ("16:9"), sides multiples of 64 (what the API returns)."""
    return ratio_size(ratio, 1.0, 64)


def _form_problem(form: dict[str, Any]) -> str | None:
    """What the service says of a form field every endpoint takes, or None."""
    unknown = set(form) - FIELDS
    if unknown:
        return f"{sorted(unknown)[0]}: unknown field"
    prompt = form.get("prompt")
    if not isinstance(prompt, str) or not 1 <= len(prompt) <= 10000:
        return "prompt: must be between 1 and 10000 characters"
    if "aspect_ratio" in form and form["aspect_ratio"] not in ASPECT_RATIOS:
        return f"aspect_ratio: must be one of {', '.join(ASPECT_RATIOS)}"
    if form.get("output_format", "png") not in ("jpeg", "png", "webp"):
        return "output_format: must be one of jpeg, png, webp"
    if not 0 <= int(form.get("seed", 0)) <= 4294967294:
        return "seed: must be between 0 and 4294967294"
    return None


def _endpoint_problem(form: dict[str, Any], sd3: bool) -> str | None:
    """What the service says of ``model`` and ``cfg_scale`` (the sd3 endpoint's only), or None."""
    if not sd3:
        return "cfg_scale / model: only for the sd3 endpoint" if "cfg_scale" in form or "model" in form else None
    if form.get("model", "sd3.5-large") not in SD3_MODELS:
        return f"model: must be one of {', '.join(SD3_MODELS)}"
    if "cfg_scale" in form and not 1 <= float(form["cfg_scale"]) <= 10:
        return "cfg_scale: must be between 1 and 10"
    return None


class StabilityServer(ProtocolServer):
    """Stability v2beta: POST /v2beta/stable-image/generate/{ultra,core,sd3}; GET /v1/user/balance."""

    def body(self, code: int, name: str, message: str, headers: dict[str, str] | None = None) -> Reply:
        return Reply.json(code, {"id": uuid.uuid4().hex, "name": name, "errors": [message]}, headers)

    def error(self, code: int) -> Reply:
        names = {
            400: ("bad_request", "prompt: cannot be empty"),
            401: ("unauthorized", "missing authorization header"),
            402: ("payment_required", "You lack sufficient credits to make this request."),
            403: (
                "content_moderation",
                "Your request was flagged by our content moderation system, as a result your request was denied and you were not charged.",
            ),
            422: ("invalid_prompt", "Your prompt was not in English."),
            429: ("rate_limit_exceeded", "You have exceeded the rate limit of 150 requests within a 10 second period"),
            500: ("internal_error", "An unexpected server error has occurred"),
            503: ("service_unavailable", "Service unavailable"),
        }
        name, message = names[code]
        return self.body(code, name, message, retry_after(code))

    def validate(self, request: Request) -> Reply | None:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return self.error(401)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return self.body(400, "bad_request", "Content-Type must be multipart/form-data")
        accept = request.headers.get("accept", "")
        if accept not in ("image/*", "application/json"):
            return self.body(400, "bad_request", "accept: must be image/* or application/json")
        form = request.form()
        problem = _form_problem(form) or _endpoint_problem(form, request.path.endswith("/sd3"))
        return self.body(400, "bad_request", problem) if problem else None

    def route(self, request: Request) -> Reply | None:
        if request.path == "/v1/user/balance" and request.method == "GET":
            if request.headers.get("authorization") != f"Bearer {KEY}":
                return self.error(401)
            return Reply.json(200, {"credits": 42.5})
        endpoints = ("/v2beta/stable-image/generate/ultra", "/v2beta/stable-image/generate/core", "/v2beta/stable-image/generate/sd3")
        if request.method != "POST" or request.path not in endpoints:
            return self.body(404, "not_found", f"{request.path} not found")
        mode, answer = self.admit(self.validate(request))
        if answer is not None:
            return answer
        form = request.form()
        width, height = stability_size(str(form.get("aspect_ratio", "1:1")))
        seed = int(form.get("seed", 0)) or 777
        fmt = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[str(form.get("output_format", "png"))]
        if mode == "filtered":  # a blurred image with the header: still a rejection
            return Reply(200, photo(width, height, "chelsea", fmt), f"image/{fmt.lower()}", {"finish-reason": "CONTENT_FILTERED", "seed": str(seed)})
        return Reply(
            200, image_for(mode, width, height, fmt), f"image/{fmt.lower()}", {"finish-reason": "SUCCESS", "seed": str(seed), "x-request-id": uuid.uuid4().hex}
        )


def _sent(r: Request) -> None:
    form = r.form()
    assert r.path == "/v2beta/stable-image/generate/ultra" and r.headers["accept"] == "image/*"
    assert r.headers["content-type"].startswith("multipart/form-data")
    assert r.headers["authorization"] == f"Bearer {KEY}"
    assert form["prompt"] == PROMPT and form["aspect_ratio"] == "5:4" and form["seed"] == "123"
    assert form["negative_prompt"] == NEGATIVE and form["output_format"] == "png"
    assert "cfg_scale" not in form and "steps" not in form


CASE = ContractCase(
    provider="stability",
    server=StabilityServer,
    settings=lambda url: {"base_url": url},
    secrets={"STABILITY_API_KEY": KEY},
    cost_usd=0.08,
    sent=_sent,
    is_generation=lambda r: r.method == "POST",
    overrides={"403": "content_filtered"},
)
