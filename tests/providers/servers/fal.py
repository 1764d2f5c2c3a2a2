"""fal.ai queue loopback server.

Protocol from https://docs.fal.ai/model-endpoints/queue and the official client
fal-client (src/fal_client/client.py: submit -> ``{request_id, status_url,
response_url, cancel_url}``, status ``IN_QUEUE`` / ``IN_PROGRESS`` / ``COMPLETED``,
``PUT .../cancel``), ``Authorization: Key``; inputs of fal-ai/flux/schnell and
fal-ai/flux/dev from https://fal.ai/models/fal-ai/flux/schnell/api (``image_size``: an
enum name or ``{width, height}``; steps 1..12 for schnell, 1..50 for dev;
``guidance_scale`` 1..20 for dev only); validation errors are FastAPI's 422 ``detail[]``.
The result: ``{images: [{url, width, height, content_type}], seed, has_nsfw_concepts}``.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.providers.servers.common import PROMPT, ContractCase, ProtocolServer, Reply, Request, black, image_for, retry_after

KEY = "fal-test-key"
#: model id -> (most steps, takes guidance_scale)
MODELS = {"fal-ai/flux/schnell": (12, False), "fal-ai/flux/dev": (50, True)}
IMAGE_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}


class FalServer(ProtocolServer):
    """fal queue: POST /<model_id> -> {request_id, status_url, response_url}; GET status,
    GET result {images: [{url, width, height, content_type}], seed, has_nsfw_concepts};
    PUT .../cancel."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs: dict[str, dict[str, Any]] = {}
        self.in_queue_polls = 1
        self.cancelled: list[str] = []

    def error(self, code: int) -> Reply:
        headers = retry_after(code)
        if code == 422:
            return Reply.json(422, {"detail": [{"loc": ["body", "image_size"], "msg": "unexpected value", "type": "value_error"}]})
        messages = {
            400: "Bad request",
            401: "Invalid Key",
            402: "User is locked. Reason: Exhausted balance.",
            403: "Forbidden",
            429: "Too many requests",
            500: "Internal error",
            503: "Runner unavailable",
        }
        return Reply.json(code, {"detail": messages[code]}, headers)

    def validate(self, model: str, payload: dict[str, Any]) -> Reply | None:
        """The model's input schema (FastAPI / pydantic: 422 with ``detail[]``)."""
        if model not in MODELS:
            return Reply.json(404, {"detail": f"Application '{model}' not found"})
        max_steps, takes_guidance = MODELS[model]
        problems: list[dict[str, Any]] = []
        if not isinstance(payload.get("prompt"), str) or not payload["prompt"]:
            problems.append({"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"})
        steps = payload.get("num_inference_steps", 4)
        if not isinstance(steps, int) or not 1 <= steps <= max_steps:
            problems.append(
                {
                    "loc": ["body", "num_inference_steps"],
                    "msg": f"ensure this value is less than or equal to {max_steps}",
                    "type": "value_error.number.not_le",
                    "ctx": {"limit_value": max_steps},
                }
            )
        if "guidance_scale" in payload and (not takes_guidance or not 1 <= float(payload["guidance_scale"]) <= 20):
            problems.append(
                {
                    "loc": ["body", "guidance_scale"],
                    "msg": "extra fields not permitted" if not takes_guidance else "ensure this value is between 1 and 20",
                    "type": "value_error",
                }
            )
        size = payload.get("image_size", "landscape_4_3")
        if isinstance(size, dict):
            if not all(isinstance(size.get(k), int) and 1 <= size[k] <= 14142 for k in ("width", "height")):
                problems.append({"loc": ["body", "image_size"], "msg": "width and height must be integers in 1..14142", "type": "value_error"})
        elif size not in IMAGE_SIZES:
            problems.append({"loc": ["body", "image_size"], "msg": f"unexpected value; permitted: {', '.join(IMAGE_SIZES)}", "type": "value_error.const"})
        if payload.get("output_format", "jpeg") not in ("jpeg", "png"):
            problems.append({"loc": ["body", "output_format"], "msg": "unexpected value; permitted: 'jpeg', 'png'", "type": "value_error.const"})
        return Reply.json(422, {"detail": problems}) if problems else None

    def queue_route(self, request: Request, parts: list[str]) -> Reply | None:
        """The queue's own paths (``.../requests/<id>[/status|/cancel]``); None for any other."""
        index = parts.index("requests")
        rid, rest = parts[index + 1], parts[index + 2 :]
        job = self.jobs.get(rid)
        if job is None:
            return Reply.json(404, {"detail": "Request not found"})
        if rest == ["cancel"] and request.method == "PUT":
            self.cancelled.append(rid)
            job["status"] = "CANCELLED"
            return Reply.json(202, {"status": "CANCELLATION_REQUESTED"})
        if rest == ["status"]:
            if job["status"] == "IN_QUEUE":
                if job["polls"] > 0:
                    job["polls"] -= 1
                    return Reply.json(202, {"status": "IN_QUEUE", "queue_position": 0, "response_url": job["response_url"]})
                job["status"] = "COMPLETED"
            return Reply.json(200, {"status": job["status"], "response_url": job["response_url"]})
        if not rest:
            if job["status"] != "COMPLETED":
                return Reply.json(400, {"detail": "Request is still in progress"})
            return Reply.json(200, job["result"])
        return None

    def route(self, request: Request) -> Reply | None:
        if request.headers.get("authorization") != f"Key {KEY}":
            return self.error(401)
        parts = request.path.strip("/").split("/")
        if "requests" in parts:
            answer = self.queue_route(request, parts)
            if answer is not None:
                return answer
        if request.method != "POST":
            return Reply.json(404, {"detail": "Not Found"})
        if not request.headers.get("content-type", "").startswith("application/json"):
            return Reply.json(422, {"detail": [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]})
        payload = request.json()
        mode, answer = self.admit(self.validate("/".join(parts), payload))
        if answer is not None:
            return answer
        size = payload.get("image_size") or "landscape_4_3"
        width, height = (int(size["width"]), int(size["height"])) if isinstance(size, dict) else IMAGE_SIZES[size]
        rid = str(uuid.uuid4())
        model = "/".join(parts)
        base = f"{self.url}/{model}/requests/{rid}"
        nsfw = mode == "filtered"
        data = black(width, height) if nsfw else image_for(mode, width, height)
        result = {
            "images": [{"url": self.add_file(data), "width": width, "height": height, "content_type": "image/png"}],
            "seed": payload.get("seed") or 98765,
            "has_nsfw_concepts": [nsfw],
            "prompt": payload["prompt"],
            "timings": {"inference": 0.4},
        }
        self.jobs[rid] = {"status": "IN_QUEUE", "polls": self.in_queue_polls, "response_url": base, "result": result}
        return Reply.json(200, {"request_id": rid, "status_url": base + "/status", "response_url": base, "cancel_url": base + "/cancel", "queue_position": 0})


def _sent(r: Request) -> None:
    data = r.json()
    assert r.path == "/fal-ai/flux/schnell" and r.headers["authorization"] == f"Key {KEY}"
    assert data["prompt"] == PROMPT and data["seed"] == 123 and data["image_size"] == {"width": 512, "height": 384}
    assert data["num_inference_steps"] == 12 and "guidance_scale" not in data


CASE = ContractCase(
    provider="fal",
    server=FalServer,
    settings=lambda url: {"queue_url": url, "poll_interval_s": 0.05},
    secrets={"FAL_KEY": KEY},
    cost_usd=round(0.003 * 512 * 384 / 1e6, 6),
    sent=_sent,
    is_generation=lambda r: r.method == "POST",
)
