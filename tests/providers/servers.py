"""Loopback servers, one per provider protocol (127.0.0.1, port 0), for the contract tests.

Every server answers with a real photo (scikit-image) resized to the requested size,
or, following its ``script`` (one mode per generation request, then ``default``), with
one of the failures the contract lists:

    ok, 400, 401, 402, 403, 422, 429 (Retry-After 7), 500, 503, timeout (answers after
    ``hang_s``), garbage (bytes that are not an image), truncated (half a PNG),
    filtered (the protocol's own content-filter signal, or the all-black image)

Each speaks its provider's protocol as documented in ../shared/contracts/providers.md:
error bodies, headers, multi-step flows (Replicate predictions, fal queue, FLUX studio
output paths, Picsum redirects) and the free endpoints ``providers check`` calls.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

RETRY_AFTER_S = 7
ERROR_CODES = ("400", "401", "402", "403", "422", "429", "500", "503")


@lru_cache(maxsize=32)
def photo(width: int, height: int, name: str = "coffee", fmt: str = "PNG") -> bytes:
    """A real photo from scikit-image, resized to ``width`` x ``height`` (cached)."""
    import skimage.data

    array = getattr(skimage.data, name)()
    image = Image.fromarray(array).convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"compress_level": 1} if fmt == "PNG" else {"quality": 90}))
    return buffer.getvalue()


@lru_cache(maxsize=8)
def black(width: int, height: int) -> bytes:
    """The all-black image a safety checker returns instead of the picture."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


@lru_cache(maxsize=64)
def b64(data: bytes) -> str:
    """Base64 text of ``data`` (cached: the same photo is sent many times)."""
    return base64.b64encode(data).decode()


