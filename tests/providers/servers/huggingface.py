"""Hugging Face Inference (hf-inference) loopback server.

Protocol from huggingface_hub's src/huggingface_hub/inference/_providers/hf_inference.py
(the text-to-image payload ``{"inputs": prompt, "parameters": {...}}``, raw image back),
src/huggingface_hub/utils/_http.py (``hf_raise_for_status``: the message from the JSON
``error`` / ``X-Error-Message``) and the task spec
https://huggingface.co/docs/inference-providers/tasks/text-to-image (parameters:
negative_prompt, width, height, num_inference_steps, guidance_scale, scheduler, seed).
A 503 ``{"error": "Model ... is currently loading", "estimated_time": 20.0}`` while a
model loads. Also GET /api/whoami-v2 for ``providers check``.
"""

from __future__ import annotations

from tests.providers.servers.common import NEGATIVE, PROMPT, ContractCase, ProtocolServer, Reply, Request, image_for, retry_after

TOKEN = "hf_test_token"
PARAMETERS = {"negative_prompt", "height", "width", "num_inference_steps", "guidance_scale", "scheduler", "seed", "target_size"}


class HuggingFaceServer(ProtocolServer):
    """POST /models/<id> (or any path given as the model URL) -> raw image bytes."""

    def error(self, code: int) -> Reply:
        if code == 503:
            return Reply.json(503, {"error": "Model stabilityai/stable-diffusion-xl-base-1.0 is currently loading", "estimated_time": 20.0})
        messages = {
            400: "Input validation error: `inputs` must be non-empty",
            401: "Invalid credentials in Authorization header",
            402: "You have exceeded your monthly included credits for Inference Providers.",
            403: "Access to model stabilityai/stable-diffusion-xl-base-1.0 is restricted",
            422: "Input validation error: `width` must be divisible by 8",
            429: "Rate limit reached",
            500: "Internal Server Error",
        }
        headers = retry_after(code)
        return Reply.json(code, {"error": messages[code]}, headers)

    def validate(self, request: Request) -> Reply | None:
        """The real service's refusals: credentials, JSON body, parameter names and values."""
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return self.error(401)
        if not request.headers.get("content-type", "").startswith("application/json"):
            return Reply.json(400, {"error": "Content-Type must be application/json"})
        body = request.json()
        if not isinstance(body.get("inputs"), str) or not body["inputs"].strip():
            return self.error(400)
        parameters = body.get("parameters") or {}
        unknown = set(parameters) - PARAMETERS
        if unknown:
            return Reply.json(400, {"error": f"Input validation error: unknown parameter {sorted(unknown)[0]!r}"})
        for side in ("width", "height"):
            if side in parameters and (int(parameters[side]) % 8 or not 64 <= int(parameters[side]) <= 2048):
                return self.error(422)
        return None

    def route(self, request: Request) -> Reply | None:
        if request.method == "GET" and request.path == "/api/whoami-v2":
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return self.error(401)
            return Reply.json(200, {"name": "pipeline-bot", "type": "user"})
        if request.method != "POST":
            return Reply.json(404, {"error": "Not Found"})
        mode, answer = self.admit(self.validate(request))
        if answer is not None:
            return answer
        parameters = request.json().get("parameters", {})
        width, height = int(parameters.get("width") or 1024), int(parameters.get("height") or 1024)
        return Reply(200, image_for(mode, width, height), "image/png")


def _sent(r: Request) -> None:
    body = r.json()
    assert r.path == "/models/stabilityai/stable-diffusion-xl-base-1.0"
    assert r.headers["authorization"] == f"Bearer {TOKEN}" and r.headers["accept"] == "image/png"
    assert body["inputs"] == PROMPT
    assert body["parameters"] == {"negative_prompt": NEGATIVE, "height": 512, "width": 680, "num_inference_steps": 30, "guidance_scale": 7.5, "seed": 123}


CASE = ContractCase(
    provider="huggingface",
    server=HuggingFaceServer,
    settings=lambda url: {"endpoint_url": f"{url}/models/stabilityai/stable-diffusion-xl-base-1.0", "hub_url": url},
    secrets={"HUGGINGFACE_TOKEN": TOKEN},
    cost_usd=0.02,
    sent=_sent,
    is_generation=lambda r: r.method == "POST",
)
