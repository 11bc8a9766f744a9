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
from packaging.version import Version

try:
    import tomllib
except ImportError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

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


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _floors(requirements):
    """{name: floor} of requirements like `Name[extra]>=1.2  # note`, self-references left out."""
    floors = {}
    pattern = re.compile(r"([A-Za-z0-9._-]+)(\[[^\]]*\])?(?:>=([0-9.]+))?(,<[0-9.]+)?")
    for requirement in requirements:
        match = pattern.fullmatch(requirement)
        assert match, f"not a `name>=floor` requirement: {requirement!r}"
        name, _, floor, _ = match.groups()
        if name == "bpart-auth":
            continue
        assert floor, f"{requirement!r} declares no floor: ./dev lowest cannot test it"
        floors[name.lower()] = floor
    return floors


def test_every_dependency_has_a_floor_and_lowest_txt_pins_it():
    project = _pyproject()["project"]
    declared = _floors(project["dependencies"])
    for requirements in project["optional-dependencies"].values():
        declared.update(_floors(requirements))
    pinned = {}
    for text in (ROOT / ".ci" / "lowest.txt").read_text().splitlines():
        line, _, comment = (part.strip() for part in text.partition("#"))
        if not line:
            continue
        name, version = line.lower().split("==")
        pinned[name] = version
        if name in declared and version != declared[name]:
            # Two floors that cannot be installed together: the pin says why it is higher.
            assert comment.startswith("above the floor"), text
            assert Version(version) > Version(declared[name]), text
            pinned[name] = declared[name]
    assert pinned == declared


def test_extras_and_groups():
    pyproject = _pyproject()
    extras = pyproject["project"]["optional-dependencies"]
    # Users see only what they install; the contributors' tooling lives in groups.
    assert not {"test", "docs", "examples"} & set(extras)
    assert {"test", "docs", "examples", "check", "dev"} <= set(pyproject["dependency-groups"])
    # `sql`, kept for one release, is exactly sqlite + postgres.
    assert extras["sql"] == ["bpart-auth[sqlite,postgres]"]
    # psycopg for users, never its binary wheel (they choose how libpq arrives).
    assert not any("psycopg[binary]" in requirement for requirement in extras["postgres"])
    assert "psycopg>=3.1" in extras["postgres"]
    assert any(item.startswith("mkdocs>=1.6,<2") for item in pyproject["dependency-groups"]["docs"])


def test_dev_installs_every_user_extra():
    dev = (ROOT / "dev").read_text()
    (line,) = re.findall(r'^USER_EXTRAS="([^"]*)"$', dev, flags=re.MULTILINE)
    extras = set(_pyproject()["project"]["optional-dependencies"])
    assert set(line.split()) == extras - {"sql"}  # the alias is smoke-tested on its own
