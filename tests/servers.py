"""Loopback servers that speak real protocols, for tests (127.0.0.1, ephemeral ports).

* ``A1111Server``: AUTOMATIC1111 ``POST /sdapi/v1/txt2img``
  (https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/API), answering
  with a real photo (scikit-image's ``coffee``) resized to the requested size, or with
  a scripted failure: ``"500"``, ``"429"`` (Retry-After), ``"401"``, ``"422"``,
  ``"garbage"`` (base64 of bytes that are not an image), ``"html"``, ``"blank"``,
  ``"wrongsize"`` (a real photo three times wider than asked: a size mismatch).
  Every request is logged; ``answered`` counts the 200 answers (what a paid backend bills).
  ``hold_until=N``: each request waits until N requests are in flight at once (or
  ``hold_timeout_s`` passed), then the gate stays open: several clients are seen working together.
* ``HttpSink``: records every request (Apprise ``json://`` / ``form://`` targets).
"""

from __future__ import annotations

import base64
import functools
import io
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image


@functools.lru_cache(maxsize=16)
def photo(width: int, height: int, name: str = "coffee") -> bytes:
    """A real photo from scikit-image, resized to ``width`` x ``height``, as PNG bytes."""
    import skimage.data

    array = getattr(skimage.data, name)()
    image = Image.fromarray(array).convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

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
        server.wait_at_gate()
        mode = server.script.popleft() if server.script else server.default
        if server.delay_s:
            import time

            time.sleep(server.delay_s)
        width, height = int(payload.get("width", 512)), int(payload.get("height", 512))
        if mode in _A1111_ERRORS:
            status, error_body, extra = _A1111_ERRORS[mode]
            self._send(status, error_body, headers=extra)
        elif mode == "html":
            self._send(200, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        else:
            data = _a1111_image(mode, width, height)
            seed = payload.get("seed", -1)
            real_seed = 4242 if seed in (-1, None) else seed
            info = {"seed": real_seed, "sd_model_name": "realisticVision_v51", "sampler_name": payload.get("sampler_name")}
            body = {"images": [base64.b64encode(data).decode()], "parameters": payload, "info": json.dumps(info)}
            self._send(200, json.dumps(body).encode(), headers={"X-Process-Time": "0.01"})
            with server.lock:
                server.answered.append(payload.get("seed"))


#: The error answers of the WebUI's scripted modes: status, JSON body, extra headers.
_A1111_ERRORS: dict[str, tuple[int, bytes, dict[str, str] | None]] = {
    "500": (500, json.dumps({"error": "RuntimeError", "detail": "CUDA out of memory", "body": "", "errors": ""}).encode(), None),
    "429": (429, json.dumps({"detail": "Too Many Requests"}).encode(), {"Retry-After": "1"}),
    "401": (401, json.dumps({"detail": "Not authenticated"}).encode(), None),
    "422": (422, json.dumps({"detail": [{"loc": ["body", "width"], "msg": "bad width"}]}).encode(), None),
}


def _a1111_image(mode: str, width: int, height: int) -> bytes:
    """The image bytes a scripted success mode answers with."""
    if mode == "garbage":
        return b"this is not an image at all" * 10
    if mode == "blank":
        buffer = io.BytesIO()
        Image.new("RGB", (width, height)).save(buffer, "PNG")
        return buffer.getvalue()
    if mode == "wrongsize":
        return photo(width * 3, height)
    if mode.startswith("photo:"):  # another scikit-image photo, e.g. "photo:astronaut"
        return photo(width, height, mode.split(":", 1)[1])
    return photo(width, height)


class A1111Server(_Server):
    """A loopback AUTOMATIC1111 WebUI. ``script`` is consumed one mode per request,
    then ``default`` ("ok") answers."""

    def __init__(self, default: str = "ok", delay_s: float = 0.0, port: int = 0, hold_until: int = 0, hold_timeout_s: float = 60.0) -> None:
        super().__init__(_A1111Handler, port)
        self.default = default
        self.delay_s = delay_s
        self.hold_until = hold_until
        self.hold_timeout_s = hold_timeout_s
        #: The most requests held at the gate at once (``hold_until``), and whether it opened by count.
        self.held_at_once = 0
        self.gate_opened = False
        self._gate = threading.Condition()
        self._waiting = 0
        self.script: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        #: Headers added to every answer (e.g. rate-limit headers).
        self.extra_headers: dict[str, str] = {}
        #: The seed of every request answered with 200 (an image, good or bad): what a paid backend bills.
        self.answered: list[Any] = []
        self.lock = threading.Lock()

    def wait_at_gate(self) -> None:
        """Hold this request until ``hold_until`` requests wait together (the gate then opens for
        good) or ``hold_timeout_s`` passed (the gate stays shut: ``gate_opened`` false)."""
        if not self.hold_until:
            return
        with self._gate:
            if self.gate_opened:
                return
            self._waiting += 1
            self.held_at_once = max(self.held_at_once, self._waiting)
            if self._waiting >= self.hold_until:
                self.gate_opened = True
                self._gate.notify_all()
            else:
                self._gate.wait_for(lambda: self.gate_opened, timeout=self.hold_timeout_s)
            self._waiting -= 1


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
