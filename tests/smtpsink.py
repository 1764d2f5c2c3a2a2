"""A loopback SMTP server (aiosmtpd) that keeps every message, for Apprise ``mailto://`` tests."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from tests.s3server import free_port


class SmtpSink:
    """``with SmtpSink() as smtp:`` -> ``smtp.apprise_url`` and ``smtp.messages`` (parsed)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self._controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def __enter__(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._controller.stop()

    @property
    def apprise_url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?mode=insecure&from=pipeline@example.com&to=ops@example.com"

    def bodies(self) -> list[str]:
        texts = []
        for message in self.messages:
            part = message.get_body(preferencelist=("plain", "html"))
            texts.append(part.get_content() if part is not None else "")
        return texts
