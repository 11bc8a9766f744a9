"""One server process of `bench_async`: the FastAPI example on uvicorn, and a loop ticker.

Run as `python -m bench._async_server MODE HASHING DATABASE`; it prints `PORT <n>` when it
listens on 127.0.0.1 and exits when its stdin closes. It runs on the event loop and HTTP
parser `uvicorn.run` would choose (uvloop and httptools, from `uvicorn[standard]`).
HASHING is `real` (RFC 9106's 64 MiB), `small` (the same lanes, 32 KiB, 100 passes) or
`cheap` (the tests'). MODE is one of:

- `async`: examples/fastapi/fastapi_example.py as it is (`async def` routes, `AsyncAuth`
  running the core in worker threads, argon2 under its limiter);
- `blocking`: the same app and routes, with `AsyncAuth`'s calls run inline on the event
  loop: what an app gets when its `async def` routes call the sync `Auth`;
- `sync`: the same two flows on plain `def` routes (FastAPI runs them in its thread
  pool) calling the sync `Auth`: the throughput baseline.

Besides the app's own routes it serves, for the benchmark only, under `/__bench/`:
`mark` (collect garbage, start recording the ticker's lag and reset the peak memory),
`report` (the lag percentiles and peak memory growth since `mark`), and
`authorize?url=` (the fake Google's answer for a flow's URL, computed before the timed
burst).

The ticker is a task on the server's own event loop: every millisecond it asks to be
woken, and records how late it was. A loop blocked by a password hash wakes it late.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import uvicorn
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.middleware.sessions import SessionMiddleware

from bpart_auth import RFC_9106_LOW_MEMORY, Argon2Parameters, Auth, SQLStore
from bpart_auth.aio import AsyncAuth
from bpart_auth.starlette import AuthMiddleware
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi" / "fastapi_example.py"
SECRET = "the async benchmark's secret key, 32+ bytes"  # noqa: S105 - a benchmark's
ORIGIN = "http://127.0.0.1"  # the app's origin as `Auth` knows it (any port is a client's)
PASSWORD = "a benchmark passphrase, long enough"  # noqa: S105 - a benchmark's
TICK = 0.001
# `small`: argon2 with the same lanes as `real` (so the same lane threads) but 8 KiB a
# lane: the memory of a sign-in burst without argon2's own. Its 100 passes make a hash
# slow enough (about 30 ms) that the whole burst waits at once, as with `real`.
HASHING = {
    "real": RFC_9106_LOW_MEMORY,
    "small": Argon2Parameters(
        time_cost=100,
        memory_cost=8 * RFC_9106_LOW_MEMORY.parallelism,
        parallelism=RFC_9106_LOW_MEMORY.parallelism,
    ),
    "cheap": CHEAP_FOR_TESTS,
}
_T = TypeVar("_T")
Field = Annotated[str, Form()]


class _Ticker:
    """Records how late the event loop wakes a task that sleeps `TICK` at a time."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.recording = False

    async def run(self) -> None:
        while True:
            start = time.perf_counter()
            counted = self.recording  # a tick begun before `mark` is not the burst's
            await asyncio.sleep(TICK)
            if counted and self.recording:
                self.lags.append(max(0.0, time.perf_counter() - start - TICK))


class _Inline:
    """`AsyncAuth`'s runner, but on the loop itself: the sync core called from `async def`."""

    def __init__(self, runner: Any) -> None:  # noqa: ANN401 - AsyncAuth's private runner
        self.password_limiter = runner.password_limiter
        self.thread_limiter = runner.thread_limiter

    async def run(self, call: Callable[[], _T]) -> _T:
        return call()

    async def run_hashing(self, call: Callable[[], _T]) -> _T:
        return call()


