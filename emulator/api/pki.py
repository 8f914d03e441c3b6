"""The cluster's certificates, made by ``up`` as kubeadm makes them: a CA, the API server's
serving certificate and the admin's client certificate (``O=system:masters``).

Written with the ``cryptography`` library (kubeadm uses Go's crypto/x509; openssl's command
line would need its config file templated). Keys are ECDSA P-256: fast to generate, which
keeps ``up`` seconds-fast, and accepted by kubectl and the Python client. Every file is in the
cluster's run directory, root-only, and goes with it.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
ADMIN_USER = "kubernetes-admin"
ADMIN_GROUP = "system:masters"


@dataclass(frozen=True)
class Paths:
    """Where one cluster's certificates and keys live (PEM)."""

    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.root / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.root / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.root / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.root / "admin.key"


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _cert(subject: x509.Name, key, issuer: x509.Name, issuer_key, *, ca: bool,
          usage: list | None = None, sans: list | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca,
                                            key_encipherment=False, content_commitment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True))
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make(root: Path, cluster: str, addresses: list[str]) -> Paths:
    """Make the CA, the serving certificate (for ``localhost``, ``kubernetes.default.svc`` and
    ``addresses``) and the admin's client certificate under ``root``."""
    paths = Paths(root)
    ca_key = _key()
    ca_name = _name(f"k8semu-{cluster}-ca")
    ca = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           "kubernetes.default.svc.cluster.local"]
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    server_key, admin_key = _key(), _key()
    server = _cert(_name("kube-apiserver"), server_key, ca_name, ca_key, ca=False,
                   usage=[ExtendedKeyUsageOID.SERVER_AUTH], sans=sans)
    admin = _cert(_name(ADMIN_USER, ADMIN_GROUP), admin_key, ca_name, ca_key, ca=False,
                  usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    _write(paths.ca, ca.public_bytes(serialization.Encoding.PEM))
    _write(paths.server_cert, server.public_bytes(serialization.Encoding.PEM))
    _write(paths.server_key, _pem_key(server_key))
    _write(paths.admin_cert, admin.public_bytes(serialization.Encoding.PEM))
    _write(paths.admin_key, _pem_key(admin_key))
    return paths


def user_of(peercert: dict | None) -> tuple[str, list[str]] | None:
    """The user and groups a verified client certificate names (CN and O, as the API server
    reads them), or None without one."""
    if not peercert:
        return None
    cn, groups = "", []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                groups.append(value)
    return (cn, groups) if cn else None
