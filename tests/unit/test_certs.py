"""TLS material for Prometheus <-> Alertmanager: the chain, the files, rotation and `certs check`."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import DNSName, IPAddress, PolicyBuilder, Store, VerificationError
from typer.testing import CliRunner

from minimarket.ops.tls import (
    ALL_FILES,
    CertStatus,
    TLSMaterialError,
    TLSMaterialExists,
    certificate_expiry,
    check_certificates,
    generate_tls_material,
    missing_files,
)
from minimarket.cli.certs import certs_app

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "observability" / "prometheus" / "tls" / "generate_certs.sh"
runner = CliRunner()


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(ext.get_values_for_type(x509.DNSName)), {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}


def ekus(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("tls")
    generate_tls_material(dest, days=90)
    return dest


# --------------------------------------------------------------------------- the chain


def test_writes_the_six_files(material: Path) -> None:
    assert sorted(p.name for p in material.iterdir()) == sorted(ALL_FILES)


def test_ca_is_a_constrained_signing_ca(material: Path) -> None:
    ca = load(material / "ca.crt")
    assert ca.issuer == ca.subject
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert (certificate_expiry(material / "ca.crt") - datetime.now(UTC)).days in (3649, 3650)


def test_alertmanager_certificate_verifies_as_a_server_for_each_san(material: Path) -> None:
    store = Store([load(material / "ca.crt")])
    leaf = load(material / "alertmanager.crt")
    for subject in (DNSName("alertmanager"), DNSName("localhost"), IPAddress(ipaddress.ip_address("127.0.0.1"))):
        chain = PolicyBuilder().store(store).build_server_verifier(subject).verify(leaf, [])
        assert chain[-1] == load(material / "ca.crt")
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store).build_server_verifier(DNSName("prometheus")).verify(leaf, [])


def test_prometheus_certificate_verifies_as_a_client(material: Path) -> None:
    store = Store([load(material / "ca.crt")])
    verified = PolicyBuilder().store(store).build_client_verifier().verify(load(material / "prometheus.crt"), [])
    assert verified.subjects is not None
    assert {str(getattr(s, "value", s)) for s in verified.subjects} >= {"prometheus", "localhost", "127.0.0.1"}
    # The compose health check runs amtool inside the Alertmanager container with alertmanager.crt.
    PolicyBuilder().store(store).build_client_verifier().verify(load(material / "alertmanager.crt"), [])


def test_leaves_are_signed_by_the_ca_with_the_right_sans_and_ekus(material: Path) -> None:
    ca = load(material / "ca.crt")
    am, prom = load(material / "alertmanager.crt"), load(material / "prometheus.crt")
    for leaf in (am, prom):
        leaf.verify_directly_issued_by(ca)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
        assert leaf.public_key().curve.name == "secp256r1"
    assert sans(am) == ({"alertmanager", "localhost"}, {"127.0.0.1"})
    assert sans(prom) == ({"prometheus", "localhost"}, {"127.0.0.1"})
    assert ekus(am) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert ekus(prom) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}


def test_validity_is_the_number_of_days_requested(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    generate_tls_material(tmp_path, days=17, ca_days=400)
    after = datetime.now(UTC)
    for name, days in (("alertmanager.crt", 17), ("prometheus.crt", 17), ("ca.crt", 400)):
        cert = load(tmp_path / name)
        assert before + timedelta(days=days) - timedelta(seconds=1) <= cert.not_valid_after_utc
        assert cert.not_valid_after_utc <= after + timedelta(days=days)
        assert cert.not_valid_before_utc <= before  # already valid, with a little clock slack
        assert certificate_expiry(tmp_path / name) == cert.not_valid_after_utc


def test_private_keys_are_0600_and_certificates_0644(material: Path) -> None:
    for name in ALL_FILES:
        assert mode(material / name) == (0o600 if name.endswith(".key") else 0o644), name


def test_modes_do_not_depend_on_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        generate_tls_material(tmp_path)
    finally:
        os.umask(old)
    assert mode(tmp_path / "ca.crt") == 0o644
    assert mode(tmp_path / "prometheus.key") == 0o600


def test_custom_hosts_replace_the_defaults(tmp_path: Path) -> None:
    generate_tls_material(tmp_path, hosts={"alertmanager": ["am.minimercado.local", "10.0.0.7"]})
    assert sans(load(tmp_path / "alertmanager.crt")) == ({"am.minimercado.local"}, {"10.0.0.7"})
    assert sans(load(tmp_path / "prometheus.crt")) == ({"prometheus", "localhost"}, {"127.0.0.1"})


@pytest.mark.parametrize("kwargs", [
    {"days": 0}, {"ca_days": 0}, {"days": 400, "ca_days": 100},
    {"hosts": {"grafana": ["grafana"]}}, {"hosts": {"alertmanager": []}},
])
def test_bad_parameters_are_refused_before_writing(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(TLSMaterialError):
        generate_tls_material(tmp_path / "tls", **kwargs)
    assert not (tmp_path / "tls").exists()


# --------------------------------------------------------------------------- rotation


def test_overwrite_is_refused_without_force_and_nothing_changes(tmp_path: Path) -> None:
    generate_tls_material(tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in ALL_FILES}
    with pytest.raises(TLSMaterialExists) as info:
        generate_tls_material(tmp_path)
    assert {p.name for p in info.value.paths} == {"alertmanager.crt", "alertmanager.key",
                                                  "prometheus.crt", "prometheus.key"}
    assert isinstance(info.value, FileExistsError)
    assert {name: (tmp_path / name).read_bytes() for name in ALL_FILES} == before
    assert not list(tmp_path.glob("backup_*"))


def test_force_backs_up_the_old_files_and_keeps_the_ca(tmp_path: Path) -> None:
    generate_tls_material(tmp_path, days=30)
    before = {name: (tmp_path / name).read_bytes() for name in ALL_FILES}
    written = generate_tls_material(tmp_path, days=60, overwrite=True)
    assert sorted(p.name for p in written) == ["alertmanager.crt", "alertmanager.key",
                                               "prometheus.crt", "prometheus.key"]
    (backup,) = tmp_path.glob("backup_*")
    assert len(backup.name) == len("backup_YYYYMMDD_HHMMSS")
    datetime.strptime(backup.name, "backup_%Y%m%d_%H%M%S")
    assert {p.name: p.read_bytes() for p in backup.iterdir()} == before
    assert mode(backup) == 0o700 and mode(backup / "ca.key") == 0o600
    # The CA stays, the leaves are new and still chain to it: both sides keep trusting each other.
    assert (tmp_path / "ca.crt").read_bytes() == before["ca.crt"]
    assert (tmp_path / "ca.key").read_bytes() == before["ca.key"]
    assert (tmp_path / "prometheus.key").read_bytes() != before["prometheus.key"]
    ca = load(tmp_path / "ca.crt")
    for name in ("alertmanager.crt", "prometheus.crt"):
        load(tmp_path / name).verify_directly_issued_by(ca)
        assert (certificate_expiry(tmp_path / name) - datetime.now(UTC)).days in (59, 60)


def test_renew_ca_replaces_the_ca(tmp_path: Path) -> None:
    generate_tls_material(tmp_path)
    old_ca = (tmp_path / "ca.crt").read_bytes()
    written = generate_tls_material(tmp_path, overwrite=True, renew_ca=True)
    assert {p.name for p in written} == set(ALL_FILES)
    assert (tmp_path / "ca.crt").read_bytes() != old_ca
    load(tmp_path / "prometheus.crt").verify_directly_issued_by(load(tmp_path / "ca.crt"))


def test_renew_ca_without_force_is_refused(tmp_path: Path) -> None:
    generate_tls_material(tmp_path)
    with pytest.raises(TLSMaterialExists):
        generate_tls_material(tmp_path, renew_ca=True)


def test_a_ca_that_would_expire_before_the_new_leaves_is_renewed(tmp_path: Path) -> None:
    generate_tls_material(tmp_path, days=10, ca_days=20)
    old_ca = (tmp_path / "ca.crt").read_bytes()
    written = generate_tls_material(tmp_path, days=30, overwrite=True)
    assert tmp_path / "ca.crt" in written
    assert (tmp_path / "ca.crt").read_bytes() != old_ca


def test_an_existing_ca_alone_signs_new_leaves_without_force(tmp_path: Path) -> None:
    generate_tls_material(tmp_path)
    for name in ("alertmanager.crt", "alertmanager.key", "prometheus.crt", "prometheus.key"):
        (tmp_path / name).unlink()
    written = generate_tls_material(tmp_path)
    assert tmp_path / "ca.crt" not in written
    load(tmp_path / "alertmanager.crt").verify_directly_issued_by(load(tmp_path / "ca.crt"))


def test_a_failed_backup_leaves_no_half_backup_and_replaces_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import minimarket.ops.tls as certs

    generate_tls_material(tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in ALL_FILES}
    real_copy = shutil.copy2

    def copy2(src: Path, dst: Path) -> None:
        if Path(src).name == "prometheus.key":
            raise PermissionError(13, "Permission denied", str(src))
        real_copy(src, dst)

    monkeypatch.setattr(certs.shutil, "copy2", copy2)
    with pytest.raises(PermissionError):
        generate_tls_material(tmp_path, overwrite=True)
    assert not list(tmp_path.glob("backup_*"))
    assert {name: (tmp_path / name).read_bytes() for name in ALL_FILES} == before


def test_two_backups_in_the_same_second_do_not_collide(tmp_path: Path) -> None:
    generate_tls_material(tmp_path)
    generate_tls_material(tmp_path, overwrite=True)
    generate_tls_material(tmp_path, overwrite=True)
    assert len(list(tmp_path.glob("backup_*"))) == 2


# --------------------------------------------------------------------------- inspection


def test_check_certificates_reports_each_crt(material: Path) -> None:
    statuses = check_certificates(material, warn_days=30)
    assert [s.file.name for s in statuses] == ["alertmanager.crt", "ca.crt", "prometheus.crt"]
    by_name = {s.file.name: s for s in statuses}
    assert by_name["alertmanager.crt"].subject_cn == "alertmanager"
    assert by_name["prometheus.crt"].days_left == 90
    assert by_name["prometheus.crt"].not_after.tzinfo is not None
    assert all(isinstance(s, CertStatus) and s.ok and s.error is None for s in statuses)
    assert not any(s.ok for s in check_certificates(material, warn_days=91) if s.file.name != "ca.crt")


def test_check_sees_expiry_from_a_later_date(material: Path) -> None:
    later = datetime.now(UTC) + timedelta(days=100)
    prom = next(s for s in check_certificates(material, now=later) if s.file.name == "prometheus.crt")
    assert prom.days_left == -10 and not prom.ok


def test_check_flags_a_key_that_does_not_match_and_a_foreign_leaf(tmp_path: Path) -> None:
    generate_tls_material(tmp_path / "a")
    generate_tls_material(tmp_path / "b")
    (tmp_path / "a" / "prometheus.key").write_bytes((tmp_path / "b" / "prometheus.key").read_bytes())
    (tmp_path / "a" / "alertmanager.crt").write_bytes((tmp_path / "b" / "alertmanager.crt").read_bytes())
    (tmp_path / "a" / "alertmanager.key").write_bytes((tmp_path / "b" / "alertmanager.key").read_bytes())
    by_name = {s.file.name: s for s in check_certificates(tmp_path / "a")}
    assert "no corresponde" in by_name["prometheus.crt"].error
    assert "no está firmado por ca.crt" in by_name["alertmanager.crt"].error
    assert by_name["ca.crt"].ok


def test_check_survives_an_unreadable_certificate(tmp_path: Path) -> None:
    generate_tls_material(tmp_path)
    (tmp_path / "prometheus.crt").write_text("no es un certificado")
    prom = next(s for s in check_certificates(tmp_path) if s.file.name == "prometheus.crt")
    assert not prom.ok and prom.not_after is None and "ilegible" in prom.error


def test_check_skips_key_matching_when_the_key_belongs_to_the_service_user(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate_tls_material(tmp_path)
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.suffix == ".key":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert all(s.ok for s in check_certificates(tmp_path))
    assert runner.invoke(certs_app, ["check", "--dir", str(tmp_path)]).exit_code == 0
    # Rotating without being able to read the old keys fails cleanly: no half backup, nothing replaced.
    before = (tmp_path / "prometheus.crt").read_bytes()
    result = runner.invoke(certs_app, ["generate", "--dest", str(tmp_path), "--force"])
    assert result.exit_code == 1 and "Sin permiso" in result.output
    assert not list(tmp_path.glob("backup_*"))
    assert (tmp_path / "prometheus.crt").read_bytes() == before


def test_missing_files(tmp_path: Path) -> None:
    generate_tls_material(tmp_path)
    (tmp_path / "ca.key").unlink()  # may live offline: not needed at runtime
    assert missing_files(tmp_path) == []
    (tmp_path / "alertmanager.key").unlink()
    assert missing_files(tmp_path) == ["alertmanager.key"]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_key_owner_owns_the_leaf_keys_but_not_the_ca_key(tmp_path: Path) -> None:
    generate_tls_material(tmp_path, key_owner=(65534, 65534))
    for name in ("alertmanager.key", "prometheus.key"):
        st = (tmp_path / name).stat()
        assert (st.st_uid, st.st_gid, mode(tmp_path / name)) == (65534, 65534, 0o600), name
    assert (tmp_path / "ca.key").stat().st_uid == os.geteuid()
    assert (tmp_path / "ca.crt").stat().st_uid == os.geteuid()


# --------------------------------------------------------------------------- the CLI


def test_cli_check_is_0_for_fresh_certificates(material: Path) -> None:
    result = runner.invoke(certs_app, ["check", "--dir", str(material)])
    assert result.exit_code == 0, result.output
    assert "prometheus.crt" in result.stdout and "Días restantes" in result.stdout
    expiry = certificate_expiry(material / "prometheus.crt")
    assert f"{expiry:%d/%m/%Y}" in result.stdout


def test_cli_check_is_1_when_warn_days_exceeds_validity(material: Path) -> None:
    result = runner.invoke(certs_app, ["check", "--dir", str(material), "--warn-days", "100"])
    assert result.exit_code == 1, result.output
    assert "renovar" in result.stdout


def test_cli_check_is_1_when_a_file_is_missing(tmp_path: Path) -> None:
    generate_tls_material(tmp_path)
    (tmp_path / "alertmanager.crt").unlink()
    result = runner.invoke(certs_app, ["check", "--dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "Falta" in result.stdout and "alertmanager.crt" in result.stdout


def test_cli_check_is_1_for_an_empty_or_absent_directory(tmp_path: Path) -> None:
    assert runner.invoke(certs_app, ["check", "--dir", str(tmp_path)]).exit_code == 1
    assert runner.invoke(certs_app, ["check", "--dir", str(tmp_path / "no-existe")]).exit_code == 1


def test_cli_check_json_is_parseable(material: Path, tmp_path: Path) -> None:
    result = runner.invoke(certs_app, ["check", "--dir", str(material), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["missing"] == [] and report["warn_days"] == 30
    prom = next(c for c in report["certificates"] if c["file"] == "prometheus.crt")
    assert prom["cn"] == "prometheus" and prom["days_left"] == 90 and prom["ok"] is True
    assert datetime.fromisoformat(prom["not_after"]) == certificate_expiry(material / "prometheus.crt")

    result = runner.invoke(certs_app, ["check", "--dir", str(tmp_path), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["missing"] == ["ca.crt", "alertmanager.crt", "alertmanager.key",
                                                    "prometheus.crt", "prometheus.key"]


def test_cli_generate_then_refuse_then_force(tmp_path: Path) -> None:
    dest = tmp_path / "tls"
    result = runner.invoke(certs_app, ["generate", "--dest", str(dest), "--days", "45",
                                       "--host", "alertmanager=alertmanager,am.local,127.0.0.1"])
    assert result.exit_code == 0, result.output
    assert "CA nueva" in result.stdout and "prometheus.key" in result.stdout
    assert sans(load(dest / "alertmanager.crt")) == ({"alertmanager", "am.local"}, {"127.0.0.1"})
    assert check_certificates(dest)[0].days_left == 45

    result = runner.invoke(certs_app, ["generate", "--dest", str(dest)])
    assert result.exit_code == 1
    assert "--force" in result.output

    result = runner.invoke(certs_app, ["generate", "--dest", str(dest), "--force"])
    assert result.exit_code == 0, result.output
    assert "Se conservó la CA" in result.stdout and "backup_" in result.stdout
    assert len(list(dest.glob("backup_*"))) == 1

    result = runner.invoke(certs_app, ["generate", "--dest", str(dest), "--force", "--renew-ca"])
    assert result.exit_code == 0, result.output
    assert "CA nueva" in result.stdout


@pytest.mark.parametrize("args", [["--host", "alertmanager"], ["--host", "grafana=grafana"],
                                  ["--days", "0"], ["--days", "900", "--ca-days", "100"]])
def test_cli_generate_rejects_bad_options(tmp_path: Path, args: list[str]) -> None:
    result = runner.invoke(certs_app, ["generate", "--dest", str(tmp_path / "tls"), *args])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "tls").exists()


def test_cli_generate_key_owner(tmp_path: Path) -> None:
    result = runner.invoke(certs_app, ["generate", "--dest", str(tmp_path / "a"), "--key-owner", "no-existe-usuario"])
    assert result.exit_code == 2 and not (tmp_path / "a").exists()
    if os.geteuid() != 0:
        result = runner.invoke(certs_app, ["generate", "--dest", str(tmp_path / "b"), "--key-owner", "0"])
        assert result.exit_code == 1 and "sudo" in result.output
        assert not (tmp_path / "b" / "prometheus.key").exists()
        return
    result = runner.invoke(certs_app, ["generate", "--dest", str(tmp_path / "b"), "--key-owner", "65534"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b" / "prometheus.key").stat().st_uid == 65534
    assert "65534:65534" in result.stdout


# --------------------------------------------------------------------------- generate_certs.sh


def run_runbook_script(tmp_path: Path, dest: Path) -> subprocess.CompletedProcess:
    """Run a copy of observability/prometheus/tls/generate_certs.sh inside `dest` (never the repo's folder).

    `minimarket` on PATH is a shim running this checkout's `certs` app, so the script works
    before (and regardless of) its registration in cli.py.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "minimarket"
    shim.write_text('#!/bin/sh\n[ "$1" = certs ] && shift\n'
                    f'exec "{sys.executable}" -c "import sys; from minimarket.cli.certs import certs_app; '
                    'sys.exit(certs_app(prog_name=\'minimarket certs\'))" "$@"\n')
    shim.chmod(0o755)
    dest.mkdir(exist_ok=True)
    shutil.copy2(SCRIPT, dest / SCRIPT.name)
    return subprocess.run([str(dest / SCRIPT.name)], capture_output=True, text=True, timeout=60, check=False,
                          cwd=tmp_path, env={**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"})


def test_runbook_script_makes_material_that_check_accepts_and_keeps_the_ca(tmp_path: Path) -> None:
    dest = tmp_path / "tls"
    first = run_runbook_script(tmp_path, dest)
    assert first.returncode == 0, first.stdout + first.stderr
    assert missing_files(dest) == []
    assert all(s.ok for s in check_certificates(dest)), check_certificates(dest)
    ca = (dest / "ca.crt").read_bytes()
    for name in ("alertmanager.key", "prometheus.key", "ca.key"):
        assert mode(dest / name) == 0o600, name
    assert {ExtendedKeyUsageOID.SERVER_AUTH} <= ekus(load(dest / "alertmanager.crt"))
    assert ExtendedKeyUsageOID.CLIENT_AUTH in ekus(load(dest / "prometheus.crt"))
    assert "alertmanager" in sans(load(dest / "alertmanager.crt"))[0]

    second = run_runbook_script(tmp_path, dest)  # the runbook's rotation: same CA, new leaves
    assert second.returncode == 0, second.stdout + second.stderr
    assert (dest / "ca.crt").read_bytes() == ca
    assert all(s.ok for s in check_certificates(dest)), check_certificates(dest)


def test_script_is_executable_and_keys_are_git_ignored() -> None:
    assert os.access(SCRIPT, os.X_OK)
    ignore = (SCRIPT.parent / ".gitignore").read_text().splitlines()
    assert {"*.key", "*.crt", "backup_*/"} <= set(ignore)
