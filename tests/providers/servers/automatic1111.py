"""AUTOMATIC1111 stable-diffusion-webui ``--api`` loopback server.

Protocol from https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/API and the
WebUI's modules/api/models.py (StableDiffusionTxt2ImgProcessingAPI,
StableDiffusionImg2ImgProcessingAPI: the answer ``{images: [base64], parameters,
info: "<JSON string>"}``, the real seed in ``info``), modules/api/api.py (routes, HTTP
Basic with ``--api-auth``: 401 ``Incorrect credentials.``) and FastAPI's 422 body.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.providers.servers.common import PROMPT, ContractCase, ProtocolServer, Reply, Request, b64, image_for, retry_after, size_of


class A1111Server(ProtocolServer):
    """AUTOMATIC1111 --api: txt2img, img2img (inpainting with mask), sd-models; HTTP Basic
    when ``auth`` ("user:pass") is set."""

    def __init__(self, *args: Any, auth: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth = auth

    def error(self, code: int) -> Reply:
        if code == 422:
            return Reply.json(422, {"detail": [{"loc": ["body", "width"], "msg": "value is not a valid integer", "type": "type_error"}]})
        headers = retry_after(code)
        errors = {400: "Sampler not found", 401: "Not authenticated", 402: "Payment required", 403: "Forbidden",
                  429: "Too Many Requests", 500: "CUDA out of memory", 503: "Service Unavailable"}
        return Reply.json(code, {"error": "HTTPException", "detail": errors[code], "body": "", "errors": ""}, headers)

    def route(self, request: Request) -> Reply | None:
        if self.auth is not None:
            expected = "Basic " + base64.b64encode(self.auth.encode()).decode()
            if request.headers.get("authorization") != expected:
                return Reply.json(401, {"detail": "Incorrect credentials."}, {"WWW-Authenticate": "Basic"})
        if request.method == "GET" and request.path == "/sdapi/v1/sd-models":
            return Reply.json(200, [{"title": "realisticVision_v51.safetensors [abc]", "model_name": "realisticVision_v51"},
                                    {"title": "sd_xl_base_1.0.safetensors [def]", "model_name": "sd_xl_base_1.0"}])
        if request.method != "POST" or request.path not in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img"):
            return Reply.json(404, {"detail": "Not Found"})
        if not request.headers.get("content-type", "").startswith("application/json"):
            return Reply.json(422, {"detail": [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]})
        payload = request.json()
        for side in ("width", "height"):
            if int(payload.get(side, 512)) % 8:  # processing.py rounds latents to 1/8 of the size
                return Reply.json(422, {"detail": [{"loc": ["body", side], "msg": f"{side} must be divisible by 8",
                                                    "type": "value_error"}]})
        if request.path == "/sdapi/v1/img2img" and not payload.get("init_images"):
            return Reply.json(422, {"detail": [{"loc": ["body", "init_images"], "msg": "field required", "type": "value_error.missing"}]})
        mode, answer = self.admit()
        if answer is not None:
            return answer
        width, height = size_of(payload)
        seed = payload.get("seed", -1)
        checkpoint = (payload.get("override_settings") or {}).get("sd_model_checkpoint", "realisticVision_v51")
        info = {"seed": 4242 if seed in (-1, None) else seed, "sd_model_name": checkpoint,
                "sampler_name": payload.get("sampler_name"), "denoising_strength": payload.get("denoising_strength")}
        data = image_for(mode, width, height)
        body = {"images": [b64(data)], "parameters": payload, "info": json.dumps(info)}
        return Reply.json(200, body, {"X-Process-Time": "0.01"})


def _sent(r: Request) -> None:
    data = r.json()
    assert r.path == "/sdapi/v1/txt2img" and r.headers["authorization"] == "Basic " + base64.b64encode(b"artist:s3cret").decode()
    assert data["prompt"] == PROMPT and data["seed"] == 123 and data["steps"] == 30 and data["cfg_scale"] == 7.5
    assert data["override_settings"] == {"sd_model_checkpoint": "sd_xl_base_1.0"}
    assert (data["width"], data["height"]) == (512, 384)


class _AuthA1111Server(A1111Server):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, auth="artist:s3cret", **kwargs)


CASE = ContractCase(
    provider="automatic1111", server=_AuthA1111Server,
    settings=lambda url: {"enabled": True, "base_url": url, "model": "sd_xl_base_1.0"},
    secrets={"AUTOMATIC1111_AUTH": "artist:s3cret"}, cost_usd=0.0, sent=_sent,
    is_generation=lambda r: r.method == "POST")
