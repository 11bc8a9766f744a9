"""`AsyncAuth`: the `Auth` API, awaitable, for asyncio and trio apps (extra `async`).

Every method that can block (the store, a provider's network, argon2) runs the sync
core's own method in a worker thread (`anyio.to_thread.run_sync`), so there is one
implementation of every protocol step and the event loop never waits on it:

- Password hashing and verification run under their own capacity limiter,
  `password_limiter`, sized from the argon2id parameters (`password_capacity`), so
  a burst of sign-ins queues instead of allocating a hash's memory per request.
  On Linux argon2 itself runs on threads of its own at a lower CPU priority
  (`password_niceness`), so hashes that fill every core do not delay the loop.
- Everything else runs under `thread_limiter`, one thread per core by default.
- A cancelled call is not abandoned: the sync call runs to completion in its thread
  (a write is never left half done) and returns its result; the cancellation takes
  effect at the task's next `await`. A call still waiting for a thread or a token is
  cancelled at once, having done nothing.
- Event callbacks (`on`) run in the worker thread that made the change, after it is
  stored. From there, `anyio.from_thread.run(coroutine_function, ...)` runs a
  coroutine on the app's event loop.

Examples:
    >>> import anyio
    >>> from bpart_auth import Auth, MemoryStore
    >>> from bpart_auth.aio import AsyncAuth
    >>> from bpart_auth.testing import CHEAP_FOR_TESTS
    >>> auth = AsyncAuth(Auth(MemoryStore(), password_hashing=CHEAP_FOR_TESTS))
    >>> async def main():
    ...     ann = await auth.create_account(email="ann@example.com",
    ...                                     password="correct horse battery staple")
    ...     session = {}
    ...     signed_in = await auth.passwords.sign_in("ann@example.com",
    ...                                              "correct horse battery staple")
    ...     await auth.sessions.sign_in(session, signed_in)
    ...     return await auth.sessions.current(session) == ann
    >>> anyio.run(main)
    True
"""

from __future__ import annotations

import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.to_thread

from bpart_auth import errors
from bpart_auth.passwords import argon2_runs_on
from bpart_auth.services.invites import DEFAULT_INVITE_LIFETIME
from bpart_auth.services.sessions import ACCOUNT_KEY

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import timedelta

    from bpart_auth._events import AuthEvent, EventKind
    from bpart_auth.auth import Auth
    from bpart_auth.models import (
        Account,
        FlowStart,
        Invite,
        Outcome,
        ProviderName,
        SecondFactor,
        SignInMethods,
        SignInStep,
    )
    from bpart_auth.passwords import Argon2Parameters
    from bpart_auth.services.second_factors import Enrolled, PendingSignIn, TotpEnrolment
    from bpart_auth.services.sessions import Headers, Session

__all__ = [
    "DEFAULT_PASSWORD_MEMORY_BUDGET",
    "DEFAULT_PASSWORD_NICENESS",
    "AsyncAuth",
    "AsyncInviteService",
    "AsyncPasswordService",
    "AsyncSecondFactorService",
    "AsyncSessionService",
    "argon2_footprint",
    "password_capacity",
]

_T = TypeVar("_T")

DEFAULT_PASSWORD_MEMORY_BUDGET: Final = 256 * 1024 * 1024
"""Bytes that concurrent argon2 hashes may hold at once by default: 256 MiB."""

DEFAULT_PASSWORD_NICENESS: Final = 10
"""How many nice steps below the app's threads password work runs by default (Linux)."""

_MAX_NICENESS: Final = 19  # the lowest priority Linux has
_UNBOUNDED_WORKERS: Final = 40  # password threads for a limiter without a bound (anyio's)


