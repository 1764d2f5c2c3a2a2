"""Downloading models and LoRAs from Civitai by model-version id
(https://github.com/civitai/civitai/wiki/REST-API-Reference).

``GET {base}/api/v1/model-versions/{id}`` describes the version: its model's ``type``
(Checkpoint, LORA, ...) and ``files`` with ``name``, ``sizeKB``, ``hashes.SHA256``,
``downloadUrl`` and ``primary``. The primary file is streamed from its downloadUrl
(``Authorization: Bearer $CIVITAI_API_TOKEN``, sent to the Civitai host only, never to
the CDN it redirects to) into ``<models_dir>/<checkpoints|loras|vae|embeddings>/<name>.part``;
an interrupted download resumes with ``Range: bytes=<size>-``. The SHA-256 Civitai
publishes is checked before the file gets its final name; a mismatch deletes it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from domain.errors import ContentPipelineError
from providers.download import SafeDownloader

FOLDERS = {"checkpoint": "checkpoints", "lora": "loras", "locon": "loras", "dora": "loras", "vae": "vae", "textualinversion": "embeddings"}
CHUNK = 1024 * 1024
#: The environment variable holding the Civitai API token (never in the YAML file).
TOKEN_ENV = ("CIVITAI_API_TOKEN",)


class CivitaiConfig(BaseModel):
    """``providers.civitai``: ``content-pipeline models pull civitai:<id>`` (token:
    ``CIVITAI_API_TOKEN``)."""

    model_config = ConfigDict(extra="forbid")
    base_url: str = "https://civitai.com"
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0


class ModelPullError(ContentPipelineError):
    """A model could not be pulled; ``resumable`` when a partial file was kept for a retry."""

    def __init__(self, message: str, *, resumable: bool = False) -> None:
        super().__init__(message)
        self.resumable = resumable


@dataclass(frozen=True)
class CivitaiFile:
    """The file of a model version: name, size in bytes, SHA-256 (hex, upper case), URL, kind."""

    version_id: int
    model_name: str
    model_type: str
    name: str
    size_bytes: int
    sha256: str | None
    download_url: str

    @property
    def folder(self) -> str:
        return FOLDERS.get(self.model_type.lower(), "other")


@dataclass(frozen=True)
class PullResult:
    path: Path
    size_bytes: int
    sha256: str
    resumed_from: int
    already_present: bool


class CivitaiClient:
    """A small client of Civitai's REST API: ``version_file`` then ``pull``."""

    def __init__(self, *, base_url: str = "https://civitai.com", token: str | None = None, timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._guard = SafeDownloader(test_base_url=self.base_url)

    def _headers_for(self, url: str) -> dict[str, str]:
        same_host = urlsplit(url)[:2] == urlsplit(self.base_url)[:2]
        return {"Authorization": f"Bearer {self.token}"} if self.token and same_host else {}

    def version_file(self, version_id: int) -> CivitaiFile:
        """The primary file of model version ``version_id``; ModelPullError when unknown."""
        url = f"{self.base_url}/api/v1/model-versions/{version_id}"
        try:
            response = httpx.get(url, headers=self._headers_for(url), timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise ModelPullError(f"Civitai unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            raise ModelPullError(f"civitai:{version_id}: no such model version")
        if response.status_code >= 400:
            raise ModelPullError(f"civitai:{version_id}: HTTP {response.status_code}: {response.text[:200]}")
        data: dict[str, Any] = response.json()
        files = data.get("files") or []
        if not files:
            raise ModelPullError(f"civitai:{version_id}: the version lists no files")
        chosen = next((f for f in files if f.get("primary")), files[0])
        model = data.get("model") or {}
        return CivitaiFile(
            version_id=version_id,
            model_name=str(model.get("name") or f"version {version_id}"),
            model_type=str(model.get("type") or "Checkpoint"),
            name=Path(str(chosen["name"])).name,
            size_bytes=int(float(chosen.get("sizeKB") or 0) * 1024),
            sha256=((chosen.get("hashes") or {}).get("SHA256") or None),
            download_url=str(chosen.get("downloadUrl") or f"{self.base_url}/api/download/models/{version_id}"),
        )

    def pull(self, file: CivitaiFile, models_dir: Path, progress: Callable[[int, int], None] = lambda done, total: None) -> PullResult:
        """Download ``file`` into ``models_dir/<folder>/``, resuming a ``.part`` left by an
        earlier attempt; ``progress(done_bytes, total_bytes)`` after each chunk."""
        folder = models_dir / file.folder
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / file.name
        part = target.with_name(target.name + ".part")
        if target.exists() and file.sha256 and _sha256(target) == file.sha256.upper():
            progress(target.stat().st_size, target.stat().st_size)
            return PullResult(target, target.stat().st_size, file.sha256.upper(), 0, True)
        state = _PartFile.resume(part)
        url = file.download_url
        try:
            with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
                for _hop in range(5):
                    self._guard.check_url(url)
                    headers = self._headers_for(url)
                    if state.offset:
                        headers["Range"] = f"bytes={state.offset}-"
                    with client.stream("GET", url, headers=headers) as response:
                        if response.is_redirect:
                            url = urljoin(url, response.headers.get("location", ""))
                            continue
                        if response.status_code == 416:  # nothing left to fetch
                            break
                        _refuse(response, file, part)
                        state.receive(response, file, progress)
                    break
                else:
                    raise ModelPullError(f"civitai:{file.version_id}: too many redirects")
        except httpx.HTTPError as exc:
            raise ModelPullError(
                f"civitai:{file.version_id}: download interrupted at {state.offset} bytes ({type(exc).__name__}); run the command again to resume",
                resumable=True,
            ) from exc
        except ContentPipelineError:
            raise
        actual = state.digest.hexdigest().upper()
        if file.sha256 and actual != file.sha256.upper():
            part.unlink(missing_ok=True)
            raise ModelPullError(f"civitai:{file.version_id}: SHA-256 mismatch (expected {file.sha256.upper()}, got {actual}); the partial file was deleted")
        os.replace(part, target)
        return PullResult(target, state.offset, actual, state.resumed_from, False)


def _refuse(response: httpx.Response, file: CivitaiFile, part: Path) -> None:
    """ModelPullError for an error answer (401/403: a token is needed); return for success."""
    if response.status_code in (401, 403):
        raise ModelPullError(f"civitai:{file.version_id}: HTTP {response.status_code}: this download needs a valid CIVITAI_API_TOKEN (environment or .env)")
    if response.status_code >= 400:
        raise ModelPullError(f"civitai:{file.version_id}: HTTP {response.status_code}", resumable=part.exists())


@dataclass
class _PartFile:
    """A download's ``.part`` file: bytes so far, where this run resumed, their SHA-256."""

    path: Path
    offset: int
    resumed_from: int
    digest: Any

    @classmethod
    def resume(cls, part: Path) -> _PartFile:
        """The state of ``part`` left by an earlier attempt (hashed again), or an empty one."""
        offset = part.stat().st_size if part.exists() else 0
        digest = hashlib.sha256()
        if offset:
            with part.open("rb") as existing:
                for block in iter(lambda: existing.read(CHUNK), b""):
                    digest.update(block)
        return cls(part, offset, offset, digest)

    def receive(self, response: httpx.Response, file: CivitaiFile, progress: Callable[[int, int], None]) -> None:
        """Append the answer's body (from the start when the server ignored Range), hashing
        it as it comes; ``progress(done_bytes, total_bytes)`` after each chunk."""
        if self.offset and response.status_code != 206:  # the server ignored Range: start over
            self.offset, self.resumed_from, self.digest = 0, 0, hashlib.sha256()
        total = self.offset + int(response.headers.get("content-length") or 0) or file.size_bytes
        with self.path.open("ab" if self.offset else "wb") as out:
            for chunk in response.iter_bytes():  # as received: a cut keeps what came
                out.write(chunk)
                self.digest.update(chunk)
                self.offset += len(chunk)
                progress(self.offset, total)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest().upper()
