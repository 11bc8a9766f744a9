"""Package hygiene: version, public namespace, no framework or network at import."""

from __future__ import annotations

import inspect
import io
import re
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest

import bpart_auth
from bpart_auth import _cli

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_single_sourced():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'path = "src/bpart_auth/_version.py"' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", bpart_auth.__version__)


def test_all_lists_exactly_the_public_names():
    public = {
        name
        for name, value in vars(bpart_auth).items()
        if not name.startswith("_") and not inspect.ismodule(value)  # submodules are not API
    }
    # Loaded on first use: SQLStore needs the `sql` extra, the providers requests and oauthlib.
    lazy = {"SQLStore", "GoogleProvider", "MicrosoftProvider"}
    assert set(bpart_auth.__all__) == public | {"__version__"} | lazy
    for name in bpart_auth.__all__:
        assert getattr(bpart_auth, name) is not None
    assert len(set(bpart_auth.__all__)) == len(bpart_auth.__all__)


def test_py_typed_is_shipped():
    assert (Path(bpart_auth.__file__).parent / "py.typed").is_file()


def test_import_pulls_in_no_framework_no_backend_and_no_network():
    script = textwrap.dedent(
        """
        import socket, sys
        def refuse(*args, **kwargs):
            raise SystemExit("network used at import")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        import bpart_auth
        heavy = {"flask", "django", "fastapi", "starlette", "sqlalchemy", "redis", "psycopg"}
        print(sorted(heavy & set(sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_cli_lists_every_error_code():
    out = io.StringIO()
    assert _cli.main(["errors"], out=out) == 0
    lines = out.getvalue().splitlines()
    codes = {line.split()[0] for line in lines}
    assert {"invalid_credentials", "admin_consent_required", "identity_not_linked"} <= codes
    assert codes == set(typing.get_args(bpart_auth.ErrorCode))  # a code with two messages: two rows


def test_cli_requires_a_command():
    with pytest.raises(SystemExit) as caught:
        _cli.main([], out=io.StringIO())
    assert caught.value.code == 2
