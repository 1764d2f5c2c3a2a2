"""Loopback servers that speak real protocols, for tests (127.0.0.1, ephemeral ports).

* ``A1111Server``: AUTOMATIC1111 ``POST /sdapi/v1/txt2img``
  (https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/API), answering
  with a real photo (scikit-image's ``coffee``) resized to the requested size, or with
  a scripted failure: ``"500"``, ``"429"`` (Retry-After), ``"401"``, ``"422"``,
  ``"garbage"`` (base64 of bytes that are not an image), ``"html"``, ``"blank"``.
* ``HttpSink``: records every request (Apprise ``json://`` / ``form://`` targets).
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image


def photo(width: int, height: int, name: str = "coffee") -> bytes:
    """A real photo from scikit-image, resized to ``width`` x ``height``, as PNG bytes."""
    import skimage.data

    array = getattr(skimage.data, name)()
    image = Image.fromarray(array).convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _A1111Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        server: A1111Server = self.server.owner  # type: ignore[attr-defined]
        for key, value in {**server.extra_headers, **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        server: A1111Server = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length", 0))
        payload = json.loads(self.rfile.read(length) or b"{}")
        server.requests.append({"path": self.path, "json": payload, "auth": self.headers.get("authorization")})
        if self.path != "/sdapi/v1/txt2img":
            self._send(404, json.dumps({"detail": "Not Found"}).encode())
            return
        mode = server.script.popleft() if server.script else server.default
        if server.delay_s:
            import time

            time.sleep(server.delay_s)
        width, height = int(payload.get("width", 512)), int(payload.get("height", 512))
        if mode == "500":
            self._send(500, json.dumps({"error": "RuntimeError", "detail": "CUDA out of memory", "body": "", "errors": ""}).encode())
        elif mode == "429":
            self._send(429, json.dumps({"detail": "Too Many Requests"}).encode(), headers={"Retry-After": "1"})
        elif mode == "401":
            self._send(401, json.dumps({"detail": "Not authenticated"}).encode())
        elif mode == "422":
            self._send(422, json.dumps({"detail": [{"loc": ["body", "width"], "msg": "bad width"}]}).encode())
        elif mode == "html":
            self._send(200, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        else:
            if mode == "garbage":
                data = b"this is not an image at all" * 10
            elif mode == "blank":
                buffer = io.BytesIO()
                Image.new("RGB", (width, height)).save(buffer, "PNG")
                data = buffer.getvalue()
            elif mode.startswith("photo:"):  # another scikit-image photo, e.g. "photo:astronaut"
                data = photo(width, height, mode.split(":", 1)[1])
            else:
                data = photo(width, height)
            seed = payload.get("seed", -1)
            real_seed = 4242 if seed in (-1, None) else seed
            info = {"seed": real_seed, "sd_model_name": "realisticVision_v51", "sampler_name": payload.get("sampler_name")}
            body = {"images": [base64.b64encode(data).decode()], "parameters": payload, "info": json.dumps(info)}
            self._send(200, json.dumps(body).encode(), headers={"X-Process-Time": "0.01"})


class A1111Server(_Server):
    """A loopback AUTOMATIC1111 WebUI. ``script`` is consumed one mode per request,
    then ``default`` ("ok") answers."""

    def __init__(self, default: str = "ok", delay_s: float = 0.0) -> None:
        super().__init__(_A1111Handler)
        self.default = default
        self.delay_s = delay_s
        self.script: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        #: Headers added to every answer (e.g. rate-limit headers).
        self.extra_headers: dict[str, str] = {}


class _SinkHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        sink: HttpSink = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length)
        sink.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()


class HttpSink(_Server):
    """Records every POST (path, headers, body)."""

    def __init__(self) -> None:
        super().__init__(_SinkHandler)
        self.received: list[dict[str, Any]] = []

    def json_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.received]
