"""The cluster's certificate authority and member certificates (Python `cryptography`).

`hactl cert init --dir DIR` makes the CA (ca.pem, ca.key) and a bootstrap admin token
(admin.token, and its hash for the members' configs); `hactl cert issue NAME --dir DIR --addr
IP ...` makes NAME.pem and NAME.key: a certificate whose common name is the member's name
(how the others recognise it: a heartbeat is accepted only from the member its certificate
names) and whose subject alternative names are its addresses (how clients check they reached
it). Keys are written 0600; haclusterd refuses key and secret files that others can read.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import secrets
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
MEMBER_DAYS = 825  # what browsers accept for server certificates; renew with `cert issue`
TOKEN_BYTES = 32  # 256 bits


class CertError(Exception):
    pass


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hacluster"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def new_token() -> str:
    return "hat_" + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the cluster stores of a token: a random 256-bit secret needs no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def init(directory: str | Path, cluster: str = "hacluster") -> tuple[Path, Path, str]:
    """A new CA in directory, and a bootstrap admin token (admin.token, 0600; admin.token.sha256
    for the members' configs). Refuses to overwrite an existing CA."""
    d = Path(directory)
    if (d / "ca.key").exists():
        raise CertError(f"{d / 'ca.key'} exists: this directory already holds a CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(f"{cluster} CA")).issuer_name(_name(f"{cluster} CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write(d / "ca.key", _key_pem(key), 0o600)
    _write(d / "ca.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    token = new_token()
    _write(d / "admin.token", (token + "\n").encode(), 0o600)
    _write(d / "admin.token.sha256", (token_hash(token) + "\n").encode(), 0o644)
    return d / "ca.pem", d / "ca.key", token


def issue(directory: str | Path, name: str, addresses: list[str],
          days: int = MEMBER_DAYS) -> tuple[Path, Path]:
    """NAME.pem and NAME.key, signed by the CA in directory, for a member reachable at
    addresses (IPs or DNS names). Good for serving (TLS server) and for calling other
    members (TLS client)."""
    d = Path(directory)
    try:
        ca_key = serialization.load_pem_private_key((d / "ca.key").read_bytes(), None)
        ca = x509.load_pem_x509_certificate((d / "ca.pem").read_bytes())
    except (OSError, ValueError) as exc:
        raise CertError(f"no usable CA in {d} (run `hactl cert init --dir {d}`): {exc}") from exc
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{d / 'ca.key'} is not an EC key made by hactl cert init")
    sans: list[x509.GeneralName] = [x509.DNSName(name)]
    for a in addresses:
        host = a.rsplit(":", 1)[0] if a.count(":") == 1 else a  # ip:port -> ip
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(name)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(sans))),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write(d / f"{name}.key", _key_pem(key), 0o600)
    _write(d / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return d / f"{name}.pem", d / f"{name}.key"


def private_file_error(path: str | Path, what: str) -> str | None:
    """Why a key or secret file must not be used: others (not owner, not group) may read
    or write it. None if it is fine."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"{what} {path}: cannot read it: {exc.strerror}"
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        return (f"{what} {path} is readable by others (mode {stat.S_IMODE(mode):04o}): "
                f"chmod 0600 (or 0640 with group hacluster)")
    return None


def common_name(pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(pem)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""
