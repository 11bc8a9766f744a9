"""No password and no raw token is present in any byte the SQLite store writes."""

from __future__ import annotations

from pathlib import Path

from bpart_auth import Auth, SQLStore
from bpart_auth.testing import CHEAP_FOR_TESTS

FIRST = "first password, long enough to pass"
SECOND = "second password, also long enough"
THIRD = "third password after the reset link"


def stored_bytes(directory: Path) -> bytes:
    """The database file and its WAL and shared-memory companions, as written."""
    return b"".join(path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file())


def test_sqlite_file_holds_no_password_and_no_token(tmp_path):
    store = SQLStore(f"sqlite:///{tmp_path / 'auth.db'}", create_schema=True)
    auth = Auth(store, password_hashing=CHEAP_FOR_TESTS)
    account = auth.create_account(email="ann@example.com", password=FIRST)
    auth.passwords.sign_in("ann@example.com", FIRST)
    auth.passwords.change(account.id, current=FIRST, new=SECOND)
    used = auth.passwords.begin_reset("ann@example.com")
    auth.passwords.complete_reset(used, new_password=THIRD)
    pending = auth.passwords.begin_reset("ann@example.com")
    assert used
    assert pending

    secrets = [FIRST, SECOND, THIRD, used, pending]
    written = stored_bytes(tmp_path)
    assert len(written) > 4096  # the file really holds the data searched
    assert b"ann@example.com" in written
    for secret in secrets:
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            assert secret.encode(encoding) not in written, (secret, encoding)
    store.close()
    for secret in secrets:  # after the WAL is checkpointed into the main file
        assert secret.encode() not in stored_bytes(tmp_path)
