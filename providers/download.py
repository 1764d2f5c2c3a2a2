"""The one way provider output URLs are fetched: an SSRF-safe, size- and time-capped GET.

Providers (Replicate, fal, BFL, OpenAI ``url`` answers, Picsum) hand back URLs that we
then download. Such a URL is attacker-influenced input (OWASP's Server-Side Request
Forgery Prevention Cheat Sheet,
https://cheatsheetseries.owasp.org/cheatsheets/Server_Side_Request_Forgery_Prevention_Cheat_Sheet.html),
so ``SafeDownloader.fetch``:

* accepts ``https://`` only, or any URL under the configured ``test_base_url``
  (same scheme, host and port, path below it): the loopback servers of the tests;
* refuses ``file://``, ``ftp://``, ``data:`` and every other scheme, URLs carrying
  user:password, and hosts that resolve to a private, loopback, link-local (the cloud
  metadata service 169.254.169.254), multicast, reserved or unspecified address;
* follows at most ``max_redirects`` redirects, checking every hop the same way;
* stops after ``max_bytes`` bytes (Content-Length first, then while streaming) or
  ``timeout_s`` seconds overall, and wants an ``image/*`` (or octet-stream) body.

Refusals raise ``UnsafeURLError`` (a rejection); network failures, 429 / 5xx and
timeouts ``TransientProviderError``; an oversized body ``InvalidOutputError``.
The host is resolved and checked before connecting; a DNS answer that changes
between the check and the connection (rebinding) is not covered.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from domain.errors import InvalidOutputError, TransientProviderError, UnsafeURLError
from providers.httperrors import raise_for_status, translate_httpx
from io import BytesIO
from pathlib import Path
from PIL import Image, UnidentifiedImageError
from domain.errors import RejectedProviderError

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
CONTENT_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")


class DownloadConfig(BaseModel):
    """``providers.download``: fetching provider output URLs. https only (or under
    ``test_base_url``), at most ``max_bytes`` bytes within ``timeout_s`` seconds, never
    private / link-local / loopback addresses, at most ``max_redirects`` hops."""

    model_config = ConfigDict(extra="forbid")
    max_bytes: Annotated[int, Field(ge=1024, le=512 * 1024 * 1024)] = DEFAULT_MAX_BYTES
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 60.0
    max_redirects: Annotated[int, Field(ge=0, le=10)] = 3
    test_base_url: str | None = None


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified)


@dataclass
class SafeDownloader:
    """Fetch provider output URLs safely (see the module docstring).

    ``max_bytes`` bytes, ``timeout_s`` seconds for the whole download, ``test_base_url``
    the one non-https base allowed (tests), ``resolve`` the name resolver (host ->
    addresses; ``socket.getaddrinfo`` by default).
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    timeout_s: float = 60.0
    max_redirects: int = 3
    test_base_url: str | None = None

    @classmethod
    def from_config(cls, config: DownloadConfig) -> SafeDownloader:
        """From the ``providers.download`` settings."""
        return cls(max_bytes=config.max_bytes, timeout_s=config.timeout_s, max_redirects=config.max_redirects, test_base_url=config.test_base_url)

    def resolve(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to (UnsafeURLError when it does not resolve)."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise UnsafeURLError(f"refused URL: host {host!r} does not resolve ({exc})") from exc
        return sorted({str(info[4][0]) for info in infos})

    def under_test_base(self, url: str) -> bool:
        """True when ``url`` lies under the configured ``test_base_url``."""
        if not self.test_base_url:
            return False
        base, target = urlsplit(self.test_base_url), urlsplit(url)
        if (base.scheme, base.hostname, base.port) != (target.scheme, target.hostname, target.port):
            return False
        prefix = base.path.rstrip("/")
        return not prefix or target.path == prefix or target.path.startswith(prefix + "/")

    def check_url(self, url: str) -> None:
        """Raise UnsafeURLError unless ``url`` may be fetched (scheme, credentials, address)."""
        if self.under_test_base(url):
            return
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme != "https":
            raise UnsafeURLError(f"refused URL: scheme {scheme or '(none)'!r} is not https: {masked_url(url)}")
        if parts.username or parts.password:
            raise UnsafeURLError(f"refused URL: credentials in the URL: {masked_url(url)}")
        host = parts.hostname
        if not host:
            raise UnsafeURLError(f"refused URL: no host: {masked_url(url)}")
        try:
            literal = [str(ipaddress.ip_address(host))]
        except ValueError:
            literal = []
        addresses = literal or self.resolve(host, parts.port or 443)
        for address in addresses:
            if not address_allowed(address):
                raise UnsafeURLError(f"refused URL: {host} resolves to the non-public address {address}: {masked_url(url)}")

    def fetch(self, url: str, *, provider: str, model: str | None = None, headers: dict[str, str] | None = None, timeout_s: float | None = None) -> bytes:
        """The body of ``url`` (bytes), following checked redirects; see the module docstring
        for what is refused. ``headers`` go to the first host only (never across a redirect
        to another origin). ``timeout_s`` shortens the configured time cap."""
        limit = min(self.timeout_s, timeout_s) if timeout_s else self.timeout_s
        deadline = time.monotonic() + limit
        current = url
        origin = urlsplit(url)[:2]
        with httpx.Client(timeout=limit, follow_redirects=False, trust_env=False) as client:
            for _hop in range(self.max_redirects + 1):
                try:
                    self.check_url(current)
                except UnsafeURLError as exc:
                    exc.provider, exc.model = provider, model
                    raise
                send_headers = headers if urlsplit(current)[:2] == origin else None
                with translate_httpx(provider=provider, model=model):
                    with client.stream("GET", current, headers=send_headers) as response:
                        if response.is_redirect:
                            location = response.headers.get("location", "")
                            current = urljoin(current, location)
                            continue
                        if response.status_code >= 400:
                            response.read()
                            raise_for_status(response, provider=provider, model=model)
                        return self._read(response, deadline, limit, provider=provider, model=model)
        raise TransientProviderError(f"more than {self.max_redirects} redirects from {masked_url(url)}", provider=provider, model=model)

    def _read(self, response: httpx.Response, deadline: float, limit: float, *, provider: str, model: str | None) -> bytes:
        content_type = response.headers.get("content-type", "").lower()
        if content_type and not content_type.startswith(CONTENT_TYPES):
            raise InvalidOutputError(f"output URL answered {content_type!r}, not an image", provider=provider, model=model)
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise InvalidOutputError(f"output is {declared} bytes, over the {self.max_bytes}-byte cap", provider=provider, model=model)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise InvalidOutputError(f"output passed the {self.max_bytes}-byte cap", provider=provider, model=model)
            if time.monotonic() > deadline:
                raise TransientProviderError(f"timeout: download took over {limit:.0f} s", provider=provider, model=model)
            chunks.append(chunk)
        return b"".join(chunks)


def masked_url(url: str) -> str:
    """``url`` without its query string (which may carry signed tokens)."""
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{parts.path}"
    return shown + ("?***" if parts.query else "")


#: The largest reference image or mask a template or the ad-hoc flow may name: 32 MiB.
MAX_REFERENCE_BYTES = 32 * 1024 * 1024


def load_reference(location: str, downloader: SafeDownloader | None = None) -> bytes:
    """The bytes of a reference image or mask: an https URL fetched through the SSRF-safe
    downloader, or a local file (at most ``MAX_REFERENCE_BYTES``). Raises RejectedProviderError
    (provider ``reference``) for a missing file or bytes that are not a PNG / JPEG / WebP
    image; the downloader's errors for a URL."""

    if "://" in location:
        data = (downloader or SafeDownloader(max_bytes=MAX_REFERENCE_BYTES)).fetch(location, provider="reference")
    else:
        path = Path(location)
        if not path.is_file():
            raise RejectedProviderError(f"{location}: no such file", provider="reference")
        if path.stat().st_size > MAX_REFERENCE_BYTES:
            raise RejectedProviderError(f"{location}: over {MAX_REFERENCE_BYTES} bytes", provider="reference")
        data = path.read_bytes()
    try:
        with Image.open(BytesIO(data)) as probe:
            if probe.format not in ("PNG", "JPEG", "WEBP"):
                raise RejectedProviderError(
                    f"{masked_url(location) if '://' in location else location}: {probe.format} is not PNG, JPEG or WebP", provider="reference"
                )
            probe.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise RejectedProviderError(
            f"{masked_url(location) if '://' in location else location}: not an image ({type(exc).__name__})", provider="reference"
        ) from exc
    return data
