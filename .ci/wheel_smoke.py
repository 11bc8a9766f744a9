"""Run from a fresh venv holding only the built wheel: the package imports cleanly.

Checks that `import bpart_auth` works with no extras, pulls in no web framework or
optional backend, opens no network connection, and ships its type marker.
"""

import importlib.resources
import socket
import sys


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("bpart_auth opened a network connection at import")


socket.socket.connect = _no_network  # type: ignore[method-assign,assignment]
socket.create_connection = _no_network  # type: ignore[assignment]

import bpart_auth  # noqa: E402

forbidden = {"flask", "django", "fastapi", "starlette", "anyio", "sqlalchemy", "redis", "psycopg"}
leaked = sorted(forbidden & set(sys.modules))
assert not leaked, f"importing bpart_auth imported {leaked}"
assert importlib.resources.files("bpart_auth").joinpath("py.typed").is_file(), "py.typed missing"
assert bpart_auth.__version__, "no __version__"
print(f"wheel ok: bpart_auth {bpart_auth.__version__} from {bpart_auth.__file__}")

demo_templates = importlib.resources.files("bpart_auth").joinpath("_demo", "templates")
assert demo_templates.joinpath("login.html").is_file(), "the demo's templates are missing"

# Without the demo extra, `bpart-auth demo` says what to install instead of a traceback.
import contextlib  # noqa: E402
import io  # noqa: E402

from bpart_auth import _cli  # noqa: E402

errors = io.StringIO()
with contextlib.redirect_stderr(errors):
    status = _cli.main(["demo"], out=io.StringIO())
assert status == 1, status
assert 'pip install "bpart-auth[demo]"' in errors.getvalue(), errors.getvalue()
print("demo without its extra: a clear message")
