"""What every loopback provider server shares (127.0.0.1, port 0).

One module per provider in this package holds its server (a ``ProtocolServer``
subclass that speaks and validates that provider's protocol, citing its source) and its
``CASE`` (how the shared contract test, tests/providers/test_contract.py, aims the
provider at it). Every server answers with a real photo (scikit-image) resized to the
size asked for, or, following its ``script`` (one mode per generation request, then
``default``), with one of the failures every provider must classify:

    ok, 400, 401, 402, 403, 422, 429 (Retry-After 7), 500, 503, timeout (answers after
    ``hang_s``), garbage (bytes that are not an image), truncated (half a PNG),
    filtered (the protocol's own content-filter signal, or the all-black image)

and its provider's own modes (OpenAI ``insufficient_quota`` ...). A request the real
service would refuse (missing or wrong credentials, wrong content type, unknown size,
steps over the model's limit) is refused the same way, whatever the script says.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

RETRY_AFTER_S = 7
ERROR_CODES = ("400", "401", "402", "403", "422", "429", "500", "503")
#: The contract test's standard request: 512 x 384 pixels, 30 steps, guidance 7.5, seed 123.
PROMPT = "a ceramic mug of coffee on an oak table, soft natural light"
NEGATIVE = "blurry, watermark"


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
    def json(cls, status: int, data: Any, headers: dict[str, str] | None = None, content_type: str = "application/json") -> Reply:
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
        request = Request(self.command, parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()}, body)
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
            self.files.clear()

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
        return Reply.json(code, {"detail": f"error {code}"}, retry_after(code))

    def admit(self, refused: Reply | None = None) -> tuple[str, Reply | None]:
        """(mode, answer) of a generation request. ``refused``, the real service's refusal
        (the server's ``validate``), is the answer whatever the script says, and uses up no
        mode; else the mode is ``next_mode()``, and the answer the protocol's ``error`` for
        an HTTP-code mode (``ERROR_CODES``) or None: the server answers that mode itself."""
        if refused is not None:
            return "", refused
        mode = self.next_mode()
        return mode, (self.error(int(mode)) if mode in ERROR_CODES else None)


def retry_after(code: int, header: str = "Retry-After") -> dict[str, str]:
    """The ``Retry-After`` header (``RETRY_AFTER_S`` seconds) of a 429 answer; {} for any other code."""
    return {header: str(RETRY_AFTER_S)} if code == 429 else {}


def size_of(data: dict[str, Any], default: int = 512) -> tuple[int, int]:
    """(width, height) of a JSON body, ``default`` for what is missing."""
    return int(data.get("width") or default), int(data.get("height") or default)


def ratio_size(ratio: str, megapixels: float = 1.0, multiple: int = 16) -> tuple[int, int]:
    """About ``megapixels`` MP at ``ratio`` ("16:9"), sides multiples of ``multiple``:
    what aspect-ratio models hand back."""
    a, b = (int(x) for x in ratio.split(":"))
    height = (megapixels * 1_048_576 * b / a) ** 0.5
    return max(multiple, round(height * a / b / multiple) * multiple), max(multiple, round(height / multiple) * multiple)


@dataclass(frozen=True)
class ContractCase:
    """How the contract test aims one provider at its loopback server.

    ``settings(url)``: the provider config for a server at ``url``; ``secrets``:
    environment variable -> value; ``cost_usd``: what the standard request costs;
    ``sent``: asserts on the generation request the server got; ``overrides``: mode ->
    error class where the provider's protocol differs; ``seed``: the seed reported back;
    ``is_generation``: which recorded requests are paid generation calls;
    ``wrong_key_status``: the HTTP statuses the service answers a wrong key with (the
    Gemini API: 400 INVALID_ARGUMENT, reason API_KEY_INVALID)."""

    provider: str
    server: type[ProtocolServer]
    settings: Callable[[str], dict[str, Any]]
    secrets: dict[str, str]
    cost_usd: float
    sent: Callable[[Request], None]
    is_generation: Callable[[Request], bool]
    overrides: dict[str, str] = field(default_factory=dict)
    seed: int | None = 123
    wrong_key_status: tuple[int, ...] = (401, 403)


class _Truncated(Reply):
    """A reply that announces the whole body but sends only ``cut`` bytes, then closes."""

    def __init__(self, status: int, data: bytes, cut: int, headers: dict[str, str]) -> None:
        super().__init__(status, data, "application/octet-stream", headers)
        self.cut = cut
