"""The per-installation C2PA signer: made on first use when no ``c2pa.certificate`` is configured.

C2PA Content Credentials are on by default (``c2pa.enabled``), so every installation
needs a signer. Without a configured certificate, the first signing makes one under
``<output_dir>/credentials/c2pa/`` (``output/`` is git-ignored): a root CA and an
end-entity signing certificate, each with its own EC P-256 key, made with
``cryptography`` (https://cryptography.io/en/latest/x509/reference/). c2pa-rs rejects
a self-signed end-entity certificate, so the signer is issued by a root, with what
the C2PA certificate profile asks of a signer (C2PA 2.2 §14.5.1,
https://spec.c2pa.org/specifications/specifications/2.2/specs/C2PA_Specification.html#_certificate_profile):
not a CA, key usage digitalSignature, extended key usage id-kp-emailProtection,
subject and authority key identifiers. The root's key is discarded once the signer is
issued. Validators report such a signer as untrusted: ``content-pipeline doctor`` and
``content-pipeline verify`` say so and how to configure a trusted one.

Files: ``signer-chain.pem`` (signer then root), ``signer.key`` (PKCS#8 PEM, mode
0600), ``root.pem``. Validity: 10 years (3,650 days). Made in a temporary folder and
renamed into place, so concurrent first uses agree on one chain.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

#: how long the installation's root and signer are valid (days)
VALIDITY_DAYS = 3650
ORGANIZATION = "content-pipeline installation (self-signed, untrusted)"


@dataclass(frozen=True)
class InstallationChain:
    """The PEM files of the installation's signer: ``certificate`` (signer then root),
    ``private_key`` (the signer's key) and ``root``."""

    certificate: Path
    private_key: Path
    root: Path


def chain_files(folder: Path) -> InstallationChain:
    """Where the chain lives in ``folder`` (made or not)."""
    return InstallationChain(folder / "signer-chain.pem", folder / "signer.key", folder / "root.pem")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)])


def _usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signer,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signer,
        crl_sign=not signer,
        encipher_only=False,
        decipher_only=False,
    )


def _write_chain(folder: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=VALIDITY_DAYS)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("content-pipeline installation root")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(signer=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("content-pipeline installation signer"))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signer=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = chain_files(folder)
    files.certificate.write_bytes(leaf.public_bytes(pem) + root.public_bytes(pem))
    descriptor = os.open(files.private_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    files.root.write_bytes(root.public_bytes(pem))


def installation_chain(folder: Path) -> InstallationChain:
    """The chain in ``folder``, made on first use (see the module doc).

    Raises OSError when ``folder``'s parent cannot be written."""
    files = chain_files(folder)
    if files.certificate.is_file() and files.private_key.is_file():
        return files
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".c2pa-", dir=folder.parent))
    try:
        os.chmod(staging, 0o700)
        _write_chain(staging)
        try:
            os.rename(staging, folder)  # atomic; fails when another process made it first
        except OSError:
            if not (files.certificate.is_file() and files.private_key.is_file()):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return files
