"""App worker processes for the scale-out test: the Flask example, one `Auth` per process.

Run as a script (`python _workers.py CONFIG.json NAME`), it builds an `Auth` from the
JSON config (SQLStore on the shared database, Google and Microsoft on the test
oidc-provider, optionally a Redis throttle), loads the Flask example by path, serves it
with werkzeug on 127.0.0.1:<ephemeral port>, prints `PORT <n>` and serves until its
stdin reaches EOF: when the test closes the pipe, or dies, the worker exits by itself.
Every answer carries `X-Worker: NAME`, so a test can tell which process served it.

In the test process, `start_workers(config, names, workdir)` starts them side by side
and returns once each has printed its port; `Worker.stop()` closes the pipe and waits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

READY_TIMEOUT = 30.0  # two cold Python start-ups on a busy 2-core machine


@dataclasses.dataclass
class Worker:
    """A running worker process: its name, URL and log."""

    name: str
    process: subprocess.Popen[bytes]
    log_file: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> int | None:
        """Close its stdin (it shuts down), wait; kill it if it hangs. Safe to call twice."""
        process = self.process
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(timeout=timeout)


def start_workers(config: dict[str, Any], names: list[str], workdir: Path) -> list[Worker]:
    """Start one worker per name with this config; return them once all are listening."""
    import bpart_auth  # noqa: PLC0415 - only the test process needs to know where it lives

    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "worker-config.json"
    config_file.write_text(json.dumps(config, indent=2))
    # The workers import the bpart_auth this test imported (a worktree's src first).
    source = str(Path(bpart_auth.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    workers: list[Worker] = []
    try:
        for name in names:
            log_file = workdir / f"worker-{name}.log"
            with log_file.open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, __file__, str(config_file), name],
                    stdin=subprocess.PIPE,  # the lifeline: EOF ends the worker
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=env,
                )
            workers.append(Worker(name, process, log_file))
        for worker in workers:  # they start in parallel; collect each port line
            worker.port = _wait_for_port(worker)
    except BaseException:
        for worker in workers:
            worker.stop(timeout=5)
        raise
    return workers


def _wait_for_port(worker: Worker) -> int:
    stdout = worker.process.stdout
    assert stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                msg = f"worker {worker.name} printed no port in {READY_TIMEOUT:.0f}s"
                raise RuntimeError(f"{msg}\n{worker.log_tail()}")
            if not selector.select(remaining):
                continue
            chunk = os.read(stdout.fileno(), 4096)
            if not chunk:
                code = worker.process.wait(timeout=5)
                msg = f"worker {worker.name} exited (code {code}) before listening"
                raise RuntimeError(f"{msg}\n{worker.log_tail()}")
            buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode()
    if not line.startswith("PORT "):
        raise RuntimeError(f"worker {worker.name} printed {line!r} instead of PORT")
    return int(line.removeprefix("PORT "))


# --- in the worker process ---------------------------------------------------------------


def _providers(oidc: dict[str, Any]) -> list[Any]:
    """Google and Microsoft ("organizations") on the test oidc-provider, trusting its CA."""
    import requests  # noqa: PLC0415

    from bpart_auth import GoogleProvider, MicrosoftProvider  # noqa: PLC0415

    def session() -> requests.Session:
        http = requests.Session()
        http.verify = oidc["ca_bundle"]
        http.trust_env = False  # else REQUESTS_CA_BUNDLE would replace `verify`
        return http

    return [
        GoogleProvider(
            client_id=oidc["google_client_id"],
            client_secret=oidc["google_client_secret"],
            metadata_url=f"{oidc['origin']}/google/.well-known/openid-configuration",
            session=session(),
        ),
        MicrosoftProvider(
            client_id=oidc["microsoft_client_id"],
            client_secret=oidc["microsoft_client_secret"],
            authority_host=f"{oidc['origin']}/microsoft",
            tenant="organizations",
            session=session(),
        ),
    ]


def build_auth(config: dict[str, Any]) -> Any:
    """The `Auth` every worker builds alike: only the process differs."""
    from bpart_auth import Auth, SQLStore, Throttle  # noqa: PLC0415
    from bpart_auth.testing import CHEAP_FOR_TESTS  # noqa: PLC0415
    from bpart_auth.throttling import RedisThrottle  # noqa: PLC0415

    store = SQLStore(config["database_url"], engine_options=config["engine_options"])
    redis = config.get("redis")
    throttle = None  # SQLStore's own throttle backend: failures counted in PostgreSQL
    if redis is not None:
        throttle = Throttle(backend=RedisThrottle(redis["url"], prefix=redis["prefix"]))
    return Auth(
        store,
        secret_key=config["secret_key"],
        providers=_providers(config["oidc"]),
        redirect_uri=config["redirect_uri"],
        password_hashing=CHEAP_FOR_TESTS,
        throttle=throttle,
    )


def _tagged(app: Any, name: str) -> Any:
    """The WSGI app, with `X-Worker: name` on every answer."""

    def tagged_app(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            return start_response(status, [*headers, ("X-Worker", name)], *exc_info)

        return app(environ, start)

    return tagged_app


def main(config_file: str, name: str) -> None:
    from werkzeug.serving import make_server  # noqa: PLC0415

    config = json.loads(Path(config_file).read_text())
    spec = importlib.util.spec_from_file_location("flask_example_in_worker", config["example"])
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    app = example.create_app(
        build_auth(config), secret_key=config["flask_secret_key"], secure_cookies=False
    )
    server = make_server("127.0.0.1", 0, _tagged(app, name), threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    sys.stdout.write(f"PORT {server.port}\n")
    sys.stdout.flush()
    sys.stdin.buffer.read()  # until EOF: the test closed the pipe or is gone
    server.shutdown()
    thread.join(timeout=5)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
