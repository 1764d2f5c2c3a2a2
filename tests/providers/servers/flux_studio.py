"""Self-hosted FLUX studio loopback server: the studio API as this project's
providers/flux_studio.py documents it (``POST /generate`` -> ``{url, seed}``, the image
under ``/outputs/``, ``POST /upscale``, ``GET /health``), with FastAPI's 422 bodies."""

from __future__ import annotations

import base64
import io
import uuid
from typing import Any

from PIL import Image

from tests.providers.servers.common import PROMPT, ContractCase, ProtocolServer, Reply, Request, image_for, photo, retry_after, size_of


class FluxStudioServer(ProtocolServer):
    """Self-hosted FLUX studio: POST /generate -> {"url": "/outputs/<id>.png", "seed"},
    GET /outputs/<id>.png, POST /upscale (x4), GET /health. ``output_url`` overrides the
    answered path (SSRF tests)."""

    output_url: str | None = None

    def error(self, code: int) -> Reply:
        headers = retry_after(code)
        if code == 422:
            return Reply.json(422, {"detail": [{"loc": ["body", "width"], "msg": "width must be a multiple of 64"}]})
        return Reply.json(code, {"detail": f"studio error {code}"}, headers)

    def validate(self, payload: dict[str, Any]) -> Reply | None:
        """The studio's pydantic model: prompt required, 1..10 steps, sides multiples of 64."""
        problems = []
        if not isinstance(payload.get("prompt"), str) or not payload["prompt"]:
            problems.append({"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"})
        if not 1 <= int(payload.get("num_inference_steps", 4)) <= 10:
            problems.append({"loc": ["body", "num_inference_steps"], "msg": "ensure this value is between 1 and 10", "type": "value_error"})
        for side in ("width", "height"):
            if int(payload.get(side, 1024)) % 64:
                problems.append({"loc": ["body", side], "msg": f"{side} must be a multiple of 64", "type": "value_error"})
        return Reply.json(422, {"detail": problems}) if problems else None

    def route(self, request: Request) -> Reply | None:
        if request.path.startswith("/outputs/"):
            data, content_type = self.files.get(request.path, (b"", ""))
            return Reply(200, data, content_type) if content_type else Reply.json(404, {"detail": "Not Found"})
        if request.method == "GET" and request.path == "/health":
            return Reply.json(200, {"status": "ok", "model": "flux", "gpu": "loopback"})
        if request.method != "POST" or request.path not in ("/generate", "/upscale"):
            return Reply.json(404, {"detail": "Not Found"})
        payload = request.json()
        mode, answer = self.admit(self.validate(payload) if request.path == "/generate" else None)
        if answer is not None:
            return answer
        name = f"/outputs/{'upscale_' if request.path == '/upscale' else ''}{uuid.uuid4().hex}.png"
        if request.path == "/upscale":
            source = Image.open(io.BytesIO(base64.b64decode(payload["image"].split(",", 1)[1])))
            width, height = source.width * 4, source.height * 4
            self.files[name] = (photo(width, height), "image/png")
            return Reply.json(200, {"url": name})
        width, height = size_of(payload, 1024)
        self.files[name] = (image_for(mode, width, height), "image/png")
        seed = payload.get("seed")
        return Reply.json(200, {"url": self.output_url or name, "seed": seed if seed is not None else 12345})


def _sent(r: Request) -> None:
    data = r.json()
    assert r.path == "/generate" and data["prompt"] == PROMPT and data["seed"] == 123
    assert data["num_inference_steps"] == 10 and (data["width"], data["height"]) == (512, 384)


CASE = ContractCase(
    provider="flux_studio",
    server=FluxStudioServer,
    settings=lambda url: {"enabled": True, "base_url": url},
    secrets={},
    cost_usd=0.0,
    sent=_sent,
    is_generation=lambda r: r.method == "POST",
)
