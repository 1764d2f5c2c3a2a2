"""C2PA Content Credentials: signed manifests on every published file (c2pa-python).

C2PA (Coalition for Content Provenance and Authenticity, specification 2.x:
https://spec.c2pa.org/specifications/specifications/2.2/specs/C2PA_Specification.html)
binds a signed manifest to the bytes of a file; the EU AI Act (Art. 50(2)) asks that
AI-generated images be marked in a machine-readable way, and C2PA with the IPTC
digital source type is the industry's answer. The library is the Content
Authenticity Initiative's c2pa-python (https://github.com/contentauth/c2pa-python),
the Rust c2pa-rs SDK underneath; it signs JPEG, PNG, WebP and AVIF (and reads them).

What is signed:

* the original (``original.png``): actions ``c2pa.created`` with
  ``digitalSourceType`` = IPTC ``trainedAlgorithmicMedia`` and the generator as
  ``softwareAgent`` (provider/model), and the assertion
  ``com.content-pipeline.generation`` (image id, template, seed, provider, model and,
  unless the prompt is private, the prompt and negative prompt);
* each rendition: its own manifest with the signed original as ``parentOf``
  ingredient (its manifest travels inside) and actions ``c2pa.opened`` +
  ``c2pa.resized`` / ``c2pa.transcoded``.

The signer: ``c2pa.certificate`` (PEM chain, signing certificate first) and the
private key (``C2PA_PRIVATE_KEY`` in the environment, else the ``c2pa.private_key``
file). C2PA requires an end-entity certificate (not a CA) with the digitalSignature
key usage and an extended key usage such as id-kp-emailProtection or
c2pa-kp-claimSigning (spec §14.5.1, "Certificate profile"). No time-stamp authority
is contacted unless ``c2pa.timestamp_url`` is set. Thumbnails are not embedded.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from domain.errors import ConfigError, ContentPipelineError
from config.imaging import C2paConfig
from imaging.provenance import DIGITAL_SOURCE_TYPE, Provenance
from importlib.metadata import PackageNotFoundError, version
from imaging.signing_chain import installation_chain
import hashlib
from imaging.files import write_atomic

MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}
_SUFFIX_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".avif": "image/avif"}
GENERATION_LABEL = "com.content-pipeline.generation"
#: what ``verify`` and ``doctor`` say of a signer that no trust anchor vouches for
UNTRUSTED = (
    "the signer is untrusted (the per-installation self-signed certificate, or one not under "
    "c2pa.trust_anchors): for a trusted signer set c2pa.certificate and c2pa.private_key (or "
    "C2PA_PRIVATE_KEY) to a certificate from a CA on the C2PA trust list, and c2pa.trust_anchors to its root"
)


class CredentialsError(ContentPipelineError):
    """A file cannot be signed or read: unsupported format, no manifest, unreadable file."""


def _version() -> str:

    try:
        return version("content-pipeline")
    except PackageNotFoundError:
        return "0"


def _c2pa() -> Any:
    try:
        import c2pa  # noqa: PLC0415 - c2pa-python loads a native library: only when signing or verifying
    except ImportError as exc:
        raise ConfigError(f"C2PA Content Credentials need c2pa-python: pip install c2pa-python ({exc})") from exc
    return c2pa


def _context(c2pa: Any, trust_anchors: Path | None = None) -> Any:
    settings: dict[str, Any] = {"builder": {"thumbnail": {"enabled": False}}}
    if trust_anchors is not None:
        try:
            settings["trust"] = {"trust_anchors": trust_anchors.read_text()}
        except OSError as exc:
            raise ConfigError(f"c2pa.trust_anchors = {str(trust_anchors)!r}: cannot read: {exc.strerror}") from None
    return c2pa.Context(c2pa.Settings.from_dict(settings))


@dataclass(frozen=True)
class SignerMaterial:
    """The PEM certificate chain and private key, the algorithm and the TSA URL."""

    certificate: bytes
    private_key: bytes
    algorithm: str = "es256"
    timestamp_url: str | None = None

    @classmethod
    def from_config(cls, config: C2paConfig, private_key_pem: str | None = None, installation_dir: Path | None = None) -> SignerMaterial:
        """Read the files named by ``config``; ``private_key_pem`` (C2PA_PRIVATE_KEY) wins over the key file.
        Without ``c2pa.certificate``: the per-installation chain in ``installation_dir``
        (imaging.signing_chain, made on first use).

        Raises ConfigError naming the setting when a file cannot be read."""
        if config.certificate is None:
            return cls.installation(config, installation_dir)
        try:
            certificate = config.certificate.read_bytes()
        except OSError as exc:
            raise ConfigError(f"c2pa.certificate = {str(config.certificate)!r}: cannot read: {exc.strerror}") from None
        if private_key_pem:
            key = private_key_pem.encode()
        elif config.private_key is not None:
            try:
                key = config.private_key.read_bytes()
            except OSError as exc:
                raise ConfigError(f"c2pa.private_key = {str(config.private_key)!r}: cannot read: {exc.strerror}") from None
        else:
            raise ConfigError("c2pa: no private key (set C2PA_PRIVATE_KEY or c2pa.private_key)")
        return cls(certificate, key, config.algorithm, config.timestamp_url)

    @classmethod
    def installation(cls, config: C2paConfig, installation_dir: Path | None) -> SignerMaterial:
        """The per-installation self-signed signer (imaging.signing_chain). ConfigError when
        no folder is given or it cannot be written."""

        if installation_dir is None:
            raise ConfigError("c2pa.certificate is not set")
        try:
            chain = installation_chain(installation_dir)
            return cls(chain.certificate.read_bytes(), chain.private_key.read_bytes(), "es256", config.timestamp_url)
        except OSError as exc:
            raise ConfigError(f"c2pa: cannot make the installation's signer in {installation_dir}: {exc.strerror or exc}") from None

    def signer(self) -> Any:
        c2pa = _c2pa()
        try:
            info = c2pa.C2paSignerInfo(self.algorithm.encode(), self.certificate, self.private_key, self.timestamp_url.encode() if self.timestamp_url else None)
            return c2pa.Signer.from_info(info)
        except c2pa.C2paError as exc:
            raise ConfigError(f"c2pa: the certificate or private key is not usable: {str(exc)[:200]}") from None


def generator(provenance: Provenance) -> str:
    return "/".join(str(v) for v in (provenance.provider, provenance.model) if v) or "unknown"


def original_manifest(provenance: Provenance, title: str, claim_generator: str = "content-pipeline") -> dict[str, Any]:
    """The manifest definition of a generated original (see the module docstring)."""
    generation: dict[str, Any] = {
        "image_id": provenance.image_id,
        "template": provenance.template,
        "template_version": provenance.template_version,
        "variant": provenance.variant,
        "category": provenance.category,
        "seed": provenance.seed,
        "provider": provenance.provider,
        "model": provenance.model,
        "placeholder": provenance.placeholder,
    }
    if not provenance.prompt_private:
        generation["prompt"] = provenance.prompt
        generation["negative_prompt"] = provenance.negative_prompt
    return {
        "claim_generator_info": [{"name": claim_generator, "version": _version()}],
        "title": title,
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": DIGITAL_SOURCE_TYPE,
                            "softwareAgent": {"name": generator(provenance)},
                        }
                    ]
                },
            },
            {"label": GENERATION_LABEL, "data": {k: v for k, v in generation.items() if v is not None}},
        ],
    }


def rendition_manifest(title: str, resized: bool, transcoded: bool, claim_generator: str = "content-pipeline") -> dict[str, Any]:
    """The manifest definition of a rendition made from the signed original (ingredient ``original``)."""
    actions: list[dict[str, Any]] = [{"action": "c2pa.opened", "parameters": {"ingredientIds": ["original"]}}]
    if resized:
        actions.append({"action": "c2pa.resized"})
    if transcoded:
        actions.append({"action": "c2pa.transcoded"})
    return {
        "claim_generator_info": [{"name": claim_generator, "version": _version()}],
        "title": title,
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}}],
    }


def sign_bytes(data: bytes, mime: str, manifest: dict[str, Any], material: SignerMaterial, *, ingredient: tuple[bytes, str, str] | None = None) -> bytes:
    """``data`` with ``manifest`` signed and embedded. ``ingredient``: (bytes, MIME type,
    title) of the parent file. Raises CredentialsError (unsupported format, damaged file)."""
    c2pa = _c2pa()
    signer = material.signer()
    try:
        with c2pa.Builder(manifest, context=_context(c2pa)) as builder:
            if ingredient is not None:
                parent, parent_mime, parent_title = ingredient
                builder.add_ingredient({"title": parent_title, "relationship": "parentOf", "label": "original"}, parent_mime, io.BytesIO(parent))
            out = io.BytesIO()
            builder.sign(signer, mime, io.BytesIO(data), out)
            return out.getvalue()
    except c2pa.C2paError as exc:
        raise CredentialsError(f"cannot sign a {mime} file: {str(exc)[:200]}") from None
    finally:
        signer.close()


def sign_files(
    files: list[Any], provenance: Provenance, config: C2paConfig, private_key_pem: str | None = None, installation_dir: Path | None = None
) -> list[Any]:
    """Sign the ``imaging.postprocess.RenditionFile`` list in place on disk: the original
    first (``c2pa.created``), then each rendition with the signed original as ingredient.
    Returns the files with their new byte counts and SHA-256. Raises ConfigError,
    CredentialsError."""

    material = SignerMaterial.from_config(config, private_key_pem, installation_dir)
    original = next((f for f in files if f.name == "original"), None)
    signed_original: tuple[bytes, str, str] | None = None
    out = []
    ordered: list[Any] = ([original] if original is not None else []) + [f for f in files if f is not original]
    for item in ordered:
        data, title = item.path.read_bytes(), str(item.path.name)
        mime = MIME[item.format]
        if item is original or signed_original is None or original is None:
            manifest = original_manifest(provenance, title, config.claim_generator)
            signed = sign_bytes(data, mime, manifest, material)
            if item is original:
                signed_original = (signed, mime, title)
        else:
            resized = (item.width, item.height) != (original.width, original.height)
            manifest = rendition_manifest(item.path.name, resized, item.format != original.format, config.claim_generator)
            signed = sign_bytes(data, mime, manifest, material, ingredient=signed_original)
        write_atomic(item.path, signed)
        out.append(replace(item, bytes=len(signed), checksum=hashlib.sha256(signed).hexdigest()))
    by_name = {f.name: f for f in out}
    return [by_name[f.name] for f in files]


@dataclass
class VerifyReport:
    """What ``verify_file`` found: ``state`` is c2pa's validation state (``Valid``,
    ``Trusted`` with configured trust anchors, ``Invalid``)."""

    path: Path
    state: str
    store: dict[str, Any]
    failures: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.state in ("Valid", "Trusted") and not self.failures

    @property
    def active(self) -> dict[str, Any]:
        return dict(self.store.get("manifests", {}).get(self.store.get("active_manifest", ""), {}))

    def actions(self, manifest: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for assertion in (manifest or self.active).get("assertions", []):
            if str(assertion.get("label", "")).startswith("c2pa.actions"):
                found += list(assertion.get("data", {}).get("actions", []))
        return found

    def generation(self) -> dict[str, Any]:
        """The ``com.content-pipeline.generation`` assertion of this file or its original."""
        manifests = self.store.get("manifests", {})
        for manifest in [self.active, *manifests.values()]:
            for assertion in manifest.get("assertions", []):
                if assertion.get("label") == GENERATION_LABEL:
                    return dict(assertion.get("data", {}))
        return {}

    def digital_source_types(self) -> list[str]:
        found = []
        for manifest in self.store.get("manifests", {}).values():
            for action in self.actions(manifest):
                if action.get("digitalSourceType"):
                    found.append(str(action["digitalSourceType"]))
        return found

    @property
    def trusted(self) -> bool:
        """The signer chains to a configured trust anchor (``c2pa.trust_anchors``)."""
        return self.state == "Trusted"

    def lines(self) -> list[str]:
        active = self.active
        signature = active.get("signature_info", {})
        generation = self.generation()
        lines = [
            f"{self.path}: {self.state}" + (f" ({', '.join(self.failures)})" if self.failures else ""),
            f"  signed by:  {signature.get('common_name') or signature.get('issuer') or '?'}"
            f" (issuer {signature.get('issuer', '?')}, {signature.get('alg', '?')})",
            f"  claim:      {', '.join(str(g.get('name')) for g in active.get('claim_generator_info', []))}",
            f"  actions:    {', '.join(str(a.get('action')) for a in self.actions())}",
            f"  source:     {', '.join(sorted(set(self.digital_source_types()))) or '-'}",
            f"  generator:  {generation.get('provider', '?')}/{generation.get('model', '?')}",
        ]
        if "prompt" in generation:
            lines.append(f"  prompt:     {str(generation['prompt'])[:200]}")
        for ingredient in active.get("ingredients", []):
            lines.append(f"  ingredient: {ingredient.get('title')} ({ingredient.get('relationship')})")
        if self.valid and not self.trusted:
            lines.append(f"  trust:      {UNTRUSTED}")
        return lines


def verify_file(path: Path, *, trust_anchors: Path | None = None) -> VerifyReport:
    """Read and validate the C2PA manifest store of ``path``.

    Raises CredentialsError when the file cannot be read, its format is not supported
    or it carries no manifest."""
    c2pa = _c2pa()
    mime = _SUFFIX_MIME.get(path.suffix.lower())
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CredentialsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        with c2pa.Reader(mime, io.BytesIO(data), context=_context(c2pa, trust_anchors)) as reader:
            store = json.loads(reader.json())
            state = reader.get_validation_state() or "Invalid"
            results = reader.get_validation_results() or {}
    except c2pa.C2paError as exc:
        text = str(exc)
        if "ManifestNotFound" in type(exc).__name__ or "not found" in text.lower():
            raise CredentialsError(f"{path}: no C2PA Content Credentials in this file") from None
        if mime is None and "type" in text.lower():
            raise CredentialsError(f"{path}: not a JPEG, PNG, WebP or AVIF file") from None
        # a manifest that cannot even be parsed (damaged signature, certificate, boxes): invalid
        return VerifyReport(path=path, state="Invalid", store={}, failures=[text.splitlines()[0][:200] if text else "unreadable"])
    failures = [str(item.get("code")) for item in results.get("activeManifest", {}).get("failure", [])]
    failures = [code for code in failures if code != "signingCredential.untrusted" or trust_anchors is not None]
    return VerifyReport(path=path, state=state, store=store, failures=failures)
