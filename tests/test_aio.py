"""AsyncAuth: the loop keeps running, password work queues, errors and writes as in Auth.

The flows themselves (sign-in, invitations, linking, the session) run against AsyncAuth
in test_session_core.py, test_invites_linking.py and test_google.py (`facade`).
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import threading

import anyio
import anyio.from_thread
import anyio.lowlevel
import argon2
import pytest

from bpart_auth import (
    RFC_9106_LOW_MEMORY,
    AccountNotFound,
    Argon2Parameters,
    Auth,
    ConfigurationError,
    InvalidCredentials,
    InvalidFlowState,
    InvalidInvite,
    InvalidResetToken,
    InviteAlreadyUsed,
    MemoryStore,
    PasswordTooShort,
    SignInRequired,
)
from bpart_auth.aio import (
    DEFAULT_PASSWORD_MEMORY_BUDGET,
    AsyncAuth,
    AsyncInviteService,
    AsyncPasswordService,
    AsyncSecondFactorService,
    AsyncSessionService,
    password_capacity,
)
from bpart_auth.services.invites import InviteService
from bpart_auth.services.passwords import PasswordService
from bpart_auth.services.second_factors import SecondFactorService
from bpart_auth.services.sessions import SessionService
from bpart_auth.testing import CHEAP_FOR_TESTS

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "another long passphrase"
MiB = 1024 * 1024


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.fixture
def sync_auth():
    return Auth(
        MemoryStore(),
        secret_key="a unit-test secret key of 32+ bytes",
        password_hashing=CHEAP_FOR_TESTS,
        redirect_uri="https://backoffice.test/auth/callback",
    )


class Argon2Probe:
    """Counts the threads inside argon2 (hash or verify) at once, and can hold them there.

    Each call waits inside argon2 until `release` is set and, with `wait_for_two`,
    until a second call is inside too (at most `two_timeout` seconds): the window in
    which an unlimited second call would overlap.
    """

    def __init__(self, monkeypatch):
        self.inside = 0
        self.peak = 0
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.wait_for_two = False
        self.two_timeout = 0.5  # how long a call inside waits for a second one
        self.threads = set()  # (name, nice value) of the threads argon2 ran on
        self._changed = threading.Condition()
        for name in ("hash", "verify"):
            monkeypatch.setattr(argon2.PasswordHasher, name, self._wrap(name))

    def _wrap(self, name):
        original = getattr(argon2.PasswordHasher, name)

        def probed(hasher, *args, **kwargs):
            self.threads.add((threading.current_thread().name, _niceness()))
            with self._changed:
                self.inside += 1
                self.calls += 1
                self.peak = max(self.peak, self.inside)
                self._changed.notify_all()
                if self.wait_for_two:
                    self._changed.wait_for(lambda: self.peak >= 2, timeout=self.two_timeout)
            self.entered.set()
            self.release.wait(timeout=10)
            try:
                return original(hasher, *args, **kwargs)
            finally:
                with self._changed:
                    self.inside -= 1

        return probed


def _niceness():
    """The calling thread's nice value (Linux keeps one per thread)."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.fixture
def probe(monkeypatch):
    return Argon2Probe(monkeypatch)


# The API is Auth's


ASYNC_OF_SYNC = [
    (AsyncAuth, Auth),
    (AsyncPasswordService, PasswordService),
    (AsyncInviteService, InviteService),
    (AsyncSessionService, SessionService),
    (AsyncSecondFactorService, SecondFactorService),
]


@pytest.mark.parametrize(("wrapper", "wrapped"), ASYNC_OF_SYNC, ids=lambda cls: cls.__name__)
def test_every_public_method_is_there_with_the_same_signature(wrapper, wrapped):
    public = {
        name
        for name, member in vars(wrapped).items()
        if not name.startswith("_") and callable(member)
    }
    for name in public:
        assert name in vars(wrapper), f"{wrapper.__name__} lacks {name}"
        assert inspect.signature(getattr(wrapper, name)) == inspect.signature(
            getattr(wrapped, name)
        ), name


@pytest.mark.parametrize(
    ("wrapper", "plain"),
    [
        (AsyncAuth, {"on"}),
        (
            AsyncSessionService,
            {"stamp", "cross_origin_refused", "signed_in_account_id"}
            | {"keep_flow", "take_flow", "referring_page"},
        ),
        (AsyncPasswordService, set()),
        (AsyncInviteService, set()),
        (AsyncSecondFactorService, set()),
    ],
    ids=lambda value: getattr(value, "__name__", "plain"),
)
def test_what_can_block_is_awaitable_and_the_rest_is_plain(wrapper, plain):
    methods = {
        name: member
        for name, member in vars(wrapper).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }
    assert {
        name for name, member in methods.items() if not inspect.iscoroutinefunction(member)
    } == plain