def image_for(mode: str, width: int, height: int, fmt: str = "PNG") -> bytes:
    """Bytes for a success-shaped answer in ``mode`` (ok / garbage / truncated / filtered)."""
    if mode == "garbage":
        return b"<html><body>upstream said no</body></html>" * 20
    if mode == "truncated":
        data = photo(width, height, fmt=fmt)
        return data[: len(data) // 2]
    if mode == "filtered":
        return black(width, height)
    return photo(width, height, fmt=fmt)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: Any, headers: dict[str, str] | None = None,
             content_type: str = "application/json") -> Reply:
        return cls(status, json.dumps(data).encode(), content_type, headers or {})


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def form(self) -> dict[str, Any]:
        """multipart/form-data fields (str, or bytes for files)."""
        raw = f"content-type: {self.headers.get('content-type', '')}\r\n\r\n".encode() + self.body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = payload if part.get_filename() else payload.decode()
        return fields


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        """Quiet: tests read what arrived from the server's ``requests``."""

    def _handle(self) -> None:
        try:
            self._answer()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout): fine
            self.close_connection = True

    def _answer(self) -> None:
        server: ProtocolServer = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length", 0) or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(self.command, parts.path, parse_qs(parts.query),
                          {k.lower(): v for k, v in self.headers.items()}, body)
        with server.lock:
            server.requests.append(request)
        try:
            reply = server.handle(request)
        except Exception as exc:  # a bug in the test server shows as a 599
            reply = Reply.json(599, {"test_server_error": f"{type(exc).__name__}: {exc}"})
        if reply is None:
            return
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        self.send_header("content-length", str(len(reply.body)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if isinstance(reply, _Truncated):  # announce everything, send a part, hang up
            self.wfile.write(reply.body[: reply.cut])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class ProtocolServer:
    """Base of the loopback servers: ``script`` / ``default`` modes, recorded ``requests``,
    files served under ``/files/``. ``delay_s`` delays every generation answer."""

    def __init__(self, default: str = "ok", *, delay_s: float = 0.0, hang_s: float = 2.0) -> None:
        self.httpd = _Httpd(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.default = default
        self.delay_s = delay_s
        self.hang_s = hang_s
        self.script: deque[str] = deque()
        self.requests: list[Request] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> ProtocolServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self, default: str = "ok") -> None:
        self.default = default
        self.script.clear()
        with self.lock:
            self.requests.clear()

    def next_mode(self) -> str:
        """The mode of the next generation request; sleeps for ``timeout`` and ``delay_s``."""
        with self.lock:
            mode = self.script.popleft() if self.script else self.default
        if mode == "timeout":
            time.sleep(self.hang_s)
        elif self.delay_s:
            time.sleep(self.delay_s)
        return mode

    def add_file(self, data: bytes, suffix: str = ".png", content_type: str = "image/png") -> str:
        """Serve ``data`` under ``/files/<id><suffix>``; returns its absolute URL."""
        name = f"/files/{uuid.uuid4().hex}{suffix}"
        self.files[name] = (data, content_type)
        return self.url + name

    def serve_file(self, request: Request) -> Reply:
        data, content_type = self.files.get(request.path, (b"", ""))
        if not content_type:
            return Reply.json(404, {"detail": "no such file"})
        return Reply(200, data, content_type)

    def handle(self, request: Request) -> Reply | None:
        if request.path.startswith("/files/"):
            return self.serve_file(request)
        if request.path == "/redirect":  # /redirect?to=<url>: a 302 anywhere (SSRF tests)
            return Reply(302, b"", "text/plain", {"Location": request.query["to"][0]})
        if request.path == "/html":
            return Reply(200, b"<html>hello</html>", "text/html")
        return self.route(request)

    def route(self, request: Request) -> Reply | None:  # pragma: no cover - overridden
        return Reply.json(404, {"detail": "Not Found"})

    def error(self, code: int) -> Reply:
        """The protocol's error answer for HTTP ``code`` (overridden per protocol)."""
        headers = {"Retry-After": str(RETRY_AFTER_S)} if code == 429 else {}
        return Reply.json(code, {"detail": f"error {code}"}, headers)


def _size(data: dict[str, Any], default: int = 512) -> tuple[int, int]:
    return int(data.get("width") or default), int(data.get("height") or default)


class HuggingFaceServer(ProtocolServer):
    """hf-inference: POST /models/<id> (or any path given as the model URL) -> raw image;
    GET /api/whoami-v2 for ``providers check``."""

    def route(self, request: Request) -> Reply | None:
        if request.method == "GET" and request.path == "/api/whoami-v2":
            if request.headers.get("authorization") != "Bearer hf_test_token":
                return Reply.json(401, {"error": "Invalid credentials in Authorization header"})
            return Reply.json(200, {"name": "pipeline-bot", "type": "user"})
        if request.method != "POST":
            return Reply.json(404, {"error": "Not Found"})
        mode = self.next_mode()
        if mode in ERROR_CODES:
            return self.error(int(mode))
        width, height = _size(request.json().get("parameters", {}))
        return Reply(200, image_for(mode, width, height), "image/png")

    def error(self, code: int) -> Reply:
        if code == 503:
            return Reply.json(503, {"error": "Model stabilityai/stable-diffusion-xl-base-1.0 is currently loading",
                                    "estimated_time": 20.0})
        messages = {400: "Input validation error: `inputs` must be non-empty", 401: "Invalid credentials in Authorization header",
                    402: "You have exceeded your monthly included credits", 403: "Access to model is restricted",
                    422: "Input validation error: width must be a multiple of 8", 429: "Rate limit reached",
                    500: "Internal Server Error"}
        headers = {"Retry-After": str(RETRY_AFTER_S)} if code == 429 else {}
        return Reply.json(code, {"error": messages[code]}, headers)


class ReplicateServer(ProtocolServer):
    """Replicate v1: create (``Prefer: wait``), ``urls.get`` polling, cancel, output files,
    GET /v1/account. ``polls``: how many GETs a prediction stays ``processing``
    (``None``: forever, until cancelled)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.polls: int | None = 0
        self.output_url: str | None = None  # hand back this URL instead of our own file (SSRF tests)
        self.predictions: dict[str, dict[str, Any]] = {}
        self.cancelled: list[str] = []

    def problem(self, code: int, title: str, detail: str, **extra: Any) -> Reply:
        return Reply.json(code, {"title": title, "detail": detail, "status": code, **extra},
                          content_type="application/problem+json")

    def error(self, code: int) -> Reply:
        titles = {400: ("Bad request", "Invalid JSON"), 401: ("Unauthenticated", "You did not pass a valid authentication token"),
                  402: ("Insufficient credit", "You have insufficient credit to run this model."),
                  403: ("Forbidden", "You do not have permission to run this model"),
                  422: ("Input validation failed", "- input.width: must be one of 128..1024"),
                  429: ("Request was throttled", "Request was throttled. Expected available in 7 seconds."),
                  500: ("Internal server error", "Internal server error"), 503: ("Service unavailable", "Try again later")}
        title, detail = titles[code]
        extra: dict[str, Any] = {"retry_after": RETRY_AFTER_S} if code == 429 else {}
        if code == 422:
            extra["invalid_fields"] = [{"type": "enum", "field": "input.width", "description": "must be a valid size"}]
        return self.problem(code, title, detail, **extra)

    def _view(self, prediction: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in prediction.items() if not k.startswith("_")}

    def _finish(self, prediction: dict[str, Any]) -> None:
        mode = prediction["_mode"]
        width, height = _size(prediction["input"])
        if mode == "filtered":
            prediction.update(status="failed", error="NSFW content detected. Your input or output was flagged as sensitive (E005).")
        else:
            prediction.update(status="succeeded", output=[self.output_url or self.add_file(image_for(mode, width, height))],
                              metrics={"predict_time": 2.5}, completed_at="2026-11-21T06:00:03Z")

    def route(self, request: Request) -> Reply | None:
        auth = request.headers.get("authorization", "")
        if request.path == "/v1/account" and request.method == "GET":
            if auth != "Bearer r8_test_token":
                return self.error(401)
            return Reply.json(200, {"type": "organization", "username": "studio", "name": "Studio"})
        if request.method == "POST" and (request.path == "/v1/predictions" or request.path.endswith("/predictions")):
            mode = self.next_mode()
            if mode in ERROR_CODES:
                return self.error(int(mode))
            data = request.json()
            pid = uuid.uuid4().hex[:20]
            model = request.path.removeprefix("/v1/models/").removesuffix("/predictions") if request.path.startswith("/v1/models/") else "version"
            prediction = {"id": pid, "model": model, "version": data.get("version", "official"), "input": data["input"],
                          "logs": "", "output": None, "error": None, "status": "starting",
                          "created_at": "2026-11-21T06:00:00Z", "urls": {"get": f"{self.url}/v1/predictions/{pid}",
                                                                       "cancel": f"{self.url}/v1/predictions/{pid}/cancel"},
                          "_mode": mode, "_polls": self.polls}
            self.predictions[pid] = prediction
            if self.polls == 0:
                self._finish(prediction)
            else:
                prediction["status"] = "processing"
            return Reply.json(201, self._view(prediction))
        if request.path.startswith("/v1/predictions/"):
            pid = request.path.split("/")[3]
            found = self.predictions.get(pid)
            if found is None:
                return self.problem(404, "Not found", "prediction not found")
            prediction = found
            if request.path.endswith("/cancel") and request.method == "POST":
                self.cancelled.append(pid)
                prediction.update(status="canceled", completed_at="2026-11-21T06:01:00Z")
                return Reply.json(200, self._view(prediction))
            if prediction["status"] == "processing" and prediction["_polls"] is not None:
                prediction["_polls"] -= 1
                if prediction["_polls"] <= 0:
                    self._finish(prediction)
            return Reply.json(200, self._view(prediction))
        return self.problem(404, "Not found", request.path)


def stability_size(ratio: str) -> tuple[int, int]:
    """About one megapixel at ``ratio`` ("16:9"), sides multiples of 64 (what the API returns)."""
    a, b = (int(x) for x in ratio.split(":"))
    height = int(round((1_048_576 * b / a) ** 0.5 / 64)) * 64
    return int(round(height * a / b / 64)) * 64, height


class StabilityServer(ProtocolServer):
    """Stability v2beta: POST /v2beta/stable-image/generate/{ultra,core,sd3} (multipart),
    raw image with finish-reason / seed headers; GET /v1/user/balance."""

    def error(self, code: int) -> Reply:
        names = {400: "bad_request", 401: "unauthorized", 402: "payment_required", 403: "forbidden",
                 422: "invalid_prompt", 429: "rate_limit_exceeded", 500: "internal_error", 503: "service_unavailable"}
        headers = {"Retry-After": str(RETRY_AFTER_S)} if code == 429 else {}
        return Reply.json(code, {"id": uuid.uuid4().hex, "name": names[code], "errors": [f"{names[code]} ({code})"]}, headers)

    def route(self, request: Request) -> Reply | None:
        if request.path == "/v1/user/balance" and request.method == "GET":
            if request.headers.get("authorization") != "Bearer sk-test-key":
                return self.error(401)
            return Reply.json(200, {"credits": 42.5})
        if request.method != "POST" or not request.path.startswith("/v2beta/stable-image/generate/"):
            return Reply.json(404, {"id": "x", "name": "not_found", "errors": [request.path]})
        mode = self.next_mode()
        if mode in ERROR_CODES:
            return self.error(int(mode))
        form = request.form()
        width, height = stability_size(str(form.get("aspect_ratio", "1:1")))
        seed = int(form.get("seed", 0)) or 777
        fmt = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[str(form.get("output_format", "png"))]
        if mode == "filtered":  # a blurred image with the header: still a rejection
            return Reply(200, photo(width, height, "chelsea", fmt), f"image/{fmt.lower()}",
                         {"finish-reason": "CONTENT_FILTERED", "seed": str(seed)})
        return Reply(200, image_for(mode, width, height, fmt), f"image/{fmt.lower()}",
                     {"finish-reason": "SUCCESS", "seed": str(seed), "x-request-id": uuid.uuid4().hex})


class A1111Server(ProtocolServer):
    """AUTOMATIC1111 --api: txt2img, img2img (inpainting with mask), sd-models; HTTP Basic
    when ``auth`` ("user:pass") is set."""

    def __init__(self, *args: Any, auth: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth = auth

    def error(self, code: int) -> Reply:
        if code == 422:
            return Reply.json(422, {"detail": [{"loc": ["body", "width"], "msg": "value is not a valid integer", "type": "type_error"}]})
        headers = {"Retry-After": str(RETRY_AFTER_S)} if code == 429 else {}
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
        mode = self.next_mode()
        if mode in ERROR_CODES:
            return self.error(int(mode))
        payload = request.json()
        width, height = _size(payload)
        seed = payload.get("seed", -1)
        checkpoint = (payload.get("override_settings") or {}).get("sd_model_checkpoint", "realisticVision_v51")
        info = {"seed": 4242 if seed in (-1, None) else seed, "sd_model_name": checkpoint,
                "sampler_name": payload.get("sampler_name"), "denoising_strength": payload.get("denoising_strength")}
        data = image_for(mode, width, height)
        body = {"images": [b64(data)], "parameters": payload, "info": json.dumps(info)}
        return Reply.json(200, body, {"X-Process-Time": "0.01"})


class FluxStudioServer(ProtocolServer):
    """Self-hosted FLUX studio: POST /generate -> {"url": "/outputs/<id>.png", "seed"},
    GET /outputs/<id>.png, POST /upscale (x4), GET /health. ``output_url`` overrides the
    answered path (SSRF tests)."""

    output_url: str | None = None

    def error(self, code: int) -> Reply:
        headers = {"Retry-After": str(RETRY_AFTER_S)} if code == 429 else {}
        if code == 422:
            return Reply.json(422, {"detail": [{"loc": ["body", "width"], "msg": "width must be a multiple of 64"}]})
        return Reply.json(code, {"detail": f"studio error {code}"}, headers)

    def route(self, request: Request) -> Reply | None:
        if request.path.startswith("/outputs/"):
            data, content_type = self.files.get(request.path, (b"", ""))
            return Reply(200, data, content_type) if content_type else Reply.json(404, {"detail": "Not Found"})
        if request.method == "GET" and request.path == "/health":
            return Reply.json(200, {"status": "ok", "model": "flux", "gpu": "loopback"})
        if request.method != "POST" or request.path not in ("/generate", "/upscale"):
            return Reply.json(404, {"detail": "Not Found"})
        mode = self.next_mode()
        if mode in ERROR_CODES:
            return self.error(int(mode))
        payload = request.json()
        name = f"/outputs/{'upscale_' if request.path == '/upscale' else ''}{uuid.uuid4().hex}.png"
        if request.path == "/upscale":
            source = Image.open(io.BytesIO(base64.b64decode(payload["image"].split(",", 1)[1])))
            width, height = source.width * 4, source.height * 4
            self.files[name] = (photo(width, height), "image/png")
            return Reply.json(200, {"url": name})
        width, height = _size(payload, 1024)
        self.files[name] = (image_for(mode, width, height), "image/png")
        seed = payload.get("seed")
        return Reply.json(200, {"url": self.output_url or name, "seed": seed if seed is not None else 12345})


class OpenAIServer(ProtocolServer):
    """OpenAI Images: POST /v1/images/generations -> {created, data: [{b64_json}], usage};
    GET /v1/models. ``answer_urls``: answer ``url`` items (served under /files/) instead."""

    answer_urls = False

    def error(self, code: int) -> Reply:
        errors = {400: ("invalid_request_error", "invalid_size", "Invalid size"),
                  401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-te***"),
                  402: ("billing_error", "billing_hard_limit_reached", "Billing hard limit has been reached"),
                  403: ("invalid_request_error", "organization_must_be_verified", "Your organization must be verified"),
                  422: ("invalid_request_error", "invalid_value", "Invalid value for 'quality'"),
                  429: ("requests", "rate_limit_exceeded", "Rate limit reached for images"),
                  500: ("server_error", None, "The server had an error processing your request"),
                  503: ("server_error", None, "The engine is currently overloaded")}
        kind, code_name, message = errors[code]
        headers = {"retry-after": str(RETRY_AFTER_S)} if code == 429 else {}
        return Reply.json(code, {"error": {"message": message, "type": kind, "param": None, "code": code_name}}, headers)

    def route(self, request: Request) -> Reply | None:
        if request.path == "/v1/models" and request.method == "GET":
            if request.headers.get("authorization") != "Bearer sk-test-key":
                return self.error(401)
            return Reply.json(200, {"object": "list", "data": [{"id": "gpt-image-1", "object": "model"},
                                                               {"id": "dall-e-3", "object": "model"}]})
        if request.path != "/v1/images/generations" or request.method != "POST":
            return Reply.json(404, {"error": {"message": "Not found", "type": "invalid_request_error", "code": None}})
        mode = self.next_mode()
        if mode in ERROR_CODES:
            return self.error(int(mode))
        payload = request.json()
        if mode == "filtered":
            return Reply.json(400, {"error": {"message": "Your request was rejected by the safety system.",
                                              "type": "image_generation_user_error", "param": None,
                                              "code": "moderation_blocked"}})
        width, height = (int(v) for v in str(payload.get("size", "1024x1024")).split("x"))
        data = image_for(mode, width, height)
        item: dict[str, Any] = {"revised_prompt": payload["prompt"] + ", photographed"}
        if payload.get("response_format") == "url" or self.answer_urls:
            item["url"] = self.add_file(data)
        else:
            item["b64_json"] = base64.b64encode(data).decode()
        usage = {"input_tokens": 50, "output_tokens": 1056, "total_tokens": 1106,
                 "input_tokens_details": {"text_tokens": 50, "image_tokens": 0}}
        body = {"created": int(time.time()), "data": [item]}
        if str(payload.get("model", "")).startswith("gpt-image"):
            body["usage"] = usage
        return Reply.json(200, body)


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
        headers = {"Retry-After": str(RETRY_AFTER_S)} if code == 429 else {}
        if code == 422:
            return Reply.json(422, {"detail": [{"loc": ["body", "image_size"], "msg": "unexpected value", "type": "value_error"}]})
        messages = {400: "Bad request", 401: "Invalid Key", 402: "User is locked. Reason: Exhausted balance.",
                    403: "Forbidden", 429: "Too many requests", 500: "Internal error", 503: "Runner unavailable"}
        return Reply.json(code, {"detail": messages[code]}, headers)

    def route(self, request: Request) -> Reply | None:
        if request.headers.get("authorization") != "Key fal-test-key":
            return self.error(401)
        parts = request.path.strip("/").split("/")
        if "requests" in parts:
            index = parts.index("requests")
            model, rid, rest = "/".join(parts[:index]), parts[index + 1], parts[index + 2:]
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
                        return Reply.json(202, {"status": "IN_QUEUE", "queue_position": 0,
                                                "response_url": job["response_url"]})
                    job["status"] = "COMPLETED"
                return Reply.json(200, {"status": job["status"], "response_url": job["response_url"]})
            if not rest:
                if job["status"] != "COMPLETED":
                    return Reply.json(400, {"detail": "Request is still in progress"})
                return Reply.json(200, job["result"])
        if request.method != "POST":
            return Reply.json(404, {"detail": "Not Found"})
        mode = self.next_mode()
        if mode in ERROR_CODES:
            return self.error(int(mode))
        payload = request.json()
        size = payload.get("image_size") or {"width": 1024, "height": 1024}
        width, height = int(size["width"]), int(size["height"])
        rid = str(uuid.uuid4())
        model = "/".join(parts)
        base = f"{self.url}/{model}/requests/{rid}"
        nsfw = mode == "filtered"
        data = black(width, height) if nsfw else image_for(mode, width, height)
        result = {"images": [{"url": self.add_file(data), "width": width, "height": height, "content_type": "image/png"}],
                  "seed": payload.get("seed") or 98765, "has_nsfw_concepts": [nsfw], "prompt": payload["prompt"],
                  "timings": {"inference": 0.4}}
        self.jobs[rid] = {"status": "IN_QUEUE", "polls": self.in_queue_polls, "response_url": base,
                          "result": result}
        return Reply.json(200, {"request_id": rid, "status_url": base + "/status", "response_url": base,
                                "cancel_url": base + "/cancel", "queue_position": 0})


class PicsumServer(ProtocolServer):
    """Picsum: GET /seed/<seed>/<w>/<h> (or /<w>/<h>) -> 302 to the JPEG; sizes over 5000 -> 400."""

    def route(self, request: Request) -> Reply | None:
        if request.method not in ("GET", "HEAD"):
            return Reply.json(405, {"error": "Method not allowed"})
        parts = request.path.strip("/").split("/")
        if parts[:1] == ["seed"]:
            parts = parts[2:]
        if request.method == "HEAD":
            return Reply(200, b"", "text/html")
        mode = self.next_mode()
        if mode in ERROR_CODES:
            return self.error(int(mode))
        try:
            width, height = int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            return Reply.json(400, {"error": "Invalid size"})
        if width > 5000 or height > 5000:
            return Reply.json(400, {"error": "Invalid size"})
        location = self.add_file(image_for(mode, width, height, "JPEG"), ".jpg", "image/jpeg")
        return Reply(302, b"", "text/plain", {"Location": location.removeprefix(self.url)})

    def error(self, code: int) -> Reply:
        headers = {"Retry-After": str(RETRY_AFTER_S)} if code == 429 else {}
        return Reply.json(code, {"error": f"picsum error {code}"}, headers)


class CivitaiServer(ProtocolServer):
    """Civitai: GET /api/v1/model-versions/<id> (files with SHA256 and downloadUrl) and
    GET /api/download/models/<id> with Range support; ``cut_after`` bytes drops the
    first download half-way (to test resuming)."""

    def __init__(self, payload: bytes, *args: Any, sha256: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import hashlib

        self.payload = payload
        self.sha256 = sha256 or hashlib.sha256(payload).hexdigest().upper()
        self.cut_after: int | None = None
        self.ranges: list[str | None] = []

    def route(self, request: Request) -> Reply | None:
        token_ok = request.headers.get("authorization") == "Bearer civitai-test-token"
        if request.path.startswith("/api/v1/model-versions/"):
            version = request.path.rsplit("/", 1)[1]
            if version != "128713":
                return Reply.json(404, {"error": f"No model version with id {version}"})
            return Reply.json(200, {
                "id": 128713, "name": "v1.0", "baseModel": "SD 1.5",
                "model": {"name": "Tiny Test LoRA", "type": "LORA", "nsfw": False},
                "files": [{"id": 1, "name": "tiny_test_lora.safetensors", "type": "Model", "primary": True,
                           "sizeKB": len(self.payload) / 1024, "hashes": {"SHA256": self.sha256},
                           "downloadUrl": f"{self.url}/api/download/models/128713"}]})
        if request.path == "/api/download/models/128713":
            if not token_ok:
                return Reply.json(401, {"error": "Unauthorized: this model requires a token"})
            self.ranges.append(request.headers.get("range"))
            start = 0
            if request.headers.get("range"):
                start = int(request.headers["range"].split("=")[1].split("-")[0])
            data = self.payload[start:]
            status = 206 if start else 200
            headers = {"Accept-Ranges": "bytes", "Content-Disposition": 'attachment; filename="tiny_test_lora.safetensors"'}
            if start:
                headers["Content-Range"] = f"bytes {start}-{len(self.payload) - 1}/{len(self.payload)}"
            if self.cut_after is not None and not start:
                cut, self.cut_after = self.cut_after, None
                return _Truncated(status, data, cut, headers)
            return Reply(status, data, "application/octet-stream", headers)
        return Reply.json(404, {"error": "Not Found"})


class _Truncated(Reply):
    """A reply that announces the whole body but sends only ``cut`` bytes, then closes."""

    def __init__(self, status: int, data: bytes, cut: int, headers: dict[str, str]) -> None:
        super().__init__(status, data, "application/octet-stream", headers)
        self.cut = cut
