"""A self-signed certificate for the simulator's HTTPS mode, like a fresh PVE install has."""

from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
import os
import tempfile
from dataclasses import dataclass

__all__ = ["SelfSignedCert", "make_cert"]


@dataclass(frozen=True)
class SelfSignedCert:
    """Paths of a PEM certificate and key, and the certificate's SHA-256 fingerprint."""

    cert_file: str
    key_file: str
    fingerprint: str  # "AA:BB:..." as Proxmox shows it
    directory: str


def make_cert(common_name: str = "pvekit-sim", host: str = "127.0.0.1") -> SelfSignedCert:
    """Generate an EC key and a self-signed certificate valid for ``host`` and localhost.

    The certificate is its own CA (basicConstraints CA=true), so passing its file as
    ``verify=`` (a CA bundle) works with requests, and pinning its fingerprint works too.
    Files live in a private temporary directory (mode 0700).
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError as exc:
        raise ImportError(
            "the simulator's HTTPS mode needs the 'cryptography' package for its self-signed "
            "certificate: pip install 'pvekit[sim]' (or serve plain HTTP: https=False)",
            name="cryptography",
        ) from exc

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PVE Cluster Node"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = _dt.datetime.now(_dt.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName(common_name)]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    if host != "127.0.0.1":
        alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tempfile.mkdtemp(prefix="pvekit-sim-tls-")
    os.chmod(directory, 0o700)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    cert_file = os.path.join(directory, "pve-ssl.pem")
    key_file = os.path.join(directory, "pve-ssl.key")
    with open(cert_file, "wb") as fh:
        fh.write(cert_pem)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    return SelfSignedCert(cert_file, key_file, fingerprint, directory)
