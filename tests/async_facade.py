"""Run the sync tests' bodies against `AsyncAuth`: a blocking view of its awaitables.

`Blocking(AsyncAuth(auth), portal)` has the methods of `Auth`; each awaitable one is
awaited on the portal's event loop (asyncio or trio, in another thread) and its result
or exception handed back, so a test written for `Auth` checks `AsyncAuth` unchanged.
Plain attributes (`provider_names`, `on`, `sessions.stamp`) pass through as they are.
"""

from __future__ import annotations

import inspect
from functools import partial

from bpart_auth.aio import AsyncInviteService, AsyncPasswordService, AsyncSessionService

_SERVICES = (AsyncPasswordService, AsyncInviteService, AsyncSessionService)


class Blocking:
    """A sync view of an async facade or service, for test bodies written for `Auth`."""

    def __init__(self, target, portal):
        self._target = target
        self._portal = portal

    def __getattr__(self, name):
        value = getattr(self._target, name)
        if inspect.iscoroutinefunction(value):
            return lambda *args, **kwargs: self._portal.call(partial(value, *args, **kwargs))
        if isinstance(value, _SERVICES):
            return Blocking(value, self._portal)
        return value

    def __repr__(self):
        return f"Blocking({self._target!r})"
