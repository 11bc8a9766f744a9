"""The `bpart-auth` console script: schema, first admin, password from stdin only."""

from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bpart_auth import Auth, InvalidCredentials, SQLStore, errors
from bpart_auth._cli import error_catalogue, main
from conftest import CLOSED_PORT_URL, POSTGRES_URL

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
    account = auth.passwords.sign_in("boss@example.com", PASSWORD)
    assert account.name == "Boss"
    with pytest.raises(InvalidCredentials):
        auth.passwords.sign_in("boss@example.com", PASSWORD + "\n")


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


# Failures speak to the operator: what failed and what to run or fix, exit status 1.

CLOSED = CLOSED_PORT_URL.replace("postgres@", "postgres:s3cret@")
WRONG_DATABASE = (
    make_url(POSTGRES_URL).set(database="no_such_db_bpart").render_as_string(hide_password=False)
)
STORE_FAILURE_ARGV = {
    "migrate": lambda url: ["migrate", url],
    "create-account": lambda url: ["create-account", url, "--email", "a@example.com"],
    "demo": lambda url: ["demo", "--port", "8765", "--database", url],
}


@pytest.mark.parametrize("command", list(STORE_FAILURE_ARGV))
@pytest.mark.parametrize(
    ("database", "code", "says"),
    [
        pytest.param(
            CLOSED,
            "store_unavailable",
            [
                "cannot use the database at postgresql+psycopg://postgres:***@127.0.0.1:1/test",
                "Connection refused",
                "check the URL, and that the server is running",
            ],
            id="postgresql-closed-port",
        ),
        pytest.param(
            WRONG_DATABASE,
            "store_unavailable",
            ["no_such_db_bpart", "check the URL"],
            id="postgresql-wrong-database",
        ),
        pytest.param(
            "sqlite:///TMP/missing/auth.db",
            "store_unavailable",
            [
                "cannot use the SQLite file",
                "unable to open database file",
                "check that its folder exists",
            ],
            id="sqlite-missing-folder",
        ),
        pytest.param(
            "redis://:s3cret@127.0.0.1:6379/0",
            "configuration_error",
            ["unsupported URL scheme 'redis://'", "sqlite:///path/to/file.db", "postgres://"],
            id="redis-url",
        ),
        pytest.param(
            "bpart_auth.db",
            "configuration_error",
            ["not a database URL", "sqlite:///path/to/file.db", "postgresql://"],
            id="bare-path",
        ),
    ],
)
def test_a_database_failure_tells_the_operator_what_to_fix(
    tmp_path, capsys, command, database, code, says
):
    database = database.replace("TMP", tmp_path.as_posix())
    status, text = run(*STORE_FAILURE_ARGV[command](database), stdin=PASSWORD)
    assert (status, text) == (1, "")
    err = capsys.readouterr().err
    assert err.startswith(f"bpart-auth: {code}: ")
    assert err.count("\n") == 1
    for fragment in says:
        assert fragment in err
    assert "s3cret" not in err
    assert "administrator" not in err
    assert "Please try again" not in err


def test_create_account_on_an_unmigrated_database_says_to_migrate_first(url, capsys):
    status, _ = run("create-account", url, "--email", "a@example.com", stdin=PASSWORD)
    assert status == 1
    assert capsys.readouterr().err == (
        "bpart-auth: configuration_error: the database has no bpart_auth tables yet: "
        "run `bpart-auth migrate` on this URL first (or call SQLStore.upgrade_schema(), "
        "or pass create_schema=True)\n"
    )


def test_create_account_on_a_newer_schema_says_to_upgrade_the_package(url, capsys):
    run("migrate", url)
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        connection.execute(
            "insert into bpart_schema_version (version, applied_at) values (99, '2030-01-01')"
        )
    status, _ = run("create-account", url, "--email", "a@example.com", stdin=PASSWORD)
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("bpart-auth: configuration_error: the database has bpart_auth schema")
    assert "upgrade the bpart-auth package" in err


@pytest.mark.parametrize(
    ("argv", "stdin", "expected"),
    [
        pytest.param(
            ["--email", "a@example.com"],
            "short\n",
            "password_too_short: the password was refused: Your password must be at least "
            "15 characters long; nothing was created",
            id="weak-password",
        ),
        pytest.param(
            ["--email", "not-an-email"],
            PASSWORD,
            "invalid_email: --email was refused: Please enter a valid email address",
            id="bad-email",
        ),
        pytest.param(
            ["--email", "Boss@example.com"],
            PASSWORD,
            "email_taken: an account with the email Boss@example.com already exists; "
            "nothing was created",
            id="taken",
        ),
        pytest.param(
            ["--email", "a@example.com", "--name", "x" * 10_000],
            PASSWORD,
            "invalid_input: --name was refused: ",
            id="long-name",
        ),
    ],
)
def test_create_account_refusals_say_what_to_change(url, capsys, argv, stdin, expected):
    run("migrate", url)
    run("create-account", url, "--email", "boss@example.com", stdin=PASSWORD)
    capsys.readouterr()
    status, _ = run("create-account", url, *argv, stdin=stdin)
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith(f"bpart-auth: {expected}")
    assert err.endswith("nothing was created\n")


def test_the_console_script_prints_no_traceback(tmp_path):
    script = shutil.which("bpart-auth", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run(
        [script, "migrate", f"sqlite:///{tmp_path / 'missing' / 'auth.db'}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("bpart-auth: store_unavailable: cannot use the SQLite file")
    assert "Traceback" not in result.stderr


def test_a_usage_error_exits_with_status_2(capsys):
    with pytest.raises(SystemExit) as caught:
        run("migrate")
    assert caught.value.code == 2
    assert "the following arguments are required: url" in capsys.readouterr().err


# The catalogue: every code's real message template, for translation tables


def test_errors_prints_every_code_class_and_template():
    status, text = run("errors")
    assert status == 0
    lines = text.splitlines()
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.AuthError)
    ]
    for cls in classes:
        assert any(
            line.split()
            and line.split()[0] == cls.code
            and f"  {cls.__name__}: " in line
            and line.endswith(f": {cls.default_message}")
            for line in lines
        ), cls
    assert "{min_length}" in text
    assert "{provider}" in text
    assert f"TooManyAttempts (1 minute): {errors.TooManyAttempts.one_minute_message}" in text
    assert "ProviderError (microsoft, provider_code AADSTS50105): " in text


def test_only_auth_error_itself_says_something_went_wrong():
    generic = [
        (code, name) for code, name, template in error_catalogue() if "went wrong" in template
    ]
    assert generic == [("auth_error", "AuthError")]
