"""Civitai loopback server (https://github.com/civitai/civitai/wiki/REST-API-Reference:
``GET /api/v1/model-versions/<id>``, downloads with Range support and a token)."""

from __future__ import annotations

from typing import Any

from tests.providers.servers.common import ProtocolServer, Reply, Request, _Truncated


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
            return Reply.json(
                200,
                {
                    "id": 128713,
                    "name": "v1.0",
                    "baseModel": "SD 1.5",
                    "model": {"name": "Tiny Test LoRA", "type": "LORA", "nsfw": False},
                    "files": [
                        {
                            "id": 1,
                            "name": "tiny_test_lora.safetensors",
                            "type": "Model",
                            "primary": True,
                            "sizeKB": len(self.payload) / 1024,
                            "hashes": {"SHA256": self.sha256},
                            "downloadUrl": f"{self.url}/api/download/models/128713",
                        }
                    ],
                },
            )
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