def test_importing_bpart_auth_does_not_import_anyio():
    code = "import sys, bpart_auth; print('anyio' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# The limiter's size


@pytest.mark.parametrize(
    ("parameters", "budget", "cores", "expected"),
    [
        pytest.param(RFC_9106_LOW_MEMORY, DEFAULT_PASSWORD_MEMORY_BUDGET, 2, 2, id="2-cores"),
        pytest.param(RFC_9106_LOW_MEMORY, DEFAULT_PASSWORD_MEMORY_BUDGET, 8, 4, id="8-cores"),
        pytest.param(RFC_9106_LOW_MEMORY, DEFAULT_PASSWORD_MEMORY_BUDGET, 3, 3, id="3-cores"),
        pytest.param(RFC_9106_LOW_MEMORY, DEFAULT_PASSWORD_MEMORY_BUDGET, 64, 4, id="memory"),
        pytest.param(RFC_9106_LOW_MEMORY, 64 * MiB, 64, 1, id="one-hash-budget"),
        pytest.param(RFC_9106_LOW_MEMORY, 100 * MiB, 64, 1, id="budget-rounds-down"),
        pytest.param(
            Argon2Parameters(time_cost=2, memory_cost=19 * 1024, parallelism=1),
            DEFAULT_PASSWORD_MEMORY_BUDGET,
            4,
            4,
            id="owasp-one-lane",
        ),
        pytest.param(CHEAP_FOR_TESTS, DEFAULT_PASSWORD_MEMORY_BUDGET, 1, 1, id="one-core"),
    ],
)
def test_password_capacity(parameters, budget, cores, expected):
    assert password_capacity(parameters, memory_budget=budget, cores=cores) == expected


def test_a_budget_smaller_than_one_hash_is_refused(sync_auth):
    with pytest.raises(ConfigurationError):
        password_capacity(RFC_9106_LOW_MEMORY, memory_budget=32 * MiB)
    with pytest.raises(ConfigurationError):
        AsyncAuth(sync_auth, password_memory_budget=4 * 1024)


def test_a_limiter_and_a_budget_are_not_both_taken(sync_auth):
    with pytest.raises(ConfigurationError):
        AsyncAuth(sync_auth, password_limiter=anyio.CapacityLimiter(1), password_memory_budget=MiB)


def test_the_default_limiter_and_its_memory_bound(sync_auth):
    async_auth = AsyncAuth(sync_auth, password_memory_budget=MiB)
    tokens = password_capacity(CHEAP_FOR_TESTS, memory_budget=MiB)
    assert async_auth.password_limiter.total_tokens == tokens
    footprint = (CHEAP_FOR_TESTS.memory_cost + 4 + 16 * CHEAP_FOR_TESTS.parallelism) * 1024
    assert async_auth.peak_password_memory == tokens * footprint
    assert async_auth.sync is sync_auth


# The event loop keeps running


@pytest.mark.anyio
async def test_the_loop_runs_while_a_password_is_checked(sync_auth, probe):
    async_auth = AsyncAuth(sync_auth)
    await async_auth.create_account(email="ann@example.com", password=PASSWORD)
    probe.release.clear()
    ticks_while_inside = []

    async def tick():
        await anyio.to_thread.run_sync(probe.entered.wait, 10)
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
            ticks_while_inside.append(probe.inside)
        probe.release.set()

    probe.entered.clear()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(tick)
        account = await async_auth.passwords.sign_in("ann@example.com", PASSWORD)
    assert account.email == "ann@example.com"
    assert ticks_while_inside == [1, 1, 1]  # the ticker ran while argon2 held the sign-in


# Password work queues behind the limiter


# Each call is made twice at once, the n-th one on user n (a reset kills its
# account's other tokens, a change needs the current password).
HASHING_CALLS = {
    "passwords.sign_in": lambda auth, ctx, n: auth.passwords.sign_in(
        ctx["users"][n].email, PASSWORD
    ),
    "passwords.change": lambda auth, ctx, n: auth.passwords.change(
        ctx["users"][n].id, current=PASSWORD, new=NEW_PASSWORD
    ),
    "passwords.complete_reset": lambda auth, ctx, n: auth.passwords.complete_reset(
        ctx["resets"][n], new_password=NEW_PASSWORD
    ),
    "invites.accept_with_password": lambda auth, ctx, n: auth.invites.accept_with_password(
        ctx["invites"][n], password=PASSWORD
    ),
    "create_account": lambda auth, _ctx, n: auth.create_account(
        email=f"new{n}@example.com", password=PASSWORD
    ),
}


