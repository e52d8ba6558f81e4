"""The sandbox's TLS: a certificate authority made when it starts and the API server's
certificate for 127.0.0.1, signed by it.

Kubernetes clients send credentials only over TLS (client-go merges a kubeconfig's token
or client certificate into its configuration only for an https server), so the API is
served over https, as kind and minikube serve theirs. The CA's certificate goes into every
kubeconfig the sandbox writes (`certificate-authority-data`); the keys live in the state
dir's `pki/` (mode 0700) for the sandbox's life and are never reused by another sandbox.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
SKEW = datetime.timedelta(hours=1)
"""Certificates are valid from an hour ago: a client's clock a little behind still accepts."""
SERVER_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")


@dataclass(frozen=True)
class Pki:
    """The CA's certificate (PEM) and the server's certificate and key files."""

    ca_pem: bytes
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """The API server's TLS context."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client's TLS context that trusts this sandbox's CA only."""
        return ssl.create_default_context(cadata=self.ca_pem.decode())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _private(path: Path, data: bytes) -> None:
    """Write `data` to a file only its owner can read, from its creation on."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)


def create(directory: Path, address: str = "127.0.0.1") -> Pki:
    """A new CA and a server certificate for `address` (and the kubernetes service names),
    written into `directory` (created mode 0700)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("kubesandbox-ca")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(address))]
    names += [x509.DNSName(n) for n in SERVER_NAMES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("kubesandbox-apiserver"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem)
    cert_file, key_file = directory / "apiserver.crt", directory / "apiserver.key"
    _private(cert_file, cert.public_bytes(pem) + ca_pem)
    _private(
        key_file,
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    return Pki(ca_pem, cert_file, key_file)
