"""The API reference (docs/reference) documents exactly what the public modules export."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"

# Every public module: apps and extensions import from these, and nothing else.
PUBLIC_MODULES = (
    "bpart_auth",
    "bpart_auth.errors",
    "bpart_auth.models",
    "bpart_auth.store",
    "bpart_auth.providers",
    "bpart_auth.guards",
    "bpart_auth.throttling",
    "bpart_auth.services.passwords",
    "bpart_auth.services.invites",
    "bpart_auth.services.sessions",
    "bpart_auth.services.second_factors",
    "bpart_auth.aio",
    "bpart_auth.flask",
    "bpart_auth.django",
    "bpart_auth.starlette",
    "bpart_auth.testing",
    "bpart_auth.totp",
    "bpart_auth.passkeys",
)

_ENTRY = re.compile(r"^::: (\S+)\s*$")


def _entries() -> list[tuple[str, str, bool]]:
    """Each `::: path` of the reference: (page, path, whether its members are shown)."""
    found = []
    for page in sorted(REFERENCE.glob("*.md")):
        lines = page.read_text().splitlines()
        for number, line in enumerate(lines):
            match = _ENTRY.match(line)
            if match is None:
                continue
            options = []
            for following in lines[number + 1 :]:
                if following and not following.startswith(" "):
                    break
                options.append(following.strip())
            found.append((page.name, match.group(1), "members: false" not in options))
    return found


def _resolve(path: str) -> object:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            value = getattr(value, attribute)
        return value
    raise ModuleNotFoundError(path)


def _exports() -> list[tuple[str, str, object]]:
    rows = []
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        assert hasattr(module, "__all__"), f"{name} has no __all__"
        rows.extend((name, exported, getattr(module, exported)) for exported in module.__all__)
    return rows


def _documented(value: object, entries: list[tuple[object, bool]]) -> bool:
    for target, members in entries:
        if target is value and target is not None:
            return True
        if isinstance(target, ModuleType) and members:
            names = getattr(target, "__all__", ())
            if any(getattr(target, name) is value for name in names):
                return True
    return False


def _resolved(path: str) -> object:
    try:
        return _resolve(path)
    except (ImportError, AttributeError):  # reported by the test below
        return None


def _resolved_entries() -> list[tuple[object, bool]]:
    return [(_resolved(path), members) for _page, path, members in ENTRIES]


ENTRIES = _entries()
RESOLVED = _resolved_entries()


def test_the_reference_has_entries():
    assert len(ENTRIES) > 50


@pytest.mark.parametrize(("module", "name", "value"), _exports(), ids=lambda v: str(v)[:40])
def test_every_exported_name_has_a_reference_entry(module, name, value):
    if name == "__version__":
        return
    assert _documented(value, RESOLVED), f"{module}.{name} has no `::: ` entry in docs/reference"


@pytest.mark.parametrize(("page", "path", "members"), ENTRIES, ids=str)
def test_every_reference_entry_names_something_exported(page, path, members):
    target = _resolve(path)
    if isinstance(target, ModuleType):
        assert target.__name__ in PUBLIC_MODULES, f"{page}: {path} is not a public module"
        return
    exported = [value for _module, _name, value in _exports()]
    assert any(value is target for value in exported), f"{page}: {path} is not exported"
