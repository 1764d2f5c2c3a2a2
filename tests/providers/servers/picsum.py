"""Picsum loopback server (https://picsum.photos: ``/seed/<seed>/<w>/<h>`` answers a 302 to
the JPEG; sides over 5000 px answer 400 ``{"error": "Invalid size"}``)."""

from __future__ import annotations

from tests.providers.servers.common import ContractCase, ProtocolServer, Reply, Request, image_for, retry_after


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
        mode, answer = self.admit()
        if answer is not None:
            return answer
        try:
            width, height = int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            return Reply.json(400, {"error": "Invalid size"})
        if width > 5000 or height > 5000:
            return Reply.json(400, {"error": "Invalid size"})
        location = self.add_file(image_for(mode, width, height, "JPEG"), ".jpg", "image/jpeg")
        return Reply(302, b"", "text/plain", {"Location": location.removeprefix(self.url)})

    def error(self, code: int) -> Reply:
        headers = retry_after(code)
        return Reply.json(code, {"error": f"picsum error {code}"}, headers)


def _sent(r: Request) -> None:
    assert r.path == "/seed/123/512/384" and "authorization" not in r.headers


CASE = ContractCase(
    provider="picsum",
    server=PicsumServer,
    settings=lambda url: {"base_url": url},
    secrets={},
    cost_usd=0.0,
    sent=_sent,
    is_generation=lambda r: r.path.startswith("/seed/"),
)
