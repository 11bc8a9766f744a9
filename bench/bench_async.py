"""Async apps: the event loop's lag, throughput and memory under a burst of sign-ins.

The FastAPI example runs on uvicorn in its own process, three ways (`_async_server`):
`async` (the example: `AsyncAuth`, work in threads), `blocking` (the same `async def`
routes calling the sync core on the loop) and `sync` (plain `def` routes in FastAPI's
thread pool). This process plays the browsers with httpx: each burst sends every
request at once, and the server's ticker reports how late the loop woke it meanwhile.

- Loop lag: the ticker's p99 during a burst of password sign-ins and one of Google
  callbacks (fake Google, in the server's process, on the real HTTP client), async
  against blocking. The issue asks for at most 5 ms (against over 100 ms blocking, as
  it measured on asyncio and h11).
- Throughput: the burst's wall time, async against the `def` routes (within 10%).
- Memory: the server's peak resident memory growth during 100 concurrent sign-ins,
  against `AsyncAuth.peak_password_memory` (the limiter's bound on argon2) plus what
  the same burst holds besides argon2's memory: its growth on a server whose argon2
  has the same lanes but 8 KiB a lane (less that server's argon2 blocks). The
  `def` routes, which no limiter holds back, are shown against the same bound.

Each server first takes one unmeasured burst of each kind (imports, first connections).
A lag figure is the 99th percentile of the ticks of all rounds together (a burst of
callbacks lasts about 60 ticks, so one round's p99 would be its maximum); a time or
memory figure is the median of the rounds (N), and IQR their spread. A quick run uses
5 users, cheap argon2 and one round: a smoke run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench._harness import Measured, Scenario, Skipped, duration, load_average

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import httpx

    from bench._harness import Scale

GROUP = "async"
ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "a benchmark passphrase, long enough"  # noqa: S105 - the server seeds it
MODES = ("async", "blocking", "sync")


@dataclass(frozen=True, slots=True)
class Plan:
    users: int
    memory_users: int
    rounds: int
    memory_rounds: int
    hashing: str


PLANS = {
    "quick": Plan(users=5, memory_users=5, rounds=1, memory_rounds=1, hashing="cheap"),
    "full": Plan(users=50, memory_users=100, rounds=3, memory_rounds=5, hashing="real"),
}


@dataclass(frozen=True, slots=True)
class Burst:
    seconds: float
    p99: float
    lags: tuple[float, ...]
    ticks: int
    memory_growth: int
    bound: float
    blocks: float


class Server(contextlib.AbstractContextManager["Server"]):
    """One `_async_server` process; it exits when its stdin closes."""

    def __init__(self, mode: str, hashing: str, folder: Path) -> None:
        self.mode = mode
        database = f"sqlite:///{folder / f'{mode}-{hashing}.db'}"
        self.process = subprocess.Popen(  # noqa: S603 - our own module, sys.executable
            [sys.executable, "-m", "bench._async_server", mode, hashing, database],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("PORT "):
            self.process.kill()
            raise RuntimeError(f"the {mode} server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def __exit__(self, *exc: object) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# What a browser sends with the app's own forms (the adapter refuses anything else).
FORM_HEADERS = {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"}


async def _sign_in(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/login",
        data={"email": "bench@example.com", "password": PASSWORD},
        headers=FORM_HEADERS,
    )
    if response.status_code != 303 or "set-cookie" not in response.headers:
        raise RuntimeError(f"sign-in failed: {response.status_code} {response.text[:200]}")


async def _page(client: httpx.AsyncClient) -> None:
    """The sign-in page: a request of the same app that does no password work."""
    response = await client.get("/")
    if response.status_code != 200:
        raise RuntimeError(f"page failed: {response.status_code}")


async def _ready_callback(client: httpx.AsyncClient) -> str:
    """Begin a Google flow and have the fake answer it: the callback URL to burst."""
    begun = await client.post("/login/google", headers=FORM_HEADERS)
    answer = await client.get("/__bench/authorize", params={"url": begun.headers["location"]})
    params = answer.json()
    return "/auth/callback?" + "&".join(f"{k}={v}" for k, v in params.items())


async def _callback(client: httpx.AsyncClient, url: str) -> None:
    response = await client.get(url)
    if response.status_code != 303 or response.headers["location"] != "/":
        raise RuntimeError(f"callback failed: {response.status_code} {response.text[:200]}")


async def _burst(server: Server, kind: str, users: int) -> Burst:
    import httpx  # noqa: PLC0415 - only this benchmark needs it

    limits = httpx.Limits(max_connections=users + 2)
    timeout = httpx.Timeout(300.0)  # a burst queues behind the password limiter
    clients = [
        httpx.AsyncClient(base_url=server.url, limits=limits, timeout=timeout) for _ in range(users)
    ]
    control = httpx.AsyncClient(base_url=server.url, timeout=timeout)
    try:
        urls = [await _ready_callback(c) for c in clients] if kind == "callback" else []
        await control.post("/__bench/mark", headers=FORM_HEADERS)
        start = time.perf_counter()
        if kind == "callback":
            await asyncio.gather(*(_callback(c, u) for c, u in zip(clients, urls, strict=True)))
        elif kind == "page":
            await asyncio.gather(*(_page(c) for c in clients))
        else:
            await asyncio.gather(*(_sign_in(c) for c in clients))
        seconds = time.perf_counter() - start
        report = (await control.get("/__bench/report")).json()
    finally:
        for client in [*clients, control]:
            await client.aclose()
    return Burst(
        seconds=seconds,
        p99=report["p99"],
        lags=tuple(report["lags"]),
        ticks=report["ticks"],
        memory_growth=report["memory_growth"],
        bound=report["bound"],
        blocks=report["blocks"],
    )


def _spread(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    first, _, third = statistics.quantiles(values, n=4, method="inclusive")
    middle = statistics.median(values)
    return (third - first) / middle if middle else 0.0


def _mib(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"


def _percentile_99(lags: Sequence[float]) -> float:
    ordered = sorted(lags) or [0.0]
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _run(scale: Scale) -> list[Measured]:
    plan = PLANS[scale]
    bursts: dict[tuple[str, str], list[Burst]] = {}
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        servers = {
            mode: stack.enter_context(Server(mode, plan.hashing, Path(folder))) for mode in MODES
        }
        small = stack.enter_context(Server("async", "small", Path(folder)))
        for server in [*servers.values(), small]:  # warm-up, not measured
            for kind in ("password", "callback"):
                asyncio.run(_burst(server, kind, plan.users))
            if server.mode != "blocking":
                asyncio.run(_burst(server, "password", plan.memory_users))
        for _ in range(plan.rounds):
            for kind in ("password", "callback"):
                for mode in MODES:
                    burst = asyncio.run(_burst(servers[mode], kind, plan.users))
                    bursts.setdefault((kind, mode), []).append(burst)
        for _ in range(plan.memory_rounds):
            # The same burst with argon2's memory left out: what everything else holds.
            burst = asyncio.run(_burst(small, "password", plan.memory_users))
            bursts.setdefault(("memory", "small"), []).append(burst)
            for mode in ("async", "sync"):
                burst = asyncio.run(_burst(servers[mode], "password", plan.memory_users))
                bursts.setdefault(("memory", mode), []).append(burst)
    return list(_rows(plan, bursts))


def _rows(plan: Plan, bursts: dict[tuple[str, str], list[Burst]]) -> Iterator[Measured]:
    load = load_average()
    labels = {"password": "password sign-ins", "callback": "Google callbacks"}
    for kind, label in labels.items():
        lag = _percentile_99([tick for b in bursts[kind, "async"] for tick in b.lags])
        blocked = _percentile_99([tick for b in bursts[kind, "blocking"] for tick in b.lags])
        ratios = [
            a.p99 / b.p99 if b.p99 else 0.0
            for a, b in zip(bursts[kind, "async"], bursts[kind, "blocking"], strict=True)
        ]
        yield Measured(
            group=GROUP,
            name=f"{plan.users} {label}: loop lag p99, async vs sync Auth in async def",
            subject=duration(lag),
            baseline=duration(blocked),
            baseline_name="blocking",
            ratio=lag / blocked if blocked else 0.0,
            n=len(ratios),
            spread=_spread(ratios),
            load=load,
            # The "against over 100 ms" was blocking on asyncio and h11; on
            # uvloop and httptools the blocking callbacks stall the loop less (shown).
            target="<= 5 ms",
            ok=lag <= 0.005,
        )
        times = [b.seconds for b in bursts[kind, "async"]]
        threaded = [b.seconds for b in bursts[kind, "sync"]]
        ratios = [a / b for a, b in zip(times, threaded, strict=True)]
        yield Measured(
            group=GROUP,
            name=f"{plan.users} {label}: burst time, async vs def routes",
            subject=duration(statistics.median(times)),
            baseline=duration(statistics.median(threaded)),
            baseline_name="def routes",
            ratio=statistics.median(ratios),
            n=len(ratios),
            spread=_spread(ratios),
            load=load,
            target="<= 1.1",
            ok=statistics.median(ratios) <= 1.1,
        )
    small = bursts["memory", "small"]
    for mode, name in (("async", "AsyncAuth"), ("sync", "def routes, no limiter")):
        runs = bursts["memory", mode]
        growth = [b.memory_growth for b in runs]
        bounds = [bursts["memory", "async"][0].bound + b.memory_growth - b.blocks for b in small]
        ratios = [g / b for g, b in zip(growth, bounds, strict=True)]
        yield Measured(
            group=GROUP,
            name=f"{plan.memory_users} sign-ins: peak memory growth, {name}",
            subject=_mib(statistics.median(growth)),
            baseline=_mib(statistics.median(bounds)),
            baseline_name="limiter bound + the rest",
            ratio=statistics.median(ratios),
            n=len(ratios),
            spread=_spread(ratios),
            load=load,
            target="<= 1" if mode == "async" else "",
            ok=statistics.median(ratios) <= 1 if mode == "async" else None,
        )


def benchmarks(scale: Scale) -> Iterator[Scenario | Skipped]:
    try:
        import httpx  # noqa: F401, PLC0415
        import uvicorn  # noqa: F401, PLC0415
    except ImportError as missing:
        yield Skipped(group=GROUP, name="FastAPI example on uvicorn", reason=str(missing))
        return
    yield Scenario(group=GROUP, name="FastAPI example on uvicorn", run=lambda: _run(scale))
