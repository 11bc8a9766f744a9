"""The guides' Python snippets run: a broken snippet fails this test.

The convention, for every page in `PAGES`:

- Each ```python block runs, in page order, in one namespace per page, with
  `FakeGoogle` and `FakeMicrosoft` serving the whole page (both entered, so the
  fakes' nesting is exercised too) and bound to the names `fake_google` and
  `fake_microsoft`; `monkeypatch` and `tmp_path` are pytest's. A traceback names
  the page and the line of the block.
- Hidden code, which the rendered page does not show, sits in an HTML comment that
  begins with a line `<!-- test` and ends with a line `-->`. It runs at its place in
  the page, like a block: set-up before a snippet (a `session`, a `request`, an
  `auth` on the fakes), checks after one (follow the redirect to the fake provider,
  assert the session is signed in).
- A block that cannot run is preceded by the line `<!-- test: skip -->`. Skips are
  counted against `SKIPS_ALLOWED`, so each one is a decision made here.
- Other fences (```sh, ```text) are not run.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from bpart_auth.testing import FakeGoogle, FakeMicrosoft

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = [
    "quickstart.md",
    "google.md",
    "microsoft.md",
    "linking.md",
    "invitations.md",
    "concepts.md",
    "second-factors.md",
]
SKIPS_ALLOWED: dict[str, int] = {}  # page -> skipped blocks; none today

_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)")
HIDDEN_START = "<!-- test"
HIDDEN_END = "-->"
SKIP = "<!-- test: skip -->"


def snippets(page: str | Path) -> tuple[list[tuple[int, str]], int]:
    """The page's runnable code as (line number, source) in order, and its skip count."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()  # an absolute Path wins
    found: list[tuple[int, str]] = []
    skips = 0
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.strip() == SKIP:
            skips += 1
            index = _fence_end(lines, index + 1)
            continue
        if line.strip() == HIDDEN_START:
            end = lines.index(HIDDEN_END, index + 1)
            found.append((index + 2, "\n".join(lines[index + 1 : end])))
            index = end + 1
            continue
        fence = _FENCE.match(line)
        if fence:
            end = _fence_end(lines, index)
            if fence["lang"] == "python":
                indent = len(fence["indent"])
                body = [text[indent:] for text in lines[index + 1 : end - 1]]
                found.append((index + 2, "\n".join(body)))
            index = end
            continue
        index += 1
    return found, skips


def _fence_end(lines: list[str], start: int) -> int:
    """The index after the fence that opens at `start`."""
    opening = _FENCE.match(lines[start])
    assert opening is not None, f"line {start + 1}: a skip marker must precede a fence"
    closing = opening["indent"] + "```"
    for index in range(start + 1, len(lines)):
        if lines[index].rstrip() == closing:
            return index + 1
    raise AssertionError(f"line {start + 1}: the fence never closes")


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_snippets_run(page: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found, skips = snippets(page)
    assert skips == SKIPS_ALLOWED.get(page, 0), f"{page}: {skips} skipped blocks"
    assert found, f"{page} has no python block"
    monkeypatch.chdir(DOCS.parent)  # a page's snippet may name a relative file
    with contextlib.ExitStack() as stack:
        namespace: dict[str, object] = {
            "__name__": f"docs_{Path(page).stem}",
            "fake_google": stack.enter_context(FakeGoogle()),
            "fake_microsoft": stack.enter_context(FakeMicrosoft()),
            "monkeypatch": monkeypatch,
            "tmp_path": tmp_path,
        }
        for line, source in found:
            code = compile(source, f"docs/{page}:{line}", "exec")
            exec(code, namespace)  # noqa: S102 - the project's own documentation


def test_the_convention_finds_hidden_code_and_skips() -> None:
    found, skips = snippets("quickstart.md")
    assert any("fake_google" in source for _, source in found)  # hidden set-up is found
    assert skips == 0


def test_a_broken_snippet_is_found(tmp_path: Path) -> None:
    page = tmp_path / "broken.md"
    page.write_text("<!-- test\nx = 1\n-->\n\n```python\nassert x == 2\n```\n")
    found, _ = snippets(page)
    namespace: dict[str, object] = {}
    (_, setup), (line, check) = found
    exec(setup, namespace)  # noqa: S102
    with pytest.raises(AssertionError):
        exec(compile(check, f"{page}:{line}", "exec"), namespace)  # noqa: S102
