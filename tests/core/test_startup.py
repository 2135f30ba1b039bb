"""A bad setting stops the process with a non-zero exit and one line naming it."""

import os
import subprocess
import sys

import pytest

from core.auth import Authenticator
from core.settings import load_settings

PRODUCTION = {"VIGIL_MODE": "production", "VIGIL_JWT_SECRET": "s" * 64}


def vigil(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "setting", "cause"),
    [
        ({"VIGIL_DATABASE_URL": "not a url"}, "VIGIL_DATABASE_URL", "cannot parse"),
        ({"VIGIL_DATABASE_URL": "mysql://x@y/z"}, "VIGIL_DATABASE_URL", "unsupported driver"),
        (
            {"VIGIL_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/vigil"},
            "VIGIL_DATABASE_URL",
            "database unreachable (connection_refused",
        ),
        ({"VIGIL_MODE": "production"}, "VIGIL_JWT_SECRET", "required when VIGIL_MODE=production"),
        ({"VIGIL_PORT": "eighty"}, "VIGIL_PORT", "integer"),
        ({"VIGIL_JWT_ALGORITHMS": '["none"]'}, "VIGIL_JWT_ALGORITHMS", "never accepted"),
        ({"VIGIL_JWT_PUBLIC_KEY": "not-a-key"}, "VIGIL_JWT_PUBLIC_KEY", "not a PEM"),
    ],
)
def test_a_bad_setting_stops_serve_with_one_line(tmp_path, env, setting, cause):
    env = {"VIGIL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/v.db", **env}
    result = vigil("serve", env=env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"vigil: error: {setting}: ")
    assert cause in lines[0]


def test_an_unmigrated_schema_stops_production_and_names_the_fix(tmp_path):
    env = {**PRODUCTION, "VIGIL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/empty.db"}
    result = vigil("serve", env=env)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "VIGIL_DATABASE_URL: schema not migrated" in result.stderr
    assert "vigil db upgrade" in result.stderr
    assert not (tmp_path / "empty.db").exists() or (tmp_path / "empty.db").stat().st_size == 0


def test_db_upgrade_then_the_schema_check_passes(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/vigil.db"
    upgraded = vigil("db", "upgrade", env={"VIGIL_DATABASE_URL": url})
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database at revision" in upgraded.stdout


def test_vigil_token_prints_a_token_the_backend_accepts():
    result = vigil("token", "--user", "newcomer", "--ttl", "30m")
    assert result.returncode == 0, result.stderr
    identity = Authenticator(load_settings()).authenticate(result.stdout.strip())
    assert identity.user_id == "newcomer"


def test_vigil_token_refuses_a_bad_ttl():
    result = vigil("token", "--user", "x", "--ttl", "soon")
    assert result.returncode != 0
    assert "ttl" in result.stderr.lower()