async def _context(async_auth):
    users = [
        await async_auth.create_account(email=f"user{n}@example.com", password=PASSWORD)
        for n in range(2)
    ]
    resets = [await async_auth.passwords.begin_reset(user.email) for user in users]
    invites = [(await async_auth.invites.create(f"invitee{n}@example.com"))[1] for n in range(2)]
    return {"users": users, "resets": resets, "invites": invites}


async def _twice(call, async_auth, context):
    results = []

    async def one(n):
        results.append(await call(async_auth, context, n))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(one, 0)
        tasks.start_soon(one, 1)
    return results


@pytest.mark.anyio
@pytest.mark.parametrize("operation", HASHING_CALLS)
async def test_with_one_token_two_password_calls_never_overlap_in_argon2(
    sync_auth, probe, operation
):
    async_auth = AsyncAuth(sync_auth, password_limiter=anyio.CapacityLimiter(1))
    context = await _context(async_auth)
    probe.peak, probe.calls, probe.wait_for_two = 0, 0, True
    results = await _twice(HASHING_CALLS[operation], async_auth, context)
    assert len(results) == 2
    assert probe.calls >= 2
    assert probe.peak == 1


@pytest.mark.anyio
async def test_with_two_tokens_two_sign_ins_do_overlap(sync_auth, probe):
    """The control: the probe sees an overlap when the limiter allows one."""
    async_auth = AsyncAuth(sync_auth, password_limiter=anyio.CapacityLimiter(2))
    context = await _context(async_auth)
    probe.peak, probe.wait_for_two, probe.two_timeout = 0, True, 10
    await _twice(HASHING_CALLS["passwords.sign_in"], async_auth, context)
    assert probe.peak == 2


@pytest.mark.anyio
async def test_other_calls_do_not_wait_for_the_password_limiter(sync_auth):
    limiter = anyio.CapacityLimiter(1)
    async_auth = AsyncAuth(sync_auth, password_limiter=limiter)
    ann = await async_auth.create_account(email="ann@example.com")
    holder = object()
    await limiter.acquire_on_behalf_of(holder)  # every password token is taken
    try:
        with anyio.fail_after(10):
            assert await async_auth.get_account(ann.id) == ann
            assert (await async_auth.sign_in_methods(ann.id)).password is False
            invite, _ = await async_auth.invites.create("bob@example.com")
            assert await async_auth.invites.pending() == [invite]
            assert await async_auth.create_account(email="carol@example.com")
    finally:
        limiter.release_on_behalf_of(holder)


# The same errors


def _flow_without_session(auth):
    return auth.complete({"state": "x", "code": "y"}, session={})


