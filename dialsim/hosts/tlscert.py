"""The mail host's TLS certificate for STLS (RFC 2595) and STARTTLS (RFC 3207).

Scope: load the certificate and key named by the operator, or keep a
self-signed one in the maildir root (``.dialsim-tls-cert.pem`` and
``.dialsim-tls-key.pem``, mode 0600; dot-names so no user's Maildir can
clash), made once and reused: with the ``cryptography`` package when it is
installed, else with the ``openssl`` command.  The certificate names
``localhost``, this host's name, the mail domain with its ``pop.`` and
``mail.`` hosts, 127.0.0.1 and ::1, and is valid for ten years.  A client
that checks certificates is given the certificate file to trust (fetchmail's
``sslcertfile``, mpop's and msmtp's ``tls_trust_file``).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CERT_NAME", "KEY_NAME", "Certificate", "TlsSetupError", "server_context"]

CERT_NAME = ".dialsim-tls-cert.pem"
KEY_NAME = ".dialsim-tls-key.pem"
_DAYS = 3650


class TlsSetupError(Exception):
    """No usable certificate (one-line reason)."""


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    made_with: str  # "given", "existing", "cryptography" or "openssl"


def _names(domain: str) -> tuple[list[str], list[str]]:
    dns = ["localhost", socket.gethostname(), domain, f"pop.{domain}", f"mail.{domain}"]
    return list(dict.fromkeys(d for d in dns if d)), ["127.0.0.1", "::1"]


def _with_cryptography(cert: Path, key: Path, domain: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    dns, ips = _names(domain)
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"mail.{domain}")])
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    key.write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))  # fmt: skip
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _with_openssl(cert: Path, key: Path, domain: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsSetupError("no certificate given, and neither cryptography nor openssl to make one")
    dns, ips = _names(domain)
    alt = ",".join([f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips])
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", str(_DAYS), "-subj", f"/CN=mail.{domain}",
         "-addext", f"subjectAltName={alt}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def self_signed(root: Path, domain: str) -> Certificate:
    """The self-signed certificate kept in ``root``, made on first use."""
    cert, key = root / CERT_NAME, root / KEY_NAME
    if cert.is_file() and key.is_file():
        return Certificate(cert, key, "existing")
    with tempfile.TemporaryDirectory(dir=root, prefix=".dialsim-tls-") as tmp:
        tcert, tkey = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        os.close(os.open(tkey, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            _with_cryptography(tcert, tkey, domain)
            how = "cryptography"
        except ImportError:
            _with_openssl(tcert, tkey, domain)
            how = "openssl"
        except (OSError, subprocess.SubprocessError) as e:
            raise TlsSetupError(f"cannot make a self-signed certificate: {e}") from None
        os.chmod(tkey, 0o600)
        os.replace(tkey, key)
        os.replace(tcert, cert)
    return Certificate(cert, key, how)


def server_context(certificate: Certificate) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or later) with the certificate loaded."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certificate.cert, certificate.key)
    except (OSError, ssl.SSLError) as e:
        raise TlsSetupError(f"{certificate.cert}: cannot load certificate: {e}") from None
    return context
