"""The error tree of content-pipeline.

Every error the pipeline raises on purpose derives from ``ContentPipelineError``;
foreign exceptions (httpx, Pillow, SQLAlchemy, YAML) are translated at one point
each and re-raised ``from exc``::

    ContentPipelineError
    ├── ConfigError                 bad configuration file / environment value
    ├── TemplateError               malformed template or schedule YAML
    ├── ContentPolicyError          a prompt refused by the content policy (status "blocked")
    ├── BudgetExceededError         a paid call would pass a budget cap (status "skipped")
    ├── StorageError                an object store refused or failed a write
    │   └── ObjectExistsError       the key holds a different object: never overwritten
    ├── InvalidImageError           bytes that are not a usable image
    │   ├── EmptyImageError             0 bytes
    │   ├── ImageTooLargeError          over the byte or pixel cap (decompression bomb)
    │   ├── UnsupportedImageError       not an image, or a format outside the allowed list
    │   └── CorruptImageError           truncated or damaged image data
    ├── RenditionError              a rendition cannot be made as configured
    ├── UpscaleError                an upscaler failed (weights file, model, remote endpoint)
    ├── CredentialsError            C2PA Content Credentials cannot be signed or read (imaging.credentials)
    ├── DatabaseUnavailableError    the metrics database is locked by another program or unreachable
    │   └── DatabaseLostError       the database was deleted or replaced during the run
    └── ProviderError               one failed attempt at one provider
        ├── TransientProviderError      timeouts, connection errors, 429, 5xx: retry / next
        │   └── InvalidOutputError      200 answer whose body is not a usable image
        ├── RejectedProviderError       400 / 422, content filtered: next provider, no retry
        │   ├── ContentFilteredError    the provider's safety filter refused or blanked the image
        │   └── UnsafeURLError          an output URL we refuse to fetch (SSRF guard)
        └── AuthBillingProviderError    401 / 402 / 403: next provider, disabled for the run
    AllProvidersFailedError (a ProviderError) when the whole chain is exhausted.

The classification of provider failures is drawn in providers/base.py (statuses and the
providers' own error codes, each provider's documentation cited in its module).
"""

from __future__ import annotations


class ContentPipelineError(Exception):
    """Base class of every error raised on purpose by content-pipeline."""


class ConfigError(ContentPipelineError):
    """The configuration (YAML file, environment or .env) holds an unknown key or a bad value.

    The message names the file (or environment variable), the key and the value.
    """


class TemplateError(ContentPipelineError):
    """A template or schedule file is malformed; the message names file, line and field."""


class DatabaseUnavailableError(ContentPipelineError):
    """The metrics database cannot be used now: a SQLite file whose write lock another
    program holds, or a server that does not answer within the connect timeout. Raised
    by storage.db's fail-fast check, which the command line turns on (one line, exit 1),
    and by any transaction that waited past SQLite's busy timeout or lost its server."""


class DatabaseLostError(DatabaseUnavailableError):
    """The database a run started with is gone: its SQLite file was deleted or replaced,
    or its installation id or schema revision changed (another database put in its place).
    Raised at the next transaction, and at every one after it: nothing more is recorded."""


class ContentPolicyError(ContentPipelineError):
    """A prompt was refused by the content policy; ``reason`` says which rule."""

    def __init__(self, reason: str, rule: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        #: the policy rule that refused it (policy: ``sexualised-minors`` ...), when known
        self.rule = rule


class BudgetExceededError(ContentPipelineError):
    """A paid call would push spending past a cap (USD)."""


class ReviewerRefusedError(ContentPipelineError):
    """A reviewer not listed among the reviewers of the image's client (``clients.<name>.reviewers``)
    tried to decide it; the message names the reviewer, the image and the client."""


class StorageError(ContentPipelineError):
    """An object store could not store or read an object."""


class ObjectExistsError(StorageError):
    """The key already holds a different object; stores never overwrite one."""


class InvalidImageError(ContentPipelineError):
    """Bytes that do not decode as an allowed image of sensible size."""


class EmptyImageError(InvalidImageError):
    """The file or body holds 0 bytes."""


class ImageTooLargeError(InvalidImageError):
    """More bytes or pixels than the configured caps allow (a decompression bomb)."""


class UnsupportedImageError(InvalidImageError):
    """Not an image at all (HTML, JSON, text) or a format outside the allowed list."""


class CorruptImageError(InvalidImageError):
    """A recognised format whose data is truncated or damaged."""


class RenditionError(ContentPipelineError):
    """A rendition cannot be made as configured (e.g. a target size that even quality 1 passes)."""


class UpscaleError(ContentPipelineError):
    """An upscaler failed: unreadable weights file, unsupported model, remote endpoint error."""


class ProviderError(ContentPipelineError):
    """One failed attempt at one provider.

    Attributes: ``provider`` and ``model`` (names), ``error_class`` (one of
    ``transient``, ``invalid_output``, ``rejected``, ``auth_billing``,
    ``exhausted``), ``status_code`` (HTTP status or None), ``retry_after``
    (seconds the provider asked us to wait, or None), ``billed_usd`` (USD the
    adapter knows this failed call was billed, e.g. the GPU seconds a failed
    Replicate prediction reports x the price per second; 0.0 when it knows nothing
    was billed; None when it does not know, and the chain decides with
    ``providers.chain.may_have_billed``).
    """

    error_class = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        billed_usd: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.retry_after = retry_after
        #: USD this failed call was billed, when the adapter knows it (None: unknown).
        self.billed_usd = billed_usd
        #: Rate-limit headers of the failed answer (lower-case names), for quota hints.
        self.headers: dict[str, str] = {}
        #: The id of a job still running at the provider (a BFL task pending at our timeout:
        #: no cancel endpoint): billed, to be polled by id (``Provider.resume``), never resubmitted.
        self.pending_job: str | None = None


class TransientProviderError(ProviderError):
    """Timeout, connection failure, HTTP 429 or 5xx: may succeed later."""

    error_class = "transient"


class InvalidOutputError(TransientProviderError):
    """The provider answered success, but the body is not a usable image."""

    error_class = "invalid_output"


class RejectedProviderError(ProviderError):
    """HTTP 400 / 422 or a content filter: the same input will not succeed."""

    error_class = "rejected"


class AuthBillingProviderError(ProviderError):
    """HTTP 401 / 402 / 403: credentials or credit; the provider is disabled for the run."""

    error_class = "auth_billing"


class AllProvidersFailedError(ProviderError):
    """Every provider of the chain failed or was skipped for one request."""

    error_class = "exhausted"


class ContentFilteredError(RejectedProviderError):
    """The provider's content filter refused the prompt or replaced the image (a flag,
    a moderation error, or the all-black image of a safety checker): no retry with the
    same input."""

    error_class = "content_filtered"


class UnsafeURLError(RejectedProviderError):
    """A provider handed us an output URL we refuse to fetch: not https (outside the
    configured test base), a private / loopback / link-local address, or ``file://``."""

    error_class = "unsafe_url"
