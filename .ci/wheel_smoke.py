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

forbidden = {"flask", "django", "fastapi", "starlette", "sqlalchemy", "redis", "psycopg"}
leaked = sorted(forbidden & set(sys.modules))
assert not leaked, f"importing bpart_auth imported {leaked}"
assert importlib.resources.files("bpart_auth").joinpath("py.typed").is_file(), "py.typed missing"
assert bpart_auth.__version__, "no __version__"
print(f"wheel ok: bpart_auth {bpart_auth.__version__} from {bpart_auth.__file__}")