ERRORS = [
    pytest.param(
        lambda auth: auth.passwords.sign_in("ann@example.com", "wrong password"),
        InvalidCredentials,
        id="wrong-password",
    ),
    pytest.param(lambda auth: auth.get_account("nobody"), AccountNotFound, id="no-account"),
    pytest.param(
        lambda auth: auth.create_account(email="short@example.com", password="short"),
        PasswordTooShort,
        id="short-password",
    ),
    pytest.param(lambda auth: auth.invites.check("forged"), InvalidInvite, id="forged-invite"),
    pytest.param(
        lambda auth: auth.passwords.complete_reset("forged", new_password=NEW_PASSWORD),
        InvalidResetToken,
        id="forged-reset",
    ),
    pytest.param(
        lambda auth: auth.begin_link("google", session={}), SignInRequired, id="not-signed-in"
    ),
    pytest.param(_flow_without_session, InvalidFlowState, id="no-flow-in-session"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("call", "error"), ERRORS)
async def test_the_same_errors_as_auth(sync_auth, call, error):
    async_auth = AsyncAuth(sync_auth)
    await async_auth.create_account(email="ann@example.com", password=PASSWORD)
    with pytest.raises(error) as sync_error:
        call(sync_auth)
    with pytest.raises(error) as async_error:
        await call(async_auth)
    assert type(async_error.value) is type(sync_error.value)
    assert async_error.value.code == sync_error.value.code
    assert str(async_error.value) == str(sync_error.value)


# Cancellation


@pytest.mark.anyio
async def test_a_call_cancelled_mid_write_completes_the_write(sync_auth, probe):
    async_auth = AsyncAuth(sync_auth)
    _, token = await async_auth.invites.create("bob@example.com")
    probe.release.clear()
    probe.entered.clear()
    returned = []

    async def accept():
        returned.append(await async_auth.invites.accept_with_password(token, password=PASSWORD))
        await anyio.lowlevel.checkpoint()  # where the cancellation lands
        returned.append("not reached")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(accept)
        await anyio.to_thread.run_sync(probe.entered.wait, 10)  # inside argon2's hash
        tasks.cancel_scope.cancel()
        probe.release.set()
    assert tasks.cancel_scope.cancelled_caught
    # The call ran to its end and returned; the task was cancelled at its next await.
    assert [account.email for account in returned] == ["bob@example.com"]
    # The write is whole: the account exists and the invitation is spent.
    assert sync_auth._store.find_account_by_email("bob@example.com") is not None
    with pytest.raises(InviteAlreadyUsed):
        await async_auth.invites.check(token)


@pytest.mark.anyio
async def test_a_call_cancelled_while_queued_writes_nothing(sync_auth, probe):
    limiter = anyio.CapacityLimiter(1)
    async_auth = AsyncAuth(sync_auth, password_limiter=limiter)
    _, token = await async_auth.invites.create("bob@example.com")
    probe.calls = 0
    holder = object()
    await limiter.acquire_on_behalf_of(holder)  # the one token is taken
    try:
        with anyio.move_on_after(0.05) as scope:
            await async_auth.invites.accept_with_password(token, password=PASSWORD)
    finally:
        limiter.release_on_behalf_of(holder)
    assert scope.cancelled_caught
    assert probe.calls == 0
    assert sync_auth._store.find_account_by_email("bob@example.com") is None
    assert (await async_auth.invites.check(token)).email == "bob@example.com"


# Events


@pytest.mark.anyio
async def test_callbacks_run_in_the_worker_thread_and_can_reach_the_loop(sync_auth):
    async_auth = AsyncAuth(sync_auth)
    loop_thread = threading.get_ident()
    seen = []
    notified = anyio.Event()

    def on_signed_in(event):
        seen.append((event.account.email, threading.get_ident()))
        anyio.from_thread.run_sync(notified.set)  # hand work back to the event loop

    async_auth.on("signed_in", on_signed_in)
    await async_auth.create_account(email="ann@example.com", password=PASSWORD)
    await async_auth.passwords.sign_in("ann@example.com", PASSWORD)
    assert notified.is_set()
    assert len(seen) == 1
    assert seen[0][0] == "ann@example.com"
    assert seen[0][1] != loop_thread


@pytest.mark.anyio
@pytest.mark.skipif(sys.platform != "linux", reason="only Linux keeps a nice value per thread")
async def test_argon2_runs_at_a_lower_priority_and_the_rest_of_the_call_does_not(sync_auth, probe):
    async_auth = AsyncAuth(sync_auth)
    app = _niceness()
    events = []
    async_auth.on(
        "signed_in", lambda _: events.append((threading.current_thread().name, _niceness()))
    )
    await async_auth.create_account(email="ann@example.com", password=PASSWORD)
    await async_auth.passwords.sign_in("ann@example.com", PASSWORD)
    with pytest.raises(InvalidCredentials):
        await async_auth.passwords.sign_in("nobody@example.com", PASSWORD)  # the dummy
    assert probe.calls == 3
    names = {name for name, _ in probe.threads}
    assert all(name.startswith("bpart_auth-passwords") for name in names), names
    assert {nice for _, nice in probe.threads} == {min(19, app + 10)}
    # The store and the events stay on anyio's worker thread, at the app's priority.
    [(event_thread, event_nice)] = events
    assert not event_thread.startswith("bpart_auth-passwords")
    assert event_nice == app
    assert _niceness() == app  # the loop's thread is untouched


@pytest.mark.anyio
async def test_with_niceness_0_argon2_runs_on_the_worker_thread_at_the_app_priority(
    sync_auth, probe
):
    async_auth = AsyncAuth(sync_auth, password_niceness=0)
    await async_auth.create_account(email="ann@example.com", password=PASSWORD)
    assert probe.calls == 1
    [(name, nice)] = probe.threads
    assert not name.startswith("bpart_auth-passwords")
    assert nice == _niceness()


@pytest.mark.parametrize("niceness", [-1, 20, True, 2.5, "10", None])
def test_a_niceness_outside_0_to_19_is_refused(sync_auth, niceness):
    with pytest.raises(ConfigurationError) as caught:
        AsyncAuth(sync_auth, password_niceness=niceness)
    # The detail, not match=: pytest matches the notes too, which Python 3.10 lacks.
    assert "password_niceness" in caught.value.detail


def test_other_calls_run_one_per_core_by_default_or_under_the_given_limiter(sync_auth):
    from bpart_auth.aio import _usable_cores  # noqa: PLC0415

    assert AsyncAuth(sync_auth).thread_limiter.total_tokens == _usable_cores()
    mine = anyio.CapacityLimiter(7)
    assert AsyncAuth(sync_auth, thread_limiter=mine).thread_limiter is mine
