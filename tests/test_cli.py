"""The `bpart-auth` console script: schema, first admin, password from stdin only."""

from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bpart_auth import Auth, InvalidCredentials, SQLStore
from bpart_auth._cli import main

PASSWORD = "correct horse battery staple"


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'auth.db'}"


def run(*argv, stdin=""):
    out = io.StringIO()
    status = main(list(argv), out=out, stdin=io.StringIO(stdin))
    return status, out.getvalue()


def test_migrate_creates_then_reports_up_to_date(url):
    status, text = run("migrate", url)
    assert status == 0
    assert text.startswith("schema upgraded from version 0 to")
    status, text = run("migrate", url)
    assert (status, text.startswith("schema is up to date")) == (0, True)
    assert SQLStore(url).schema_version() >= 1


def test_create_account_reads_the_password_from_stdin(url):
    run("migrate", url)
    status, text = run(
        "create-account",
        url,
        "--email",
        "Boss@Example.com",
        "--name",
        "Boss",
        stdin=PASSWORD + "\n",
    )
    assert status == 0
    assert "<boss@example.com>" in text
    auth = Auth(SQLStore(url))
    account = auth.sign_in_with_password("boss@example.com", PASSWORD)
    assert account.name == "Boss"
    with pytest.raises(InvalidCredentials):
        auth.sign_in_with_password("boss@example.com", PASSWORD + "\n")


def test_create_account_without_password(url):
    run("migrate", url)
    status, _ = run("create-account", url, "--email", "ms-only@example.com", "--no-password")
    assert status == 0
    account = SQLStore(url).find_account_by_email("ms-only@example.com")
    assert account is not None
    assert not account.has_password


def test_there_is_no_password_argument(url, capsys):
    with pytest.raises(SystemExit) as caught:
        run("create-account", url, "--email", "a@example.com", "--password", PASSWORD)
    assert caught.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "stdin", "code"),
    [
        pytest.param(["--email", "a@example.com"], "short\n", "password_too_short", id="weak"),
        pytest.param(["--email", "not-an-email"], PASSWORD, "invalid_email", id="bad-email"),
        pytest.param(["--email", "boss@example.com"], PASSWORD, "email_taken", id="taken"),
    ],
)
def test_create_account_errors_are_typed_and_write_nothing(url, capsys, argv, stdin, code):
    run("migrate", url)
    run("create-account", url, "--email", "boss@example.com", stdin=PASSWORD)
    status, _ = run("create-account", url, *argv, stdin=stdin)
    assert status == 1
    assert f"bpart-auth: {code}:" in capsys.readouterr().err
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        assert connection.execute("select count(*) from bpart_accounts").fetchone() == (1,)


def test_unmigrated_database_is_a_configuration_error(url, capsys):
    status, _ = run("create-account", url, "--email", "a@example.com", "--no-password")
    assert status == 1
    assert "bpart-auth: configuration_error:" in capsys.readouterr().err


def test_console_script_is_installed_and_never_echoes_the_password(url):
    script = shutil.which("bpart-auth", path=str(Path(sys.executable).parent))
    assert script is not None
    subprocess.run([script, "migrate", url], check=True, capture_output=True)
    result = subprocess.run(
        [script, "create-account", url, "--email", "a@example.com"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
