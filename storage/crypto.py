"""Encryption of prompts at rest: a SQLAlchemy column type over Fernet (``cryptography``).

Set ``PROMPT_ENCRYPTION_KEY`` (environment or ``.env``) to a Fernet key
(``Fernet.generate_key()``: 32 url-safe base64-encoded bytes; the format and its
AES-128-CBC + HMAC-SHA256 construction: https://github.com/fernet/spec/blob/master/Spec.md).
Several comma-separated keys rotate (``MultiFernet``): the first encrypts, every one
decrypts. With a key, every prompt written to ``images.prompt`` and
``images.negative_prompt`` is stored as ``fernet:<token>`` and read back in clear;
without one, new prompts are stored in clear and encrypted ones are read back as
they are stored (``is_encrypted`` says so: the pipeline never sends such a text to a
provider, and ``history`` says the key is needed).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel.sql.sqltypes import AutoString

from domain.errors import ConfigError
from dotenv import dotenv_values
from cryptography.fernet import Fernet, MultiFernet
from cryptography.fernet import InvalidToken

PREFIX = "fernet:"
KEY_ENV = "PROMPT_ENCRYPTION_KEY"
_ciphers: dict[str, Any] = {}


def is_encrypted(value: str | None) -> bool:
    """True when ``value`` is a stored ciphertext (no key was there to decrypt it)."""
    return bool(value) and str(value).startswith(PREFIX)


def _environment_key() -> str:
    """``PROMPT_ENCRYPTION_KEY`` from the environment, else from ``.env`` in the working directory."""

    value = os.environ.get(KEY_ENV) or (dotenv_values(".env").get(KEY_ENV) if os.path.isfile(".env") else None)
    return (value or "").strip()


_key_source: Callable[[], str] = _environment_key


def set_key_source(source: Callable[[], str] | None) -> None:
    """Where the key comes from (the composition root gives the configured secrets'); None
    (and by default): the environment or ``.env``. Forgets the ciphers built from an earlier key."""
    global _key_source
    _key_source = source or _environment_key
    _ciphers.clear()


def _key_text() -> str:
    return _key_source()


def cipher() -> Any:
    """The MultiFernet of ``PROMPT_ENCRYPTION_KEY``, or None when it is not set (or empty).

    Raises ConfigError when a key is not a valid Fernet key."""

    text = _key_text()
    if not text:
        return None
    if text not in _ciphers:
        try:
            keys = [Fernet(part.strip().encode()) for part in text.split(",") if part.strip()]
        except ValueError:
            raise ConfigError(
                "PROMPT_ENCRYPTION_KEY: not a Fernet key (32 url-safe base64-encoded bytes; make one with cryptography.fernet.Fernet.generate_key())"
            ) from None
        _ciphers.clear()
        _ciphers[text] = MultiFernet(keys)
    return _ciphers[text]


def encrypt(value: str) -> str:
    """``value`` as ``fernet:<token>`` with the current key; unchanged without a key."""
    current = cipher()
    if current is None or is_encrypted(value):
        return value
    return PREFIX + current.encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(value: str) -> str:
    """The clear text of a stored value; the stored text itself without a key (or when no
    configured key opens it)."""

    current = cipher()
    if current is None or not is_encrypted(value):
        return value
    try:
        return str(current.decrypt(value[len(PREFIX) :].encode("ascii")).decode("utf-8"))
    except (InvalidToken, ValueError):
        return value


class EncryptedText(TypeDecorator[str]):
    """A text column encrypted with ``PROMPT_ENCRYPTION_KEY`` when it is set (VARCHAR, no length)."""

    impl = AutoString
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else decrypt(value)
