"""What makes a new password easy to guess: the list of common ones, and simple patterns.

Both checks take the password as `PasswordPolicy.check` holds it: bounded, NFKC, then
case-folded, so `QWERTY`, typed in capitals or in full-width forms, is `qwerty` to them.

The simplicity rules (NIST SP 800-63B-4, section 3.1.1.2, names "repetitive or
sequential characters" among what a blocklist should hold) refuse a password when:

- nothing in it is visible: only white space, control and format characters;
- one character makes up more than half of it (`aaaaaaaaaaaaaab`);
- it is one string typed three times or more (`abcabcabcabcabc`, the last copy may
  be cut short);
- runs of four or more characters that follow a sequence cover more than half of it.
  The sequences are the alphabet and the digits (each wrapping round, so
  `7890123` is a run), the rows of QWERTY, QWERTZ and AZERTY keyboards read on
  from one row into the next (`qwertyuiopasdfg`), each row with its punctuation,
  the shifted digit row, the columns read top to bottom, and the alternating
  digit-and-letter walk (`1q2w3e4r`). A run goes either way (`onmlkjih`).

The thresholds leave real passphrases alone: of 93,569 random phrases of two to four
words (from the 30,000 most frequent of English Wikipedia) separated by spaces, none
was refused (runs made up at most 42% of one, a single character at most 44%);
written without spaces, 2 of 90,074 were. `correct horse battery staple` has no run.

Examples:
    >>> too_simple("correct horse battery staple") is None
    True
    >>> too_simple("qwertyuiopasdfg")
    'keyboard, alphabet or digit sequences make up 15 of its 15 characters'
    >>> is_common("password1")
    True
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import unicodedata
from collections import Counter
from typing import Final

__all__ = ["common_passwords", "is_common", "too_simple"]

# Unicode categories of what shows nothing: controls, format characters (zero-width
# space and joiners, the byte-order mark), and space, line and paragraph separators.
_INVISIBLE: Final = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})

_MIN_RUN: Final = 4  # shorter runs turn up in ordinary words ("stu", "ion", "def")
_MIN_REPEATS: Final = 3  # "correct horse correct horse" is a phrase said twice; 3 is a pattern

_SEQUENCES: Final = (
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789",
    # Keyboard letter rows read on into the next row, digits first.
    "1234567890qwertyuiopasdfghjklzxcvbnm",  # QWERTY
    "1234567890qwertzuiopasdfghjklyxcvbnm",  # QWERTZ
    "1234567890azertyuiopqsdfghjklmwxcvbn",  # AZERTY
    # Each US row with its punctuation, unshifted and shifted.
    "`1234567890-=",
    "qwertyuiop[]\\",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "~!@#$%^&*()_+",
    "qwertyuiop{}|",
    'asdfghjkl:"',
    "zxcvbnm<>?",
    # Columns read top to bottom, with and without the digit row.
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/",
    "qazwsxedcrfvtgbyhnujmik,ol.p;/",
    # The digit row and the top row in turn.
    "1q2w3e4r5t6y7u8i9o0p",
    "q1w2e3r4t5y6u7i8o9p0",
)
_WRAPPING: Final = frozenset({"abcdefghijklmnopqrstuvwxyz", "0123456789"})


def _steps() -> frozenset[tuple[str, str]]:
    """Every (character, next character) pair along a sequence, read forwards."""
    steps: set[tuple[str, str]] = set()
    for sequence in _SEQUENCES:
        chain = sequence + sequence[0] if sequence in _WRAPPING else sequence
        steps.update(itertools.pairwise(chain))
    return frozenset(steps)


_STEPS: Final = _steps()


def _run_length(text: str, start: int) -> int:
    """Length of the longest run from `start` along a sequence, forwards or backwards."""
    longest = 1
    for forwards in (True, False):
        end = start
        while end + 1 < len(text):
            pair = (text[end], text[end + 1]) if forwards else (text[end + 1], text[end])
            if pair not in _STEPS:
                break
            end += 1
        longest = max(longest, end - start + 1)
    return longest


def _characters_in_runs(text: str) -> int:
    """How many characters of `text` lie in runs of at least `_MIN_RUN`, read greedily."""
    covered = index = 0
    while index < len(text):
        run = _run_length(text, index)
        if run >= _MIN_RUN:
            covered += run
            index += run
        else:
            index += 1
    return covered


def _smallest_period(text: str) -> int:
    """The least p with text[i] == text[i + p] throughout (Knuth-Morris-Pratt prefix function)."""
    border = [0] * len(text)
    matched = 0
    for index in range(1, len(text)):
        while matched and text[index] != text[matched]:
            matched = border[matched - 1]
        if text[index] == text[matched]:
            matched += 1
        border[index] = matched
    return len(text) - border[-1]


def too_simple(folded: str) -> str | None:
    """Why a password is too simple to use, for `detail`; None when it is not.

    Args:
        folded: The password bounded, NFKC-normalised and case-folded; not empty.

    Returns:
        Which rule refused it (never the password itself), or None.

    Examples:
        >>> too_simple(" " * 15)
        'only white space or invisible characters'
        >>> too_simple("abcabcabcabcabc")
        'one string of 3 characters repeated over its 15 characters'
    """
    length = len(folded)
    if all(unicodedata.category(character) in _INVISIBLE for character in folded):
        return "only white space or invisible characters"
    (_, most), *_ = Counter(folded).most_common(1)
    if most * 2 > length:
        return f"one character makes up {most} of its {length} characters"
    period = _smallest_period(folded)
    if period * _MIN_REPEATS <= length:
        return f"one string of {period} characters repeated over its {length} characters"
    in_runs = _characters_in_runs(folded)
    if in_runs * 2 > length:
        return f"keyboard, alphabet or digit sequences make up {in_runs} of its {length} characters"
    return None


@functools.cache
def common_passwords() -> frozenset[str]:
    """The built-in list, read from the package data on first use and kept.

    The file holds each entry already NFKC-normalised and case-folded. A line that is
    `#` or starts with `# ` is a comment: some common passwords start with `#`.

    Examples:
        >>> len(common_passwords()) > 10_000
        True
    """
    text = (
        importlib.resources.files("bpart_auth")
        .joinpath("_common_passwords.txt")
        .read_text(encoding="utf-8")
    )
    return frozenset(
        line for line in text.splitlines() if line and line != "#" and not line.startswith("# ")
    )


def is_common(folded: str) -> bool:
    """Whether a password is on the built-in list, alone or typed twice or more.

    Args:
        folded: The password bounded, NFKC-normalised and case-folded; not empty.

    Examples:
        >>> is_common("sunshine"), is_common("sunshinesunshine"), is_common("sunshine on a lake")
        (True, True, False)
    """
    listed = common_passwords()
    if folded in listed or folded.strip() in listed:
        return True
    period = _smallest_period(folded)
    return len(folded) % period == 0 and period < len(folded) and folded[:period] in listed
