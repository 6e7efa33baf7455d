"""The preflight refuses guessable secrets by name, never echoing them; login files are private from their first byte."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from include.vyapar import settings
from include.vyapar.deploy.init import PreflightError, preflight, write_admin_login


def _fit() -> dict[str, str]:
    return {
        "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
    }


def test_generated_secrets_pass_the_preflight():
    for _ in range(50):
        preflight(_fit())
    rotation = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"  # Airflow's key rotation list
    preflight({**_fit(), "AIRFLOW__CORE__FERNET_KEY": rotation})


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("AIRFLOW_ADMIN_PASSWORD", " " * 16, "only whitespace"),
        ("POSTGRES_PASSWORD", "\t" * 14, "only whitespace"),
        ("POSTGRES_PASSWORD", "changeme12345", "well-known default"),
        ("AIRFLOW_ADMIN_PASSWORD", "Password2024!", "well-known default"),
        ("AIRFLOW__API_AUTH__JWT_SECRET", "x" * 64, "too predictable"),
        ("AIRFLOW__API_AUTH__JWT_SECRET", "abc1" * 20, "too predictable"),
        ("POSTGRES_PASSWORD", "Q" * 32, "too predictable"),
        ("AIRFLOW__CORE__FERNET_KEY", base64.urlsafe_b64encode(bytes(32)).decode(), "one byte repeated"),
        ("AIRFLOW__CORE__FERNET_KEY", base64.urlsafe_b64encode(b"\xff" * 32).decode(), "one byte repeated"),
        ("AIRFLOW__CORE__FERNET_KEY", f"{base64.urlsafe_b64encode(bytes(range(32))).decode()},{'A' * 43}=", "one byte repeated"),
    ],
)
def test_preflight_refuses_a_guessable_secret_naming_the_variable_not_the_value(variable, value, why):
    with pytest.raises(PreflightError) as refused:
        preflight({**_fit(), variable: value})
    message = str(refused.value)
    assert re.search(rf"^  {variable}: .*{why}", message, re.M), message
    assert value not in message
    assert message.count("\n  ") == 1, message  # only the weak one is named


def test_admin_login_file_is_never_readable_by_others(tmp_path, monkeypatch):
    """Even with umask 000, the file is 0640 from creation: no moment where another user could read it."""
    seen: list[int] = []  # the file's mode just before any chmod: what it was while the password sat in it
    real_chmod, real_fchmod = os.chmod, os.fchmod

    def chmod(path, mode, **kwargs):
        seen.append(os.stat(path).st_mode)
        real_chmod(path, mode, **kwargs)

    def fchmod(fd, mode):
        seen.append(os.fstat(fd).st_mode)
        real_fchmod(fd, mode)

    monkeypatch.setattr(os, "chmod", chmod)
    monkeypatch.setattr(os, "fchmod", fchmod)
    path = tmp_path / "airflow" / "passwords.json"
    (tmp_path / "airflow").mkdir()
    path.with_suffix(".tmp").write_text("{}")  # a leftover of a crashed init, world-readable
    old_umask = os.umask(0)
    try:
        password = secrets.token_urlsafe(18)
        write_admin_login(
            {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(path), "AIRFLOW_ADMIN_PASSWORD": password}
        )
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert all(stat.S_IMODE(mode) & 0o037 == 0 for mode in seen), [oct(m) for m in seen]
    assert json.loads(path.read_text()) == {"admin": password}


def test_bin_start_creates_the_local_login_file_private(tmp_path):
    """bin/start's own lines (run as written, umask 000): the file is 0600 before anything could read it."""
    script = (settings.REPO_ROOT / "bin" / "start").read_text()
    start = r'^if \[ ! -f "\$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" \]; then\n'
    block = re.search(start + r".*?^fi\n", script, re.M | re.S)
    assert block, "bin/start no longer writes the login file where this test looks"
    path, seen = tmp_path / "passwords.json", tmp_path / "modes"
    # A chmod after the write would come too late: record the mode each one finds.
    shim = f'chmod() {{ stat -c %a "${{@: -1}}" >> {seen}; command chmod "$@"; }}\n'
    env = {**os.environ, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(path)}
    subprocess.run(["bash", "-c", "umask 000\n" + shim + block.group(0)], env=env, check=True, timeout=60)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before_chmod = seen.read_text().split() if seen.exists() else []
    assert all(int(mode, 8) & 0o077 == 0 for mode in before_chmod), before_chmod
    assert set(json.loads(Path(path).read_text())) == {"admin"}
