"""AUTOMATIC1111 stable-diffusion-webui ``--api`` loopback server.

Protocol from https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/API and the
WebUI's modules/api/models.py (StableDiffusionTxt2ImgProcessingAPI,
StableDiffusionImg2ImgProcessingAPI: the answer ``{images: [base64], parameters,
info: "<JSON string>"}``, the real seed in ``info``), modules/api/api.py (routes, HTTP
Basic with ``--api-auth``: 401 ``Incorrect credentials.``) and FastAPI's 422 body.

The ControlNet extension (https://github.com/Mikubill/sd-webui-controlnet/wiki/API;
``GET /controlnet/model_list`` -> ``{"model_list": [...]}``, units in
``alwayson_scripts.controlnet.args``: objects with a base64 ``image``, ``module``, a
``model`` the extension has, ``weight``, ``guidance_start`` < ``guidance_end``; an
IP-Adapter model only with an ``ip-adapter_clip_*`` module and the other way round) and the
``batch_size`` x ``n_iter`` images with ``info.all_seeds`` (seed + i), the
hires-fix fields of txt2img (``enable_hr``, ``hr_scale`` > 1, ``hr_upscaler``,
``denoising_strength``; the answer is the upscaled size); img2img inpainting: the ``mask``
decodes at the init image's size, ``inpainting_fill`` 0..3, ``mask_blur`` >= 0.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import binascii
import io

from PIL import Image

from tests.providers.servers.common import PROMPT, ContractCase, ProtocolServer, Reply, Request, b64, image_for, retry_after, size_of


CONTROLNET_MODELS = ("control_v11p_sd15_canny [d14c016b]", "control_v11f1p_sd15_depth [cfd03158]")
#: IP-Adapter models and their CLIP-vision preprocessors (the extension's "IP-Adapter" control type)
IP_ADAPTER_MODELS = ("ip-adapter_sd15 [6a3f6166]", "ip-adapter-plus_sd15 [c817b455]")
IP_ADAPTER_MODULES = ("ip-adapter_clip_sd15", "ip-adapter_clip_sdxl", "ip-adapter_clip_sdxl_plus_vith")
UNIT_KEYS = frozenset(
    {
        "enabled",
        "image",
        "input_image",
        "mask",
        "module",
        "model",
        "weight",
        "resize_mode",
        "low_vram",
        "processor_res",
        "threshold_a",
        "threshold_b",
        "guidance_start",
        "guidance_end",
        "control_mode",
        "pixel_perfect",
        "hr_option",
    }
)
LISTS: dict[str, Any] = {
    "/controlnet/model_list": {"model_list": [*CONTROLNET_MODELS, *IP_ADAPTER_MODELS]},
    "/sdapi/v1/sd-models": [
        {"title": "realisticVision_v51.safetensors [abc]", "model_name": "realisticVision_v51"},
        {"title": "sd_xl_base_1.0.safetensors [def]", "model_name": "sd_xl_base_1.0"},
    ],
}
HR_UPSCALERS = ("Latent", "Latent (nearest)", "R-ESRGAN 4x+", "ESRGAN_4x", "None")


def _invalid(loc: list[str], msg: str) -> Reply:
    return Reply.json(422, {"detail": [{"loc": ["body", *loc], "msg": msg, "type": "value_error"}]})


def _unit_problem(index: int, unit: Any) -> Reply | None:
    """What the ControlNet extension refuses in one unit (external_code.ControlNetUnit), or None."""
    where = ["alwayson_scripts", "controlnet", "args", str(index)]
    if not isinstance(unit, dict) or set(unit) - UNIT_KEYS:
        return _invalid(where, f"not a ControlNet unit: {unit!r}"[:200])
    try:
        image = base64.b64decode(str(unit.get("image") or unit.get("input_image") or ""), validate=True)
    except (binascii.Error, ValueError):
        return _invalid([*where, "image"], "not base64")
    if not image:
        return _invalid([*where, "image"], "a control image is required")
    if not 0 <= float(unit.get("guidance_start", 0)) < float(unit.get("guidance_end", 1)) <= 1:
        return _invalid(["alwayson_scripts", "controlnet", "args", str(index)], "guidance_start must be below guidance_end")
    if unit.get("model") not in (*CONTROLNET_MODELS, *IP_ADAPTER_MODELS):  # the extension: "ControlNet model ... not found"
        return Reply.json(500, {"error": "RuntimeError", "detail": f"model not found: {unit.get('model')}", "body": "", "errors": ""})
    ip_module = str(unit.get("module", "")).startswith("ip-adapter")
    if ip_module != (unit.get("model") in IP_ADAPTER_MODELS) or (ip_module and unit.get("module") not in IP_ADAPTER_MODULES):
        # an IP-Adapter model needs its CLIP-vision preprocessor and the other way round
        return Reply.json(
            500, {"error": "RuntimeError", "detail": f"module {unit.get('module')} does not fit model {unit.get('model')}", "body": "", "errors": ""}
        )
    return None


def _payload_problem(path: str, payload: dict[str, Any]) -> Reply | None:
    """The sizes, init images, ControlNet units and hires-fix fields the WebUI refuses, or None."""
    for side in ("width", "height"):
        if int(payload.get(side, 512)) % 8:  # processing.py rounds latents to 1/8 of the size
            return _invalid([side], f"{side} must be divisible by 8")
    if path == "/sdapi/v1/img2img" and not payload.get("init_images"):
        return Reply.json(422, {"detail": [{"loc": ["body", "init_images"], "msg": "field required", "type": "value_error.missing"}]})
    if path == "/sdapi/v1/img2img":
        problem = _inpainting_problem(payload)
        if problem is not None:
            return problem
    return _extension_problem(path, payload)


def _picture_size(data: Any) -> tuple[int, int] | None:
    """The size of a base64 image (a data: URL too), None when it is not one."""
    try:
        raw = base64.b64decode(str(data).split(",", 1)[-1], validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            return image.size
    except (binascii.Error, ValueError, OSError):
        return None


def _inpainting_problem(payload: dict[str, Any]) -> Reply | None:
    """img2img: each init image decodes; with a ``mask`` (inpainting, white = repaint): the mask
    decodes at the init image's size, ``inpainting_fill`` is 0..3 (fill, original, latent noise,
    latent nothing), ``mask_blur`` >= 0 and ``denoising_strength`` 0..1 (modules/processing.py
    StableDiffusionProcessingImg2Img)."""
    sizes = [_picture_size(i) for i in payload["init_images"]]
    if None in sizes:
        return _invalid(["init_images"], "cannot identify image file")
    if not 0 <= float(payload.get("denoising_strength", 0.75)) <= 1:
        return _invalid(["denoising_strength"], "ensure this value is between 0 and 1")
    if payload.get("mask") is None:
        return None
    if _picture_size(payload["mask"]) != sizes[0]:
        return _invalid(["mask"], "the mask must be an image of the init image's size")
    if int(payload.get("inpainting_fill", 0)) not in (0, 1, 2, 3) or int(payload.get("mask_blur", 4)) < 0:
        return _invalid(["inpainting_fill"], "inpainting_fill must be 0..3 and mask_blur >= 0")
    return None


def _extension_problem(path: str, payload: dict[str, Any]) -> Reply | None:
    """The ControlNet units and hires-fix fields as the WebUI and the extension check them, or None."""
    scripts = payload.get("alwayson_scripts") or {}
    if set(scripts) - {"controlnet"}:
        return _invalid(["alwayson_scripts"], f"script not found: {sorted(set(scripts) - {'controlnet'})}")
    units = (scripts.get("controlnet") or {}).get("args", [])
    if not isinstance(units, list):
        return _invalid(["alwayson_scripts", "controlnet", "args"], "value is not a valid list")
    for index, unit in enumerate(units):
        problem = _unit_problem(index, unit)
        if problem:
            return problem
    if payload.get("enable_hr"):
        if path != "/sdapi/v1/txt2img":
            return _invalid(["enable_hr"], "extra fields not permitted")
        if not float(payload.get("hr_scale", 2)) > 1 or payload.get("hr_upscaler") not in HR_UPSCALERS:
            return _invalid(["hr_scale"], "hr_scale must exceed 1 with a known hr_upscaler")
    return None


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
        errors = {
            400: "Sampler not found",
            401: "Not authenticated",
            402: "Payment required",
            403: "Forbidden",
            429: "Too Many Requests",
            500: "CUDA out of memory",
            503: "Service Unavailable",
        }
        return Reply.json(code, {"error": "HTTPException", "detail": errors[code], "body": "", "errors": ""}, headers)

    def route(self, request: Request) -> Reply | None:
        if self.auth is not None:
            expected = "Basic " + base64.b64encode(self.auth.encode()).decode()
            if request.headers.get("authorization") != expected:
                return Reply.json(401, {"detail": "Incorrect credentials."}, {"WWW-Authenticate": "Basic"})
        if request.method == "GET" and request.path in LISTS:
            return Reply.json(200, LISTS[request.path])
        if request.method != "POST" or request.path not in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img"):
            return Reply.json(404, {"detail": "Not Found"})
        if not request.headers.get("content-type", "").startswith("application/json"):
            return Reply.json(422, {"detail": [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]})
        payload = request.json()
        problem = _payload_problem(request.path, payload)
        if problem is not None:
            return problem
        mode, answer = self.admit()
        if answer is not None:
            return answer
        width, height = size_of(payload)
        if payload.get("enable_hr"):  # the second pass renders at the upscaled size
            width, height = int(width * float(payload.get("hr_scale", 2))), int(height * float(payload.get("hr_scale", 2)))
        seed = payload.get("seed", -1)
        seed = 4242 if seed in (-1, None) else int(seed)
        count = int(payload.get("batch_size", 1)) * int(payload.get("n_iter", 1))  # processing.py: seed + i per image
        checkpoint = (payload.get("override_settings") or {}).get("sd_model_checkpoint", "realisticVision_v51")
        info = {
            "seed": seed,
            "all_seeds": [seed + i for i in range(count)],
            "sd_model_name": checkpoint,
            "sampler_name": payload.get("sampler_name"),
            "denoising_strength": payload.get("denoising_strength"),
        }
        data = image_for(mode, width, height)
        body = {"images": [b64(data)] * count, "parameters": payload, "info": json.dumps(info)}
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
    provider="automatic1111",
    server=_AuthA1111Server,
    settings=lambda url: {"enabled": True, "base_url": url, "model": "sd_xl_base_1.0"},
    secrets={"AUTOMATIC1111_AUTH": "artist:s3cret"},
    cost_usd=0.0,
    sent=_sent,
    is_generation=lambda r: r.method == "POST",
)