def _resident() -> int:
    """Resident memory of this process now, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class _PeakMemory:
    """The highest resident memory seen since `reset`, sampled every 2 ms in a thread."""

    def __init__(self) -> None:
        self.base = self.peak = _resident()
        threading.Thread(target=self._sample, daemon=True).start()

    def reset(self) -> None:
        self.base = self.peak = _resident()

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, _resident())
            time.sleep(0.002)


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_example_bench", EXAMPLE)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {EXAMPLE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sync_app(auth: Auth) -> FastAPI:
    """The two benchmarked flows on plain `def` routes, calling the sync `Auth`."""
    app = FastAPI()

    @app.get("/")
    def home(request: Request) -> HTMLResponse:
        account = auth.sessions.current(request.session)
        return HTMLResponse(f"<p>{account.email if account else 'Sign in'}</p>")

    @app.post("/login")
    def login(request: Request, email: Field, password: Field) -> RedirectResponse:
        account = auth.passwords.sign_in(email, password, client_address="127.0.0.1")
        auth.sessions.sign_in(request.session, account)
        return RedirectResponse("/", 303)

    @app.post("/login/{provider}")
    def login_with(request: Request, provider: str) -> RedirectResponse:
        start = auth.begin_sign_in(provider, session=request.session)  # type: ignore[arg-type]
        return RedirectResponse(start.url, 303)

    @app.get("/auth/callback")
    def callback(request: Request) -> RedirectResponse:
        auth.complete(dict(request.query_params), session=request.session)
        return RedirectResponse("/", 303)

    app.add_middleware(SessionMiddleware, secret_key=SECRET, https_only=False)
    return app


def build(mode: str, hashing: str, database: str, google: FakeGoogle) -> tuple[FastAPI, Auth]:
    auth = Auth(
        SQLStore(database, create_schema=True),
        secret_key=SECRET,
        providers=[google.provider()],
        redirect_uri=f"{ORIGIN}/auth/callback",
        password_hashing=HASHING[hashing],
    )
    if mode == "sync":
        return _sync_app(auth), auth
    app: FastAPI = _load_example().create_app(auth, secret_key=SECRET, https_only=False)
    if mode == "blocking":
        _run_inline(_find_async_auth(app))
    return app, auth


def _find_async_auth(app: FastAPI) -> AsyncAuth:
    """The example's `AsyncAuth`: the one its `StarletteAuth` gave the middleware."""
    for middleware in app.user_middleware:
        if middleware.cls is AuthMiddleware:
            return middleware.kwargs["bpart"].auth  # type: ignore[no-any-return]
    raise SystemExit("the FastAPI example has no bpart_auth.starlette.AuthMiddleware")


def _run_inline(async_auth: AsyncAuth) -> None:
    inline = _Inline(async_auth._runner)  # noqa: SLF001
    for holder in (async_auth, async_auth.passwords, async_auth.invites, async_auth.sessions):
        holder._runner = inline  # type: ignore[assignment]  # noqa: SLF001


def add_bench_routes(
    app: FastAPI, ticker: _Ticker, memory: _PeakMemory, google: FakeGoogle, async_auth: AsyncAuth
) -> None:
    @app.post("/__bench/mark")
    async def mark() -> JSONResponse:
        gc.collect()  # the last burst's cycles: freed here, not in the middle of this one
        memory.reset()
        ticker.lags.clear()
        ticker.recording = True
        return JSONResponse({})

    @app.get("/__bench/report")
    async def report() -> JSONResponse:
        ticker.recording = False
        lags = sorted(ticker.lags) or [0.0]
        p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))]
        return JSONResponse(
            {
                "ticks": len(ticker.lags),
                "p50": statistics.median(lags),
                "p99": p99,
                "max": lags[-1],
                "lags": lags,
                "memory_growth": memory.peak - memory.base,
                "bound": async_auth.peak_password_memory,
                # argon2's blocks alone: tokens x memory_cost
                "blocks": async_auth.password_limiter.total_tokens
                * async_auth.sync.password_hashing.memory_cost
                * 1024,
            }
        )

    @app.get("/__bench/authorize")
    def authorize(url: str) -> JSONResponse:
        return JSONResponse(google.authorize(url, email="bench@example.com"))


async def serve(mode: str, hashing: str, database: str) -> None:
    google = FakeGoogle()
    with google:
        app, auth = build(mode, hashing, database, google)
        auth.create_account(email="bench@example.com", password=PASSWORD)
        async_auth = _find_async_auth(app) if mode != "sync" else AsyncAuth(auth)
        ticker, memory = _Ticker(), _PeakMemory()
        add_bench_routes(app, ticker, memory, google, async_auth)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
        server = uvicorn.Server(config)
        ticking = asyncio.get_running_loop().create_task(ticker.run())
        asyncio.get_running_loop().create_task(_stop_on_eof(server))
        serving = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await serving
        ticking.cancel()


async def _stop_on_eof(server: uvicorn.Server) -> None:
    await asyncio.to_thread(sys.stdin.read)
    server.should_exit = True


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `uvicorn.run` would use here: uvloop when it is installed."""
    return uvicorn.Config(app=None, loop="auto").get_loop_factory()  # type: ignore[arg-type]


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(*sys.argv[1:4]))
