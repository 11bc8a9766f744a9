"""One hook point: callbacks an app registers on `Auth` to audit and send emails."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from bpart_auth.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from bpart_auth.models import Account, Identity, Invite, SecondFactor

EventKind = Literal[
    "signed_in",
    "linked",
    "unlinked",
    "invite_created",
    "invite_accepted",
    "password_changed",
    "second_factor_added",
    "second_factor_removed",
    "recovery_codes_created",
    "recovery_code_used",
]
"""What happened."""

_KINDS = frozenset(get_args(EventKind))
_log = logging.getLogger("bpart_auth.events")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthEvent:
    """Something that happened, handed to every callback registered for its kind.

    Attributes:
        kind: What happened.
        account: The account it happened to (the inviter's, for `invite_created`).
        identity: The provider identity involved, if any.
        invite: The invitation involved, if any.
        method: How the user signed in (`"password"`, `"google"`, `"microsoft"`).
        factor: The second factor added or removed, if any.
    """

    kind: EventKind
    account: Account | None
    identity: Identity | None = None
    invite: Invite | None = None
    method: str | None = None
    factor: SecondFactor | None = None


class Events:
    """Callbacks by event kind. A callback runs after the change is stored.

    A failing callback does not undo the change, and does not stop the others: its
    exception is logged on the `bpart_auth.events` logger, with the traceback.
    """

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callable[[AuthEvent], object]]] = {}

    def on(self, kind: EventKind, callback: Callable[[AuthEvent], object]) -> None:
        """Call `callback(event)` after every event of this kind."""
        if kind not in _KINDS:
            raise ConfigurationError(detail=f"unknown event {kind!r}; known: {sorted(_KINDS)}")
        if not callable(callback):
            raise ConfigurationError(detail="callback must be callable")
        self._callbacks.setdefault(kind, []).append(callback)

    def emit(self, event: AuthEvent) -> None:
        """Run the callbacks of the event's kind; report, never raise, their failures."""
        for callback in self._callbacks.get(event.kind, ()):
            try:
                callback(event)
            # An app's callback may raise anything; the change is stored, so report it.
            except Exception:  # noqa: BLE001, PERF203
                _log.exception("bpart_auth: a %s callback failed (the change stands)", event.kind)