def _usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    process_cpu_count = getattr(os, "process_cpu_count", None)  # Python 3.13
    if process_cpu_count is not None:
        return int(process_cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def password_capacity(
    parameters: Argon2Parameters,
    *,
    memory_budget: int = DEFAULT_PASSWORD_MEMORY_BUDGET,
    cores: int | None = None,
) -> int:
    """How many argon2 hashes `AsyncAuth` runs at once by default.

    An argon2id hash holds `memory_cost` KiB for its whole run (argon2's `m` is the
    memory of all its lanes together). Its lanes run in threads, but they wait for
    each other at every slice, so one hash does not keep the cores busy: measured here
    (`bench/bench_async.py`), one hash at a time on two cores made a burst of sign-ins
    take 16% longer than running them unbounded. So the capacity is the smaller of:

    - `memory_budget // (memory_cost * 1024)`: the hashes the budget holds;
    - `cores`: one hash per core; more would only share the same cores.

    and at least 1. The bound on argon2's memory is then capacity x `memory_cost`.

    Args:
        parameters: The argon2id parameters (`auth.password_hashing`).
        memory_budget: Bytes that concurrent hashes may hold; 256 MiB by default.
        cores: The cores to count on; by default those this process may run on.

    Returns:
        The number of hashes to run at once.

    Raises:
        ConfigurationError: The budget cannot hold even one hash.

    Examples:
        >>> from bpart_auth import RFC_9106_LOW_MEMORY  # 64 MiB, 4 lanes
        >>> password_capacity(RFC_9106_LOW_MEMORY, cores=2)
        2
        >>> password_capacity(RFC_9106_LOW_MEMORY, cores=32)  # 4 x 64 MiB = 256 MiB
        4
        >>> password_capacity(RFC_9106_LOW_MEMORY, cores=32, memory_budget=1024 * 1024**2)
        16
    """
    per_hash = parameters.memory_cost * 1024
    if memory_budget < per_hash:
        raise errors.ConfigurationError(
            detail=f"AsyncAuth: password_memory_budget ({memory_budget} bytes) is less than "
            f"one argon2 hash needs ({per_hash} bytes)"
        )
    available = _usable_cores() if cores is None else cores
    return max(1, min(memory_budget // per_hash, available))


def _lower_thread_priority(niceness: int) -> None:
    """Lower the calling thread's CPU priority by `niceness` nice steps, on Linux.

    Linux keeps a nice value per thread, and the threads a thread starts inherit it:
    argon2's lane threads run at their caller's priority. Elsewhere `setpriority`
    would change the whole process, so nothing is done.
    """
    if sys.platform != "linux" or niceness <= 0:
        return
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(_MAX_NICENESS, current + niceness))
    except OSError:  # a sandbox that forbids it: the work runs at the usual priority
        return


_ALLOCATION_PAGE: Final = 4 * 1024
_LANE_STACK: Final = 16 * 1024


def argon2_footprint(parameters: Argon2Parameters) -> int:
    """The bytes one argon2 hash holds at its peak (see `AsyncAuth.peak_password_memory`).

    Its `memory_cost` KiB, a 4 KiB page for the allocation of a block that large, and
    16 KiB of stack for each lane's thread.

    Examples:
        >>> from bpart_auth import RFC_9106_LOW_MEMORY  # 64 MiB, 4 lanes
        >>> argon2_footprint(RFC_9106_LOW_MEMORY) - 64 * 1024 * 1024
        69632
    """
    return parameters.memory_cost * 1024 + _ALLOCATION_PAGE + _LANE_STACK * parameters.parallelism


class _Runner:
    """Runs the sync core's calls in worker threads, password work under its limiter.

    With a `niceness` (Linux), argon2 itself runs on threads of its own, that many
    nice steps lower: when hashes keep every core busy, the event loop's thread still
    gets a core as soon as it wakes. The rest of a password call (the store, events)
    stays on the worker thread that holds the limiter's token, which waits for the
    hash. A lower priority only yields to busier threads: with idle cores, a hash
    runs as fast as before.
    """

    __slots__ = ("_hashing_threads", "password_limiter", "thread_limiter")

    def __init__(
        self,
        password_limiter: anyio.CapacityLimiter,
        thread_limiter: anyio.CapacityLimiter,
        niceness: int,
    ) -> None:
        self.password_limiter = password_limiter
        self.thread_limiter = thread_limiter
        self._hashing_threads: ThreadPoolExecutor | None = None
        if niceness > 0 and sys.platform == "linux":
            tokens = password_limiter.total_tokens
            self._hashing_threads = ThreadPoolExecutor(
                max_workers=int(tokens) if math.isfinite(tokens) else _UNBOUNDED_WORKERS,
                thread_name_prefix="bpart_auth-passwords",
                initializer=_lower_thread_priority,
                initargs=(niceness,),
            )

    async def run(self, call: Callable[[], _T]) -> _T:
        """Under the thread limiter; a cancelled call still runs to its end."""
        return await anyio.to_thread.run_sync(
            call, abandon_on_cancel=False, limiter=self.thread_limiter
        )

    async def run_hashing(self, call: Callable[[], _T]) -> _T:
        """Under the password limiter: the call hashes or verifies a password."""
        threads = self._hashing_threads
        if threads is not None:
            call = partial(_argon2_on, threads, call)
        return await anyio.to_thread.run_sync(
            call, abandon_on_cancel=False, limiter=self.password_limiter
        )


def _argon2_on(threads: ThreadPoolExecutor, call: Callable[[], _T]) -> _T:
    """Run `call` here, with its argon2 computations on `threads`."""
    with argon2_runs_on(threads):
        return call()


class AsyncAuth:
    """`Auth`, awaitable: the same methods, arguments, results and errors.

    It wraps one sync `Auth` (`async_auth.sync`) and runs its methods in worker
    threads: nothing is implemented twice. The methods that hash or verify a
    password (`create_account` with a password, `passwords.sign_in`,
    `passwords.change`, `passwords.complete_reset`, `invites.accept_with_password`)
    wait for a token of `password_limiter`; the others use anyio's default thread
    limiter. Works under asyncio and trio.

    Args:
        auth: The sync `Auth` to wrap; keep using it for set-up and scripts.
        password_limiter: Limits the password work running at once. By default one
            of `password_capacity(auth.password_hashing, memory_budget=...)` tokens.
        password_memory_budget: Bytes that concurrent argon2 hashes may hold, for
            the default limiter; 256 MiB by default.
        thread_limiter: Limits the other calls running at once. By default one per
            core: they are mostly Python (SQL, JSON, the token exchange), and more
            threads than cores only take turns at the GIL, which also delays the event
            loop (with anyio's default of 40 threads, a burst of callbacks delayed
            the loop several times longer, and finished later). Give a larger one
            when the store is slow to answer (a distant database).
        password_niceness: On Linux, argon2 runs on threads of its own that many
            nice steps below the app's (10 by default; at most 19), and its lane
            threads inherit it: while hashes fill every core, the event loop still
            gets one as soon as it wakes. With 0, or on other systems, argon2 runs on
            anyio's worker threads at the app's priority.

    Raises:
        ConfigurationError: Both `password_limiter` and `password_memory_budget`
            were given, the budget cannot hold one hash, or `password_niceness` is
            not from 0 to 19.

    Examples:
        >>> import anyio
        >>> from bpart_auth import Auth, MemoryStore, RFC_9106_LOW_MEMORY
        >>> auth = AsyncAuth(Auth(MemoryStore()), password_limiter=anyio.CapacityLimiter(2))
        >>> auth.password_limiter.total_tokens
        2
        >>> auth.peak_password_memory / 2**20  # 2 x (64 MiB + 4 KiB + 4 x 16 KiB)
        128.1328125
    """

    def __init__(
        self,
        auth: Auth,
        *,
        password_limiter: anyio.CapacityLimiter | None = None,
        password_memory_budget: int | None = None,
        thread_limiter: anyio.CapacityLimiter | None = None,
        password_niceness: int = DEFAULT_PASSWORD_NICENESS,
    ) -> None:
        if thread_limiter is None:
            thread_limiter = anyio.CapacityLimiter(_usable_cores())
        if password_limiter is None:
            password_limiter = anyio.CapacityLimiter(
                password_capacity(
                    auth.password_hashing,
                    memory_budget=DEFAULT_PASSWORD_MEMORY_BUDGET
                    if password_memory_budget is None
                    else password_memory_budget,
                )
            )
        elif password_memory_budget is not None:
            raise errors.ConfigurationError(
                detail="AsyncAuth: give password_limiter or password_memory_budget, not both"
            )
        if type(password_niceness) is not int or not 0 <= password_niceness <= _MAX_NICENESS:
            raise errors.ConfigurationError(
                detail=f"AsyncAuth: password_niceness must be an int from 0 to {_MAX_NICENESS}"
            )
        self.sync = auth
        """The wrapped sync `Auth`."""
        self._runner = _Runner(password_limiter, thread_limiter, password_niceness)
        self.passwords = AsyncPasswordService(auth, self._runner)
        """Password sign-in, change and reset, awaitable (`AsyncPasswordService`)."""
        self.invites = AsyncInviteService(auth, self._runner)
        """Invitations, awaitable (`AsyncInviteService`)."""
        self.sessions = AsyncSessionService(auth, self._runner)
        """The app's session, awaitable where it reads the store (`AsyncSessionService`)."""
        self.second_factors = AsyncSecondFactorService(auth, self._runner)
        """Second factors, awaitable (`AsyncSecondFactorService`)."""

    @property
    def thread_limiter(self) -> anyio.CapacityLimiter:
        """The limiter every other call waits on (one per core by default)."""
        return self._runner.thread_limiter

    @property
    def password_limiter(self) -> anyio.CapacityLimiter:
        """The limiter that password hashing and verification wait on.

        Its `total_tokens` is how many run at once.
        """
        return self._runner.password_limiter

    @property
    def peak_password_memory(self) -> float:
        """The bound on argon2's memory, in bytes: `total_tokens` x one hash's footprint.

        A hash's footprint is `memory_cost` KiB, plus a 4 KiB page for the allocation
        of a block that large and 16 KiB of stack for each lane's thread (measured
        on Linux: two 4-lane, 64 MiB hashes at once each held 28 to 38 KiB beyond
        `memory_cost`, one alone 4 to 16 KiB).

        It holds for hashes made with `auth.password_hashing` (new hashes, the dummy
        hash, and stored hashes rehashed at sign-in); verifying an older stored hash
        made with a larger `memory_cost` uses that hash's own. Only calls through this
        `AsyncAuth` count: calls to the sync `Auth` in other threads do not wait for a
        token. `math.inf` when the limiter has no bound.
        """
        return self.password_limiter.total_tokens * argon2_footprint(self.sync.password_hashing)

    @property
    def provider_names(self) -> tuple[str, ...]:
        """The configured providers' names, in the order given (see `Auth.provider_names`)."""
        return self.sync.provider_names

    def on(self, event: EventKind, callback: Callable[[AuthEvent], object]) -> None:
        """Register a plain callback for an event kind (see `Auth.on`).

        The callback runs in the worker thread that made the change, after it is
        stored, while the awaiting task waits for it: keep it short, or hand the work
        to the event loop with `anyio.from_thread.run(...)`.
        """
        self.sync.on(event, callback)

    # Accounts

    async def create_account(
        self, *, email: str, password: str | None = None, name: str = ""
    ) -> Account:
        """Create an account; with a password, under the password limiter.

        See `Auth.create_account`.
        """
        call = partial(self.sync.create_account, email=email, password=password, name=name)
        if password is None:
            return await self._runner.run(call)
        return await self._runner.run_hashing(call)

    async def get_account(self, account_id: str) -> Account:
        """The account with this id (see `Auth.get_account`)."""
        return await self._runner.run(partial(self.sync.get_account, account_id))

    async def disable_account(self, account_id: str) -> Account:
        """Disable an account (see `Auth.disable_account`)."""
        return await self._runner.run(partial(self.sync.disable_account, account_id))

    async def enable_account(self, account_id: str) -> Account:
        """Enable a disabled account again (see `Auth.enable_account`)."""
        return await self._runner.run(partial(self.sync.enable_account, account_id))

    # Redirect flows

    async def begin_sign_in(
        self,
        provider: ProviderName,
        *,
        session: Session | None = None,
        redirect_uri: str | None = None,
        return_to: str | None = None,
    ) -> FlowStart:
        """Start signing in with a provider (see `Auth.begin_sign_in`)."""
        return await self._runner.run(
            partial(
                self.sync.begin_sign_in,
                provider,
                session=session,
                redirect_uri=redirect_uri,
                return_to=return_to,
            )
        )

    async def begin_link(
        self,
        provider: ProviderName,
        *,
        session: Session | None = None,
        account_id: str | None = None,
        redirect_uri: str | None = None,
        return_to: str | None = None,
    ) -> FlowStart:
        """Start linking a provider to a signed-in account (see `Auth.begin_link`)."""
        return await self._runner.run(
            partial(
                self.sync.begin_link,
                provider,
                session=session,
                account_id=account_id,
                redirect_uri=redirect_uri,
                return_to=return_to,
            )
        )

    async def complete(
        self,
        params: Mapping[str, str],
        *,
        session: Session | None = None,
        sealed_flow: str | None = None,
        signed_in_account_id: str | None = None,
    ) -> Outcome:
        """Finish any redirect flow from its callback (see `Auth.complete`)."""
        return await self._runner.run(
            partial(
                self.sync.complete,
                params,
                session=session,
                sealed_flow=sealed_flow,
                signed_in_account_id=signed_in_account_id,
            )
        )

    async def unlink(self, account_id: str, provider: ProviderName) -> Account:
        """Remove the account's identity of a provider (see `Auth.unlink`)."""
        return await self._runner.run(partial(self.sync.unlink, account_id, provider))

    async def sign_in_methods(self, account_id: str) -> SignInMethods:
        """What an account can sign in with (see `Auth.sign_in_methods`)."""
        return await self._runner.run(partial(self.sync.sign_in_methods, account_id))


class AsyncPasswordService:
    """`auth.passwords`, awaitable: reach it as `async_auth.passwords`.

    `sign_in`, `change` and `complete_reset` run under the password limiter.
    """

    def __init__(self, auth: Auth, runner: _Runner) -> None:
        self._passwords = auth.passwords
        self._runner = runner

    async def sign_in(
        self, email: str, password: str, *, client_address: str | None = None
    ) -> Account:
        """Sign in with email and password (see `PasswordService.sign_in`)."""
        return await self._runner.run_hashing(
            partial(self._passwords.sign_in, email, password, client_address=client_address)
        )

    async def change(self, account_id: str, *, current: str, new: str) -> Account:
        """Change a signed-in user's password (see `PasswordService.change`)."""
        return await self._runner.run_hashing(
            partial(self._passwords.change, account_id, current=current, new=new)
        )

    async def begin_reset(self, email: str) -> str | None:
        """Start a password reset (see `PasswordService.begin_reset`)."""
        return await self._runner.run(partial(self._passwords.begin_reset, email))

    async def complete_reset(self, token: str, *, new_password: str) -> Account:
        """Set a new password with a reset token (see `PasswordService.complete_reset`)."""
        return await self._runner.run_hashing(
            partial(self._passwords.complete_reset, token, new_password=new_password)
        )


class AsyncInviteService:
    """`auth.invites`, awaitable: reach it as `async_auth.invites`.

    `accept_with_password` runs under the password limiter.
    """

    def __init__(self, auth: Auth, runner: _Runner) -> None:
        self._invites = auth.invites
        self._runner = runner

    async def create(
        self,
        email: str,
        *,
        invited_by: str | None = None,
        expires_in: timedelta = DEFAULT_INVITE_LIFETIME,
        data: Mapping[str, str] | None = None,
    ) -> tuple[Invite, str]:
        """Invite someone: the invitation and its token (see `InviteService.create`)."""
        return await self._runner.run(
            partial(
                self._invites.create,
                email,
                invited_by=invited_by,
                expires_in=expires_in,
                data=data,
            )
        )

    async def resend(
        self, invite_id: str, *, expires_in: timedelta = DEFAULT_INVITE_LIFETIME
    ) -> tuple[Invite, str]:
        """A new token for an invitation (see `InviteService.resend`)."""
        return await self._runner.run(
            partial(self._invites.resend, invite_id, expires_in=expires_in)
        )

    async def revoke(self, invite_id: str) -> Invite:
        """Revoke a pending invitation (see `InviteService.revoke`)."""
        return await self._runner.run(partial(self._invites.revoke, invite_id))

    async def pending(self) -> Sequence[Invite]:
        """Invitations still open, oldest first (see `InviteService.pending`)."""
        return await self._runner.run(self._invites.pending)

    async def check(self, token: str) -> Invite:
        """The invitation a token opens, if it can be accepted (see `InviteService.check`)."""
        return await self._runner.run(partial(self._invites.check, token))

    async def accept_with_password(self, token: str, *, password: str, name: str = "") -> Account:
        """Accept an invitation with a new password.

        See `InviteService.accept_with_password`.
        """
        return await self._runner.run_hashing(
            partial(self._invites.accept_with_password, token, password=password, name=name)
        )

    async def begin_accept(
        self,
        provider: ProviderName,
        token: str,
        *,
        session: Session | None = None,
        redirect_uri: str | None = None,
        return_to: str | None = None,
    ) -> FlowStart:
        """Start accepting an invitation with a provider (see `InviteService.begin_accept`)."""
        return await self._runner.run(
            partial(
                self._invites.begin_accept,
                provider,
                token,
                session=session,
                redirect_uri=redirect_uri,
                return_to=return_to,
            )
        )


class AsyncSessionService:
    """`auth.sessions`, awaitable where it reads the store: `async_auth.sessions`.

    `sign_in`, `current`, `refresh`, `sign_out` and `account` are awaited (they read
    the store, or call a session's `cycle_key()`/`flush()`, which may); `stamp`,
    `cross_origin_refused`, `signed_in_account_id`, `keep_flow` and `take_flow` only
    look at their arguments and stay plain calls.
    """

    def __init__(self, auth: Auth, runner: _Runner) -> None:
        self._sessions = auth.sessions
        self._runner = runner

    async def sign_in(
        self, session: Session, account: Account, *, provider_mfa: bool = False
    ) -> SignInStep:
        """Sign an account in to a fresh session, or to its second step.

        See `SessionService.sign_in`.
        """
        return await self._runner.run(
            partial(self._sessions.sign_in, session, account, provider_mfa=provider_mfa)
        )

    async def current(self, session: Session) -> Account | None:
        """The session's account, or None; ends a stale session.

        See `SessionService.current`. A session that holds no account is answered
        here, without a worker thread: most requests of a visitor who is not signed
        in (the sign-in page, a provider's callback) cost the loop no thread hop.
        """
        if session.get(ACCOUNT_KEY) is None:  # as `SessionService.current` begins
            return None
        return await self._runner.run(partial(self._sessions.current, session))

    async def refresh(self, session: Session, account: Account) -> None:
        """Keep this session signed in after the user's own change.

        See `SessionService.refresh`.
        """
        await self._runner.run(partial(self._sessions.refresh, session, account))

    async def sign_out(self, session: Session) -> None:
        """End the session (see `SessionService.sign_out`)."""
        await self._runner.run(partial(self._sessions.sign_out, session))

    async def account(self, stamp: str | None) -> Account | None:
        """The account of a session stamp, or None (see `SessionService.account`)."""
        return await self._runner.run(partial(self._sessions.account, stamp))

    def stamp(self, account: Account) -> str:
        """The one value a session keeps about its account (see `SessionService.stamp`)."""
        return self._sessions.stamp(account)

    def cross_origin_refused(self, method: str, headers: Headers) -> bool:
        """Whether to refuse a request as cross-site request forgery.

        See `SessionService.cross_origin_refused`.
        """
        return self._sessions.cross_origin_refused(method, headers)

    def referring_page(self, referer: object) -> str | None:
        """The app's page a form was posted from (see `SessionService.referring_page`)."""
        return self._sessions.referring_page(referer)

    def signed_in_account_id(self, session: Session) -> str | None:
        """The account id the session's stamp names, unchecked.

        See `SessionService.signed_in_account_id`.
        """
        return self._sessions.signed_in_account_id(session)

    def keep_flow(self, session: Session, start: FlowStart) -> None:
        """Keep a redirect flow in the session (see `SessionService.keep_flow`)."""
        self._sessions.keep_flow(session, start)

    def take_flow(self, session: Session, state: object) -> str | None:
        """Remove and return the session's flow for a state (see `SessionService.take_flow`)."""
        return self._sessions.take_flow(session, state)


class AsyncSecondFactorService:
    """`auth.second_factors`, awaitable: reach it as `async_auth.second_factors`.

    `verify` and `complete_passkey` check codes and signatures in a worker thread like
    the rest; none of them hashes a password, so none waits on the password limiter.
    """

    def __init__(self, auth: Auth, runner: _Runner) -> None:
        self._auth = auth
        self._runner = runner

    async def pending(self, session: Session) -> PendingSignIn | None:
        """The session's pending sign-in (see `SecondFactorService.pending`)."""
        return await self._runner.run(partial(self._auth.second_factors.pending, session))

    async def list(self, account_id: str) -> Sequence[SecondFactor]:
        """The account's factors (see `SecondFactorService.list`)."""
        return await self._runner.run(partial(self._auth.second_factors.list, account_id))

    async def recovery_codes_left(self, account_id: str) -> int:
        """Unused recovery codes (see `SecondFactorService.recovery_codes_left`)."""
        return await self._runner.run(
            partial(self._auth.second_factors.recovery_codes_left, account_id)
        )

    async def verify(
        self, session: Session, code: str, *, client_address: str | None = None
    ) -> Account:
        """The second step with a code (see `SecondFactorService.verify`)."""
        return await self._runner.run(
            partial(self._auth.second_factors.verify, session, code, client_address=client_address)
        )

    async def begin_totp(self, session: Session) -> TotpEnrolment:
        """Start adding an authenticator app (see `SecondFactorService.begin_totp`)."""
        return await self._runner.run(partial(self._auth.second_factors.begin_totp, session))

    async def confirm_totp(
        self, session: Session, code: str, *, name: str = "Authenticator app"
    ) -> Enrolled:
        """Finish adding an authenticator app (see `SecondFactorService.confirm_totp`)."""
        return await self._runner.run(
            partial(self._auth.second_factors.confirm_totp, session, code, name=name)
        )

    async def regenerate_recovery_codes(self, session: Session) -> tuple[str, ...]:
        """New recovery codes (see `SecondFactorService.regenerate_recovery_codes`)."""
        return await self._runner.run(
            partial(self._auth.second_factors.regenerate_recovery_codes, session)
        )

    async def remove(self, session: Session, factor_id: str) -> SecondFactor:
        """Remove a factor (see `SecondFactorService.remove`)."""
        return await self._runner.run(partial(self._auth.second_factors.remove, session, factor_id))

    async def begin_passkey_registration(self, session: Session) -> str:
        """Passkey creation options (see `SecondFactorService.begin_passkey_registration`)."""
        return await self._runner.run(
            partial(self._auth.second_factors.begin_passkey_registration, session)
        )

    async def complete_passkey_registration(
        self, session: Session, response: str | Mapping[str, Any], *, name: str = "Passkey"
    ) -> Enrolled:
        """Add a passkey (see `SecondFactorService.complete_passkey_registration`)."""
        return await self._runner.run(
            partial(
                self._auth.second_factors.complete_passkey_registration,
                session,
                response,
                name=name,
            )
        )

    async def begin_passkey(self, session: Session) -> str:
        """Passkey request options (see `SecondFactorService.begin_passkey`)."""
        return await self._runner.run(partial(self._auth.second_factors.begin_passkey, session))

    async def complete_passkey(
        self,
        session: Session,
        response: str | Mapping[str, Any],
        *,
        client_address: str | None = None,
    ) -> Account:
        """Sign in with a passkey (see `SecondFactorService.complete_passkey`)."""
        return await self._runner.run(
            partial(
                self._auth.second_factors.complete_passkey,
                session,
                response,
                client_address=client_address,
            )
        )
