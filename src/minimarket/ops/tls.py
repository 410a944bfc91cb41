"""TLS material for Prometheus <-> Alertmanager (mutual TLS), made with `cryptography`.

One private CA signs two leaf certificates:

* ``alertmanager.crt/.key``: server certificate (EKU serverAuth) that Alertmanager presents,
  plus clientAuth because the compose health check runs ``amtool`` inside the Alertmanager
  container with this pair (observability/alertmanager/amtool-http.yml);
* ``prometheus.crt/.key``: client certificate (EKU clientAuth, plus serverAuth so the same pair
  can protect Prometheus' own web endpoint) that Prometheus presents to Alertmanager.

Both sides trust ``ca.crt``. Regenerating the leaves keeps the CA (unless it is expiring or
``renew_ca=True``), so a host that only has an old copy of ``ca.crt`` still trusts the new
certificates. Files are written only after everything was generated in memory: private keys
with mode 0600, certificates 0644. Existing files are never replaced silently: ``overwrite=True``
copies them first into ``backup_YYYYMMDD_HHMMSS/`` (runbook PB4, step 2).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT, CA_KEY = "ca.crt", "ca.key"
LEAVES = ("alertmanager", "prometheus")
DEFAULT_HOSTS: dict[str, list[str]] = {
    "alertmanager": ["alertmanager", "localhost", "127.0.0.1"],
    "prometheus": ["prometheus", "localhost", "127.0.0.1"],
}
# What Prometheus and Alertmanager need at runtime (ca.key may live offline).
REQUIRED_FILES = (CA_CERT, "alertmanager.crt", "alertmanager.key", "prometheus.crt", "prometheus.key")
ALL_FILES = (CA_CERT, CA_KEY, "alertmanager.crt", "alertmanager.key", "prometheus.crt", "prometheus.key")
ORGANIZATION = "Minimarket"
CA_COMMON_NAME = "Minimarket Observability CA"
KEY_MODE, CERT_MODE, BACKUP_DIR_MODE = 0o600, 0o644, 0o700
# Backdating absorbs small clock differences between the host that signs and the ones that verify.
CLOCK_SKEW = timedelta(minutes=5)
_EKUS = {
    "alertmanager": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    "prometheus": [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
}


class TLSMaterialError(ValueError):
    """The TLS material cannot be generated as asked; the message (for operators, in Spanish) says why."""


class TLSMaterialExists(TLSMaterialError, FileExistsError):  # noqa: N818 - reads better at call sites
    """Generating would replace existing files and overwrite=False."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        super().__init__("ya existen: " + ", ".join(str(p) for p in paths))


@dataclass(frozen=True)
class CertStatus:
    """What `check_certificates` found in one ``*.crt`` file."""

    file: Path
    subject_cn: str | None
    not_after: datetime | None  # aware, UTC; None when the file could not be read
    days_left: int | None  # calendar days (UTC) until not_after: 0 on the day it expires, negative after
    ok: bool  # readable, consistent and at least warn_days days left
    error: str | None = None  # why it is unusable (unreadable, key mismatch, not signed by ca.crt)


# --------------------------------------------------------------------------- generation


def _new_key() -> ec.EllipticCurvePrivateKey:
    # EC P-256: as strong as RSA-3072, keys and handshakes are small and fast, and Go's crypto/tls
    # (Prometheus, Alertmanager) and OpenSSL/curl all support it.
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(entries: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(entry)))
        except ValueError:
            names.append(x509.DNSName(entry.lower()))
    if not names:
        raise TLSMaterialError("un certificado necesita al menos un nombre alternativo (SAN)")
    return x509.SubjectAlternativeName(names)


def _make_ca(now: datetime, days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    name = _name(CA_COMMON_NAME)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(common_name: str, sans: list[str], ekus: list[x509.ObjectIdentifier], now: datetime, days: int,
               ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey | object,
               ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    try:
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:  # a CA made elsewhere may lack it
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_cert.public_key())  # type: ignore[arg-type]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        .add_extension(_san(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert, key


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: object) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                             serialization.NoEncryption())


