"""Object stores behind one small interface, selected by URL (fsspec-style).

``open_store("file:///srv/images")`` -> LocalStore; ``open_store("s3://bucket/prefix",
s3=S3Config(...))`` -> S3Store (boto3; MinIO, R2 and other S3-compatible stores through
``endpoint_url``). A store implements ``put``, ``get``, ``exists``, ``head``, ``url``
and ``presigned_url``; keys are ``/``-separated relative paths
(``content/<category>/<yyyy>/<mm>/<file>``). Writing a key that already holds the
same bytes is a no-op (a re-run uploads nothing twice); writing different bytes to it
raises ObjectExistsError: an object is never overwritten by a different image.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field

from domain.errors import ObjectExistsError, StorageError

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


def check_key(key: str) -> str:
    """``key`` if it is a safe relative key (no ``..``, no absolute path, plain characters)."""
    if not _KEY.match(key) or any(part in ("..", ".") for part in key.split("/")):
        raise StorageError(f"unsafe object key {key!r}")
    return key


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class S3Config(BaseModel):
    """Options of an ``s3://bucket/prefix`` storage_url (boto3). Credentials come from the
    environment (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` or any boto3 source).

    ``endpoint_url`` for MinIO / R2 / other S3-compatible stores; ``addressing_style``
    ``path`` for those; ``checksum`` ``when_required`` (botocore's
    request_checksum_calculation) keeps stores that reject the newer default CRC
    checksums working; ``sse`` ``AES256`` or ``aws:kms`` (with ``sse_kms_key_id``);
    ``storage_class`` e.g. ``STANDARD_IA``; presigned URLs live ``presign_expires_s`` seconds.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    endpoint_url: str | None = None
    region: str = "us-east-1"
    addressing_style: Literal["auto", "path", "virtual"] = "path"
    checksum: Literal["when_required", "when_supported"] = "when_required"
    sse: Literal["AES256", "aws:kms"] | None = None
    sse_kms_key_id: str | None = None
    storage_class: str | None = None
    presign_expires_s: Annotated[int, Field(ge=1, le=604800)] = 3600
    connect_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3


@dataclass(frozen=True)
class StoredObject:
    """What a store holds at a key: size in bytes, SHA-256, content type, metadata."""

    key: str
    size: int
    checksum: str
    content_type: str
    metadata: dict[str, str]


class ObjectStore(ABC):
    """The primitives every store implements."""

    @abstractmethod
    def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str] | None = None) -> StoredObject:
        """Store ``data`` at ``key``; idempotent for identical bytes, ObjectExistsError otherwise."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes at ``key``; StorageError when absent."""

    @abstractmethod
    def head(self, key: str) -> StoredObject | None:
        """What is stored at ``key``, or None."""

    @abstractmethod
    def url(self, key: str) -> str:
        """A URL a person can open for ``key``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` (nothing when absent); StorageError when the store refuses."""

    @abstractmethod
    def keys(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (``content/`` ...), sorted."""

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def presigned_url(self, key: str, expires_s: int | None = None) -> str:
        """A URL that lets anyone holding it download ``key`` for ``expires_s`` seconds
        (stores without signing return their plain URL)."""
        return self.url(key)


class LocalStore(ObjectStore):
    """A folder on the local disk; writes are atomic (temporary file + rename).

    Metadata and content type live in a ``<file>.meta.json`` sidecar next to the object.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str] | None = None) -> StoredObject:
        path = self._path(key)
        checksum = sha256_hex(data)
        current = self.head(key)
        if current is not None:
            if current.checksum == checksum:
                return current
            raise ObjectExistsError(f"{key!r} already holds a different object (sha256 {current.checksum[:12]})")
        obj = StoredObject(key, len(data), checksum, content_type, dict(metadata or {}))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path.with_name(path.name + ".meta.json"), json.dumps(obj.__dict__, indent=1).encode())
            _atomic_write(path, data)
        except OSError as exc:  # one line: the file and the system's cause (Read-only file system, No space left on device)
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
        return obj

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {key!r} under {self.root}: {exc}") from exc

    def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        meta_path = path.with_name(path.name + ".meta.json")
        try:
            meta = json.loads(meta_path.read_text())
            return StoredObject(**meta)
        except (OSError, ValueError, TypeError):
            data = path.read_bytes()
            return StoredObject(key, len(data), sha256_hex(data), "application/octet-stream", {})

    def url(self, key: str) -> str:
        return self._path(key).resolve().as_uri()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".meta.json").unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {key!r} under {self.root}: {exc}") from exc

    def keys(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        found = []
        for path in base.rglob("*"):
            name = path.name
            if path.is_file() and not name.endswith(".meta.json") and not name.startswith(".tmp-"):
                found.append(path.relative_to(self.root).as_posix())
        return sorted(found)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a hidden sibling ``.<name>.<pid>-<thread>.part`` and an
    atomic rename. The part file's name derives from the target, so a write killed half-way
    (SIGKILL: no ``except`` runs) leaves a part file the next successful write of the same
    key removes; claims make one writer per key at a time."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.part")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    prefix = f".{path.name}."  # the part files of this key (a plain scan: no pattern compiled, no stat per entry)
    with os.scandir(path.parent) as entries:
        stale = [entry.path for entry in entries if entry.name.startswith(prefix) and entry.name.endswith(".part")]
    for name in stale:
        Path(name).unlink(missing_ok=True)


#: S3 user metadata is limited to 2 KiB per object (keys + values), see
#: https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingMetadata.html
S3_METADATA_LIMIT = 2048


def fit_metadata(metadata: dict[str, str], limit: int = S3_METADATA_LIMIT) -> dict[str, str]:
    """``metadata`` with its longest values shortened (ending ``...``) until keys + values fit ``limit`` bytes."""
    fitted = dict(metadata)

    def size() -> int:
        return sum(len(k.encode()) + len(v.encode()) for k, v in fitted.items())

    while size() > limit:
        longest = max(fitted, key=lambda k: len(fitted[k]))
        value = fitted[longest]
        if len(value) <= 16:
            raise StorageError(f"object metadata cannot fit {limit} bytes: {sorted(fitted)}")
        fitted[longest] = value[: max(16, len(value) - (size() - limit) - 3)] + "..."
    return fitted


class S3Store(ObjectStore):
    """A bucket (and key prefix) of an S3-compatible store, through boto3.

    The object's SHA-256 travels in its ``sha256`` metadata: ``put`` compares it to
    refuse a different image at a taken key, and writes with ``If-None-Match: *`` so
    that two writers racing for one key cannot both win. Options: see
    S3Config. Every boto3 / botocore failure becomes StorageError.
    """

    def __init__(
        self, bucket: str, prefix: str = "", *, options: S3Config | None = None, client: Any = None, credentials: dict[str, str] | None = None
    ) -> None:
        if not bucket:
            raise StorageError("an s3:// storage_url needs a bucket: s3://<bucket>[/<prefix>]")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.options = options or S3Config()
        self._client = client
        self._credentials = dict(credentials or {})  # boto3 keyword arguments; never logged

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # noqa: PLC0415 - boto3: heavy, only for an s3:// store
            from botocore.config import Config  # noqa: PLC0415 - botocore: heavy, only for an s3:// store

            o = self.options
            config = Config(
                s3={"addressing_style": o.addressing_style},
                request_checksum_calculation=o.checksum,
                response_checksum_validation=o.checksum,
                connect_timeout=o.connect_timeout_s,
                retries={"max_attempts": o.max_attempts, "mode": "standard"},
                signature_version="s3v4",
            )
            self._client = boto3.client("s3", endpoint_url=o.endpoint_url, region_name=o.region, config=config, **self._credentials)
        return self._client

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _call(self, what: str, key: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - botocore: heavy, only for an s3:// store

        try:
            return fn(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise StorageError(f"cannot {what} {self._where(key)}: {error.get('Code')} {error.get('Message', '')}".strip()) from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot {what} {self._where(key)}: {exc}") from exc

    def head(self, key: str) -> StoredObject | None:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - botocore: heavy, only for an s3:// store

        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                return None
            raise StorageError(f"cannot read {self._where(key)}: HTTP {status} {exc.response.get('Error', {}).get('Code')}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {self._where(key)}: {exc}") from exc
        metadata = dict(answer.get("Metadata", {}))
        checksum = metadata.pop("sha256", "")
        return StoredObject(key, int(answer.get("ContentLength", 0)), checksum, answer.get("ContentType", "application/octet-stream"), metadata)

    def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str] | None = None) -> StoredObject:
        from botocore.exceptions import ClientError  # noqa: PLC0415 - botocore: heavy, only for an s3:// store

        checksum = sha256_hex(data)
        current = self.head(key)
        if current is not None:
            if current.checksum == checksum:
                return current
            raise ObjectExistsError(f"{self._where(key)} already holds a different object (sha256 {current.checksum[:12] or 'unknown'})")
        meta = fit_metadata({**(metadata or {}), "sha256": checksum})
        extra: dict[str, Any] = {"ContentType": content_type, "Metadata": meta}
        if self.options.sse:
            extra["ServerSideEncryption"] = self.options.sse
            if self.options.sse_kms_key_id:
                extra["SSEKMSKeyId"] = self.options.sse_kms_key_id
        if self.options.storage_class:
            extra["StorageClass"] = self.options.storage_class
        try:
            self._call("write", key, self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*", **extra)
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 412:
                winner = self.head(key)  # another writer stored this key between our head and put
                if winner is not None and winner.checksum == checksum:
                    return winner
                raise ObjectExistsError(f"{self._where(key)} was just stored by another writer with different bytes") from exc
            raise
        return StoredObject(key, len(data), checksum, content_type, {k: v for k, v in meta.items() if k != "sha256"})

    def get(self, key: str) -> bytes:
        answer = self._call("read", key, self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        return answer["Body"].read()

    def presigned_url(self, key: str, expires_s: int | None = None) -> str:
        """A presigned GET URL (SigV4) valid ``expires_s`` seconds (default ``presign_expires_s``)."""
        return self._call(
            "sign",
            key,
            self.client.generate_presigned_url,
            ClientMethod="get_object",
            Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=expires_s or self.options.presign_expires_s,
        )

    def url(self, key: str) -> str:
        return self.presigned_url(key)

    def delete(self, key: str) -> None:
        self._call("delete", key, self.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    def keys(self, prefix: str = "") -> list[str]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        found: list[str] = []
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                found.extend(item["Key"][strip:] for item in page.get("Contents", []))
        except Exception as exc:  # botocore ClientError / BotoCoreError
            raise StorageError(f"cannot list s3://{self.bucket}/{full}: {exc}") from exc
        return sorted(found)


def open_store(url: str, *, s3: S3Config | None = None, credentials: dict[str, str] | None = None) -> ObjectStore:
    """The store for ``url``: ``file:///path`` (or a plain path) or ``s3://bucket[/prefix]``
    (options from ``s3``, boto3 ``credentials`` such as ``aws_access_key_id``; default:
    boto3's own chain). StorageError for any other scheme."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path) if parsed.scheme else url
        return LocalStore(Path(path))
    if parsed.scheme == "s3":
        return S3Store(parsed.netloc, unquote(parsed.path), options=s3, credentials=credentials)
    raise StorageError(f"unsupported storage URL scheme {parsed.scheme!r} in storage_url {url!r} (supported: file://, s3://)")
