"""The private-address guard of every HTTP client an adapter builds, SDK clients included.

A provider's base URL answering a redirect (301 / 302 / 303 / 307 / 308) to an internal
address would make a client that follows redirects (the ``openai`` and ``huggingface_hub``
SDKs do by default) send our request, with its key, to 127.0.0.1, ``[::1]``, the cloud
metadata service (169.254.169.254) or a local host name: server-side request forgery
(https://cheatsheetseries.owasp.org/cheatsheets/Server_Side_Request_Forgery_Prevention_Cheat_Sheet.html).
The guard sits in the client's transport, so it sees every request the client sends,
redirect hops included:

* a request to an allowed origin (scheme, host, port of the configured base URL) passes,
  and so does a redirect answer whose ``Location`` passes the same check (a redirect to
  an internal address is refused when it arrives, whether or not the client follows it);
* any other host is resolved and refused (``UnsafeURLError``, a rejection) when an
  address is private, loopback, link-local, multicast, reserved or unspecified (the rule of
  providers/download.py), unless the provider's configuration sets
  ``allow_private_addresses: true`` (a self-hosted service on the LAN).

The same class wraps ``httpx`` and ``httpx2`` transports (the SDKs use ``httpx2``).
A DNS answer that changes between the check and the connection (rebinding) is not covered.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from domain.errors import UnsafeURLError
from providers.download import address_allowed
import os

Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> Origin | None:
    """(scheme, lower-case host, port) of ``url``, or None when it has no host."""
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port or None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


class AddressGuard:
    """Refuses requests to internal addresses outside the allowed origins (module docstring).

    ``origins``: base URLs whose origin is always allowed; ``allow_private``: allow every
    address (the provider's ``allow_private_addresses``); ``provider``: the name put on
    refusals; ``resolve``: host, port -> addresses (``socket.getaddrinfo``)."""

    def __init__(
        self, origins: Iterable[str | None] = (), *, allow_private: bool = False, provider: str = "", resolve: Callable[[str, int], list[str]] = _resolve
    ) -> None:
        self.allow_private = allow_private
        self.provider = provider
        self.resolve = resolve
        self._origins: set[Origin] = set()
        self._lock = threading.Lock()
        for url in origins:
            self.allow(url)

    def allow(self, url: str | None) -> None:
        """Allow the origin of ``url`` (ignored when None or without a host)."""
        found = origin_of(url) if url else None
        if found:
            with self._lock:
                self._origins.add(found)

    def check(self, url: str) -> None:
        """Return when ``url`` may be requested; else raise UnsafeURLError."""
        found = origin_of(url)
        if found is None:
            raise UnsafeURLError("refused URL: no host", provider=self.provider, billed_usd=0.0)
        with self._lock:
            if found in self._origins or self.allow_private:
                return
        scheme, host, port = found
        addresses = self.resolve(host.strip("[]"), port)
        bad = [a for a in addresses if not address_allowed(a)]
        if bad:
            raise UnsafeURLError(
                f"refused URL: {scheme}://{host}:{port} resolves to the internal address {bad[0]} "
                f"(a redirect away from the configured base URL?); set providers.{self.provider}."
                "allow_private_addresses: true to allow it",
                provider=self.provider,
                billed_usd=0.0,
            )  # never sent: nothing billed


def _guarded(module: Any) -> type:
    """A transport class of ``module`` (httpx or httpx2) that checks each request with a guard."""

    class GuardedTransport(module.BaseTransport):
        def __init__(self, guard: AddressGuard, inner: Any = None) -> None:
            self.guard = guard
            self.inner = inner if inner is not None else module.HTTPTransport()

        def handle_request(self, request: Any) -> Any:
            self.guard.check(str(request.url))
            response = self.inner.handle_request(request)
            location = response.headers.get("location") if 300 <= response.status_code < 400 else None
            if location:  # refused here whether or not the client follows it
                try:
                    self.guard.check(urljoin(str(request.url), location))
                except UnsafeURLError:
                    response.close()
                    raise
            return response

        def close(self) -> None:
            self.inner.close()

    return GuardedTransport


_HTTPX_TRANSPORT = _guarded(httpx)


def guarded_client(guard: AddressGuard, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` (``kwargs`` as for httpx) whose every request passes ``guard``."""
    return httpx.Client(transport=_HTTPX_TRANSPORT(guard), **kwargs)


def guarded_sdk_client(guard: AddressGuard, **kwargs: Any) -> Any:
    """An ``httpx2.Client`` (the client class of the openai and huggingface_hub SDKs) whose
    every request, redirect hops included, passes ``guard``."""
    import httpx2  # noqa: PLC0415 - the SDK clients' HTTP library: loaded only with the openai or huggingface_hub SDK

    return httpx2.Client(transport=_guarded(httpx2)(guard), **kwargs)


def guard_for(provider: Any, *urls: str | None) -> AddressGuard:
    """The guard of ``provider``: its configured URLs' origins allowed, private addresses
    only with its ``allow_private_addresses``."""
    return AddressGuard(urls, allow_private=bool(getattr(provider.config, "allow_private_addresses", False)), provider=provider.name)


def unsafe_cause(exc: BaseException) -> UnsafeURLError | None:
    """The UnsafeURLError behind ``exc`` (an SDK wraps transport errors), or None."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, UnsafeURLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


_HF_LOCK = threading.Lock()
_HF_GUARD: AddressGuard | None = None


def huggingface_guard(provider: Any, *urls: str | None) -> AddressGuard:
    """The guard of huggingface_hub's shared ``httpx2`` session (the SDK takes no client
    per instance: ``huggingface_hub.set_client_factory`` installs a guarded one, once per
    process). ``urls`` (the provider's endpoint and Hub URLs) and ``HF_ENDPOINT`` are
    allowed origins; a provider configured with ``allow_private_addresses`` allows private
    addresses for that shared session (process-wide)."""

    global _HF_GUARD
    with _HF_LOCK:
        if _HF_GUARD is None:
            import huggingface_hub  # noqa: PLC0415 - huggingface_hub: heavy import, only for that provider

            try:
                from huggingface_hub.utils._http import hf_request_event_hook  # noqa: PLC0415 - huggingface_hub: heavy import, only for that provider

                hooks: dict[str, list[Any]] = {"request": [hf_request_event_hook]}
            except ImportError:  # pragma: no cover - the hook moved: the session works without it
                hooks = {}
            guard = AddressGuard([os.environ.get("HF_ENDPOINT")], provider="huggingface")
            huggingface_hub.set_client_factory(lambda: guarded_sdk_client(guard, event_hooks=hooks, follow_redirects=True, timeout=None))
            _HF_GUARD = guard
        guard = _HF_GUARD
    for url in urls:
        guard.allow(url)
    if getattr(provider.config, "allow_private_addresses", False):
        guard.allow_private = True
    return guard