def _public_bytes(public_key: object) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def _usable_ca(dest: Path, leaf_end: datetime) -> tuple[x509.Certificate, object] | None:
    """The existing CA in `dest` if it can sign leaves valid until `leaf_end`, else None."""
    cert_path, key_path = dest / CA_CERT, dest / CA_KEY
    if not (cert_path.is_file() and key_path.is_file()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (ValueError, TypeError, x509.ExtensionNotFound):
        return None
    if not constraints.ca or _public_bytes(key.public_key()) != _public_bytes(cert.public_key()):
        return None
    now = datetime.now(UTC)
    if cert.not_valid_before_utc > now or cert.not_valid_after_utc < leaf_end:
        return None  # not yet valid, expired, or would expire before the new leaves
    return cert, key


def _backup_dir(dest: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    candidate = dest / f"backup_{stamp}"
    n = 1
    while candidate.exists():
        candidate = dest / f"backup_{stamp}_{n}"
        n += 1
    return candidate


def _write_all(files: dict[Path, tuple[bytes, int, tuple[int, int] | None]]) -> None:
    """Write every file to a temporary name first, then rename them all into place."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, (data, mode, owner) in files.items():
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            try:
                if owner is not None:
                    os.fchown(fd, *owner)
                os.fchmod(fd, mode)  # the umask must not loosen nor tighten the intended mode
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            staged.append((tmp, path))
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def _parse_hosts(hosts: Mapping[str, list[str]] | None) -> dict[str, list[str]]:
    merged = {name: list(sans) for name, sans in DEFAULT_HOSTS.items()}
    for name, sans in (hosts or {}).items():
        if name not in LEAVES:
            raise TLSMaterialError(f"certificado desconocido '{name}'; usá uno de: {', '.join(LEAVES)}")
        merged[name] = list(sans)
    return merged


def generate_tls_material(dest: Path, *, days: int = 825, ca_days: int = 3650,
                          hosts: dict[str, list[str]] | None = None, overwrite: bool = False,
                          renew_ca: bool = False, key_owner: tuple[int, int] | None = None) -> list[Path]:
    """Create (or renew) the CA and the Alertmanager/Prometheus certificates in `dest`.

    `days` is the validity of the leaf certificates, `ca_days` that of a new CA. `hosts`
    replaces the default subject alternative names of a leaf (``{"alertmanager": [...]}``;
    IP addresses are recognised). An existing CA is kept unless `renew_ca` is set or it cannot
    sign for `days` more days (missing key, expired, or expiring before the new leaves).
    Existing files are replaced only with `overwrite=True`, after being copied into
    ``dest/backup_YYYYMMDD_HHMMSS/``; otherwise TLSMaterialExists is raised and nothing changes.
    `key_owner` (uid, gid) owns alertmanager.key and prometheus.key, for services running as
    another user (65534 in the official images); ca.key always stays with the caller.
    Returns the paths written (ca.crt/ca.key are absent from it when the CA was kept).
    """
    if days < 1:
        raise TLSMaterialError("la validez (days) debe ser de al menos 1 día")
    if ca_days < 1:
        raise TLSMaterialError("la validez de la CA (ca_days) debe ser de al menos 1 día")
    sans = _parse_hosts(hosts)
    for name in LEAVES:
        _san(sans[name])  # validate before touching anything
    dest = Path(dest)
    now = datetime.now(UTC)
    leaf_end = now + timedelta(days=days)

    existing_ca = None if renew_ca else _usable_ca(dest, leaf_end)
    if existing_ca is None and ca_days < days:
        raise TLSMaterialError(f"la CA ({ca_days} días) no puede vencer antes que los certificados que firma "
                               f"({days} días)")

    targets = [dest / f"{leaf}{ext}" for leaf in LEAVES for ext in (".crt", ".key")]
    if existing_ca is None:
        targets = [dest / CA_CERT, dest / CA_KEY, *targets]
    clashes = [p for p in targets if p.exists()]
    if clashes and not overwrite:
        raise TLSMaterialExists(clashes)

    if existing_ca is None:
        ca_cert, ca_key = _make_ca(now, ca_days)
    else:
        ca_cert, ca_key = existing_ca
    files: dict[Path, tuple[bytes, int, tuple[int, int] | None]] = {}
    if existing_ca is None:
        files[dest / CA_CERT] = (_cert_pem(ca_cert), CERT_MODE, None)
        files[dest / CA_KEY] = (_key_pem(ca_key), KEY_MODE, None)
    for leaf in LEAVES:
        cert, key = _make_leaf(leaf, sans[leaf], _EKUS[leaf], now, days, ca_cert, ca_key)
        files[dest / f"{leaf}.crt"] = (_cert_pem(cert), CERT_MODE, None)
        files[dest / f"{leaf}.key"] = (_key_pem(key), KEY_MODE, key_owner)

    dest.mkdir(parents=True, exist_ok=True)
    if overwrite:
        _back_up_present(dest)
    _write_all(files)
    return list(files)


def _back_up_present(dest: Path) -> None:
    """Copy the files about to be replaced into dest/backup_YYYYMMDD_HHMMSS/ (all or none)."""
    present = [dest / name for name in ALL_FILES if (dest / name).exists()]
    if not present:
        return
    backup = _backup_dir(dest)
    backup.mkdir(mode=BACKUP_DIR_MODE)
    os.chmod(backup, BACKUP_DIR_MODE)
    try:
        for path in present:
            shutil.copy2(path, backup / path.name)  # keeps 0600 on the old keys
    except OSError:
        shutil.rmtree(backup, ignore_errors=True)  # no half backup; nothing was replaced yet
        raise


def last_backup(dest: Path) -> Path | None:
    """The most recent ``backup_*`` directory in `dest`, if any."""
    backups = sorted((p for p in Path(dest).glob("backup_*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return backups[-1] if backups else None


# --------------------------------------------------------------------------- inspection


def certificate_expiry(path: Path) -> datetime:
    """The notAfter of the PEM certificate at `path`, as an aware UTC datetime."""
    return x509.load_pem_x509_certificate(Path(path).read_bytes()).not_valid_after_utc


def _common_name(cert: x509.Certificate) -> str | None:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


def _consistency_problem(path: Path, cert: x509.Certificate, ca: x509.Certificate | None) -> str | None:
    key_path = path.with_suffix(".key")
    if key_path.is_file():
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except PermissionError:
            key = None  # owned by the service user (--key-owner): fine, just not ours to compare
        except (OSError, ValueError, TypeError) as exc:
            return f"no se puede leer {key_path.name}: {exc}"
    else:
        key = None
    if key is not None:
        if _public_bytes(key.public_key()) != _public_bytes(cert.public_key()):
            return f"{key_path.name} no corresponde a {path.name}"
    if ca is not None and path.name != CA_CERT:
        try:
            cert.verify_directly_issued_by(ca)
        except Exception:  # noqa: BLE001 - InvalidSignature, ValueError (other issuer), TypeError (key type)
            return f"no está firmado por {CA_CERT}"
    return None


def check_certificates(directory: Path, *, warn_days: int = 30, now: datetime | None = None) -> list[CertStatus]:
    """Inspect every ``*.crt`` in `directory` (not its backups), sorted by name.

    A certificate is ok when it parses, its ``.key`` (if present) matches it, a leaf is signed
    by the ``ca.crt`` next to it (if present), it has not expired and `days_left >= warn_days`.
    """
    directory = Path(directory)
    now = now or datetime.now(UTC)
    ca: x509.Certificate | None = None
    try:
        ca = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
    except (OSError, ValueError):
        ca = None
    statuses: list[CertStatus] = []
    for path in sorted(directory.glob("*.crt")):
        if not path.is_file():
            continue
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as exc:
            statuses.append(CertStatus(file=path, subject_cn=None, not_after=None, days_left=None, ok=False,
                                       error=f"certificado ilegible: {exc}"))
            continue
        not_after = cert.not_valid_after_utc
        # Calendar days (UTC) until the expiry date: a certificate made today for 825 days shows 825.
        days_left = (not_after.date() - now.astimezone(UTC).date()).days
        problem = _consistency_problem(path, cert, ca)
        ok = problem is None and not_after > now and days_left >= warn_days
        statuses.append(CertStatus(file=path, subject_cn=_common_name(cert), not_after=not_after,
                                   days_left=days_left, ok=ok, error=problem))
    return statuses


def missing_files(directory: Path) -> list[str]:
    """Which of the files Prometheus and Alertmanager need are absent from `directory`."""
    return [name for name in REQUIRED_FILES if not (Path(directory) / name).is_file()]

