"""Black Forest Labs API loopback server.

Protocol from https://docs.bfl.ai/quick_start/generating_images and the API reference
https://docs.bfl.ai/api-reference: ``POST /v1/{model}`` with ``x-key`` and JSON ->
``{id, polling_url}``; ``GET polling_url`` -> ``{id, status, result, progress}`` with
status ``Pending`` / ``Ready`` / ``Request Moderated`` / ``Content Moderated`` /
``Error`` / ``Task not found``; ``result.sample`` a signed URL (no key needed).
``width`` / ``height``: multiples of 32 in 256..1440; flux-dev ``steps`` 1..50 and
``guidance`` 1.5..5; flux-pro-1.1-ultra ``aspect_ratio`` (21:9 .. 9:21), no size.
Errors are FastAPI's: 422 ``{"detail": [{loc, msg, type}]}``, 403 ``{"detail":
"Not authenticated"}`` (APIKeyHeader), 402 insufficient credits, 429 too many active
tasks. GET /v1/credits -> ``{"credits": ...}``.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.providers.servers.common import PROMPT, ContractCase, ProtocolServer, Reply, Request, image_for, ratio_size, retry_after

KEY = "bfl-test-key"
#: model -> (takes width/height, steps range or None, guidance range or None)
MODELS: dict[str, tuple[bool, tuple[int, int] | None, tuple[float, float] | None]] = {
    "flux-pro-1.1": (True, None, None),
    "flux-dev": (True, (1, 50), (1.5, 5.0)),
    "flux-pro-1.1-ultra": (False, None, None),
}
ULTRA_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16", "9:21")


def _shape_problems(sized: bool, payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for the size fields: width/height on sized models, aspect_ratio on Ultra."""
    problems = []
    if sized:
        for side in ("width", "height"):
            value = payload.get(side, 1024)
            if not isinstance(value, int) or value % 32 or not 256 <= value <= 1440:
                problems.append((side, "Input should be a multiple of 32 between 256 and 1440"))
        if "aspect_ratio" in payload:
            problems.append(("aspect_ratio", "Extra inputs are not permitted"))
        return problems
    if payload.get("aspect_ratio", "16:9") not in ULTRA_RATIOS:
        problems.append(("aspect_ratio", "Aspect ratio must be between 21:9 and 9:21"))
    problems.extend((side, "Extra inputs are not permitted") for side in ("width", "height") if side in payload)
    return problems


def _output_size(sized: bool, payload: dict[str, Any]) -> tuple[int, int]:
    """The (width, height) in pixels of the image a request gets: its own size, or Ultra's
    4-megapixel size of its aspect ratio."""
    if sized:
        return int(payload.get("width", 1024)), int(payload.get("height", 768))
    return ratio_size(str(payload.get("aspect_ratio", "16:9")), 4.0, 32)


class BFLServer(ProtocolServer):
    """POST /v1/<model>, GET /v1/get_result?id=..., result files, GET /v1/credits.
    ``pending_polls``: how many polls a task stays ``Pending``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending_polls = 1
        self.tasks: dict[str, dict[str, Any]] = {}

    def error(self, code: int) -> Reply:
        headers = retry_after(code)
        if code == 422:
            return Reply.json(422, {"detail": [{"loc": ["body", "width"], "msg": "Input should be a multiple of 32", "type": "multiple_of"}]})
        messages = {
            400: "Bad request",
            401: "Not authenticated",
            402: "Insufficient credits",
            403: "Not authenticated",
            429: "You have too many active tasks. Please wait for some to finish.",
            500: "Internal Server Error",
            503: "Service temporarily unavailable",
        }
        return Reply.json(code, {"detail": messages[code]}, headers)

    def validate(self, model: str, payload: dict[str, Any]) -> Reply | None:
        sized, steps, guidance = MODELS[model]
        problems: list[dict[str, Any]] = []

        def bad(field: str, msg: str) -> None:
            problems.append({"loc": ["body", field], "msg": msg, "type": "value_error"})

        if not isinstance(payload.get("prompt"), str):
            bad("prompt", "Field required")
        for field, msg in _shape_problems(sized, payload):
            bad(field, msg)
        for field, allowed in (("steps", steps), ("guidance", guidance)):
            if field in payload and (allowed is None or not allowed[0] <= payload[field] <= allowed[1]):
                bad(field, "Extra inputs are not permitted" if allowed is None else f"Input should be in {allowed[0]}..{allowed[1]}")
        if not 0 <= int(payload.get("safety_tolerance", 2)) <= 6:
            bad("safety_tolerance", "Input should be less than or equal to 6")
        if payload.get("output_format", "jpeg") not in ("jpeg", "png"):
            bad("output_format", "Input should be 'jpeg' or 'png'")
        return Reply.json(422, {"detail": problems}) if problems else None

    def route(self, request: Request) -> Reply | None:
        if request.headers.get("x-key") != KEY:
            return Reply.json(403, {"detail": "Not authenticated"})
        if request.method == "GET" and request.path == "/v1/credits":
            return Reply.json(200, {"credits": 1234.5})
        if request.method == "GET" and request.path == "/v1/get_result":
            task = self.tasks.get((request.query.get("id") or [""])[0])
            if task is None:
                return Reply.json(200, {"id": "", "status": "Task not found", "result": None, "progress": None})
            if task["pending"] > 0:
                task["pending"] -= 1
                return Reply.json(200, {"id": task["id"], "status": "Pending", "result": None, "progress": 0.5})
            return Reply.json(200, {"id": task["id"], "status": task["status"], "result": task["result"], "progress": None, "details": task.get("details")})
        model = request.path.removeprefix("/v1/")
        if request.method != "POST" or model not in MODELS:
            return Reply.json(404, {"detail": "Not Found"})
        if not request.headers.get("content-type", "").startswith("application/json"):
            return Reply.json(422, {"detail": [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]})
        payload = request.json()
        mode, answer = self.admit(self.validate(model, payload))
        if answer is not None:
            return answer
        task_id = str(uuid.uuid4())
        width, height = _output_size(MODELS[model][0], payload)
        fmt = "JPEG" if payload.get("output_format", "jpeg") == "jpeg" else "PNG"
        task: dict[str, Any] = {"id": task_id, "pending": self.pending_polls, "status": "Ready", "result": None}
        if mode == "filtered":
            task["status"] = "Content Moderated"
        else:
            url = self.add_file(image_for(mode, width, height, fmt), ".jpg" if fmt == "JPEG" else ".png", "image/jpeg" if fmt == "JPEG" else "image/png")
            task["result"] = {
                "sample": url,
                "prompt": payload["prompt"],
                "seed": payload.get("seed", 4711),
                "start_time": 1.0,
                "end_time": 3.5,
                "duration": 2.5,
            }
        self.tasks[task_id] = task
        return Reply.json(200, {"id": task_id, "polling_url": f"{self.url}/v1/get_result?id={task_id}"})


def _sent(r: Request) -> None:
    data = r.json()
    assert r.path == "/v1/flux-pro-1.1" and r.headers["x-key"] == KEY
    assert data["prompt"] == PROMPT and data["seed"] == 123 and (data["width"], data["height"]) == (512, 384)
    assert "steps" not in data and "guidance" not in data and "negative_prompt" not in data


CASE = ContractCase(
    provider="bfl",
    server=BFLServer,
    settings=lambda url: {"base_url": url, "poll_interval_s": 0.05},
    secrets={"BFL_API_KEY": KEY},
    cost_usd=0.04,
    sent=_sent,
    is_generation=lambda r: r.method == "POST",
)
