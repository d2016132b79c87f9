"""The hub's TLS certificate: made on first start, pinned by the counters.

A hospital LAN has no certificate authority the counters trust, and patient
records cross it, so the hub serves HTTPS by default with a certificate of its
own: an ECDSA P-256 key and a self-signed certificate (10 years), made with
``cryptography`` the first time ``hub serve`` runs and kept beside the hub's
database (key 0600). A counter does not trust it because of who signed it but
because it is *the* certificate: ``hub add-device`` prints a pairing line with
the certificate's SHA-256 fingerprint and the counter checks that fingerprint
on every connection, before it sends its token (sync/pinning.py). A hospital
with its own certificate gives ``--ssl-certfile/--ssl-keyfile``; the pairing
line then carries that certificate's fingerprint.

The pairing line is one line a person can copy from the hub PC to a counter:

    opd-hub-pairing v1 C03 <hub token> sha256:<64 hex digits>
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

CERT_NAME = "hub-cert.pem"
KEY_NAME = "hub-key.pem"
PAIRING_TAG = "opd-hub-pairing"
PAIRING_VERSION = "v1"


def default_paths(db_path: Path) -> tuple[Path, Path]:
    """Where ``hub serve`` keeps the certificate it made: beside the hub's database."""
    folder = Path(db_path).resolve().parent
    return folder / CERT_NAME, folder / KEY_NAME


def _write_private(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def ensure_certificate(cert_path: Path, key_path: Path, *, hosts: list[str] | None = None) -> bool:
    """Make a key and a self-signed certificate unless both exist; True when made now."""
    if cert_path.exists() and key_path.exists():
        return False
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = socket.gethostname() or "opd-hub"
    alt: list[x509.GeneralName] = [x509.DNSName(name), x509.DNSName("localhost"),
                                   x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    for h in hosts or []:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            if h and h != name:
                alt.append(x509.DNSName(h))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"opd-fallback LAN hub {name}"[:64])])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()), 0o600)
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return True


def fingerprint_of_der(der: bytes) -> str:
    return "sha256:" + hashlib.sha256(der).hexdigest()


def fingerprint(cert_path: Path) -> str:
    """``sha256:<hex>`` of the certificate (its DER form), as counters pin it."""
    import ssl

    der = ssl.PEM_cert_to_DER_cert(Path(cert_path).read_text())
    return fingerprint_of_der(der)


@dataclass(frozen=True)
class Pairing:
    device_id: str
    token: str
    fingerprint: str | None  # None: a hub on plain HTTP (--insecure-http)

    def line(self) -> str:
        return f"{PAIRING_TAG} {PAIRING_VERSION} {self.device_id} {self.token} {self.fingerprint or 'sha256:none'}"


def parse_pairing(line: str) -> Pairing:
    """A pairing line back; ValueError with one sentence when it is not one."""
    parts = (line or "").split()
    if len(parts) != 5 or parts[0] != PAIRING_TAG:
        raise ValueError("the pairing line must be the one line 'hub add-device' printed: "
                         f"{PAIRING_TAG} {PAIRING_VERSION} C03 TOKEN sha256:...")
    if parts[1] != PAIRING_VERSION:
        raise ValueError(f"pairing line version {parts[1]} is not known here (this counter reads {PAIRING_VERSION})")
    fp = parts[4].lower()
    if fp == "sha256:none":
        return Pairing(parts[2].upper(), parts[3], None)
    hexpart = fp.removeprefix("sha256:")
    if not fp.startswith("sha256:") or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ValueError("the pairing line's fingerprint must be sha256: and 64 hex digits; copy the whole line again")
    return Pairing(parts[2].upper(), parts[3], fp)
