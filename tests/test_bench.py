"""The benchmark harness's own logic: paired ratios, the docs writer, the transport.

Nothing here times anything (speed belongs in `bench/`); these check that what the
harness reports and writes is what it measured.
"""

import datetime as dt
import json
import re
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests
from bench._docs import RunInfo, write_docs
from bench._harness import Case, Result, Skipped, row
from bench._transport import InProcessTransport, catch_strays
from bench.bench_async import PLANS, Burst
from bench.bench_async import _rows as _async_rows
from bench.bench_hostile import hostile

URL = "https://idp.bench.test/token"


def _case(group="flow"):
    return Case(
        group=group,
        name="a case",
        baseline_name="floor",
        baseline=lambda: None,
        subject=lambda: None,
        high=2,
    )


def _result(subject, baseline, group="flow"):
    return Result(
        case=_case(group),
        subject_samples=subject,
        baseline_samples=baseline,
        subject_calls=1,
        baseline_calls=1,
        load=1.5,
    )


def _run():
    return RunInfo(
        started=dt.datetime(2026, 12, 6, 9, 30, tzinfo=dt.timezone.utc),
        scale="full",
        repeats=9,
        sample_seconds=0.2,
        commit="abc1234",
        load_start=0.5,
        load_end=0.7,
    )


def test_ratio_is_the_median_of_paired_ratios_and_spread_their_iqr():
    result = _result([2.0, 3.0, 8.0, 4.0, 5.0], [1.0, 1.0, 2.0, 1.0, 1.0])
    # pairs: 2, 3, 4, 4, 5 -> median 4, quartiles 3 and 4
    assert result.ratios == [2.0, 3.0, 4.0, 4.0, 5.0]
    assert result.ratio == 4.0
    assert result.spread == pytest.approx(0.25)
    assert result.verdict == "MISSED"
    assert result.target == "<= 2"


def test_a_case_has_exactly_one_subject():
    with pytest.raises(ValueError, match="exactly one"):
        Case(group="g", name="n", baseline_name="b", baseline=lambda: None)
    with pytest.raises(ValueError, match="exactly one"):
        Case(
            group="g",
            name="n",
            baseline_name="b",
            baseline=lambda: None,
            subject=lambda: None,
            fresh=lambda: lambda: None,
        )


@pytest.mark.parametrize(
    ("size", "suffix"),
    [
        pytest.param(1 << 20, "", id="1-MiB-password"),
        pytest.param(1 << 20, "@example.com", id="1-MiB-email"),
        pytest.param(4 << 10, "@example.com", id="quick-email"),
        pytest.param(65, "", id="odd-size"),
    ],
)
def test_hostile_values_have_the_size_and_the_pathological_form(size, suffix):
    value = hostile(size, suffix=suffix)
    assert len(value.encode()) == size
    assert value.endswith(suffix)
    marks = (size - 1 - len(suffix)) // 4
    assert value.startswith("a" + "\u0301" * marks + "\u0316" * marks)


PAGE = """# Benchmarks

Prose stays.

<!-- bench:run -->
old run
<!-- /bench:run -->

More prose.

<!-- bench:flow -->
| old | table |
<!-- /bench:flow -->
"""


def test_write_docs_replaces_only_the_generated_blocks(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text(PAGE, encoding="utf-8")
    write_docs(page, _run(), [_result([2.0], [1.0]), Skipped(group="flow", name="pg", reason="no")])
    text = page.read_text(encoding="utf-8")
    assert "Prose stays." in text
    assert "More prose." in text
    assert "old run" not in text
    assert "| old | table |" not in text
    assert "Full run of commit abc1234 on 2026-12-06 09:30 UTC" in text
    assert "load average 0.50 at the start, 0.70 at the end" in text
    assert (
        "| a case | 2 s         | 1 s      | floor | 2.000 | 1 | 0.0% | 1.50 | <= 2   | ok |"
        in text
    )
    assert "| pg     | skipped: no |" in text


@pytest.mark.parametrize(
    ("page", "results", "message"),
    [
        pytest.param(
            PAGE.replace("bench:flow", "bench:models"),
            [_result([2.0], [1.0])],
            r"no block for \['flow'\]; blocks no benchmark fills: \['models'\]",
            id="group-without-block-and-stale-block",
        ),
        pytest.param(
            PAGE,
            [_result([2.0], [1.0], group="idtoken")],
            r"no block for \['idtoken'\]; blocks no benchmark fills: \['flow'\]",
            id="renamed-group",
        ),
    ],
)
def test_write_docs_refuses_a_page_that_does_not_match_the_run(tmp_path, page, results, message):
    path = tmp_path / "benchmarks.md"
    path.write_text(page, encoding="utf-8")
    with pytest.raises(SystemExit, match=message):
        write_docs(path, _run(), results)
    assert path.read_text(encoding="utf-8") == page


def _token_endpoint(request):
    form = dict(parse_qsl(request.body))
    return 200, {"Content-Type": "application/json"}, json.dumps({"code": form["code"]})


def test_transport_answers_its_routes_through_a_real_session():
    transport = InProcessTransport()
    transport.add_callback("POST", URL, callback=_token_endpoint)
    response = transport.session().post(URL, data={"code": "abc"}, timeout=1)
    assert response.status_code == 200
    assert response.json() == {"code": "abc"}
    assert response.headers["content-type"] == "application/json"
    assert transport.requests_seen == {f"POST {URL}": 1}
    assert transport.strays == 0


@pytest.mark.parametrize(
    ("method", "url"),
    [
        pytest.param("GET", URL, id="other-method"),
        pytest.param("POST", "https://idp.bench.test/other", id="other-path"),
        pytest.param("POST", "https://example.com/token", id="other-host"),
    ],
)
def test_transport_never_lets_a_request_reach_the_network(method, url):
    transport = InProcessTransport()
    transport.add_callback("POST", URL, callback=_token_endpoint)
    with pytest.raises(requests.ConnectionError, match="no in-process route"):
        transport.session().request(method, url, timeout=1)
    assert transport.request_count == 0


def test_catch_strays_routes_and_counts_another_sessions_requests():
    transport = InProcessTransport()
    transport.add_callback("POST", URL, callback=_token_endpoint)
    with catch_strays(transport), requests.Session() as own_session:
        response = own_session.post(URL, data={"code": "xyz"}, timeout=1)
        with pytest.raises(requests.ConnectionError, match="no in-process route"):
            own_session.get("https://example.com/", timeout=1)
        transport.session().post(URL, data={"code": "mounted"}, timeout=1)
    assert response.json() == {"code": "xyz"}
    assert transport.strays == 2
    assert transport.request_count == 2
    assert requests.Session().get_adapter(URL) is not transport  # restored afterwards


def _burst(seconds, lags=(0.0,), growth=0, bound=64 * 2**20, blocks=64 * 2**20):
    lags = tuple(lags)
    return Burst(
        seconds=seconds,
        p99=max(lags),
        lags=lags,
        ticks=len(lags),
        memory_growth=growth,
        bound=bound,
        blocks=blocks,
    )


def test_async_rows_compare_each_figure_with_its_own_baseline():
    quiet = [0.001] * 99
    bursts = {
        # Lag: the 99th percentile of all rounds' ticks together (200 ticks: the 2nd
        # largest), not the median of each round's.
        ("password", "async"): [_burst(10.0, [*quiet, 0.003]), _burst(11.0, [*quiet, 0.009])],
        ("password", "blocking"): [_burst(10.5, [*quiet, 0.3]), _burst(10.5, [*quiet, 0.5])],
        ("password", "sync"): [_burst(10.0), _burst(10.0)],
        ("callback", "async"): [_burst(1.0, [*quiet, 0.010]), _burst(1.0, [*quiet, 0.010])],
        ("callback", "blocking"): [_burst(1.0, [0.02]), _burst(1.0, [0.02])],
        ("callback", "sync"): [_burst(0.5), _burst(0.5)],
        ("memory", "async"): [_burst(1, growth=60 * 2**20), _burst(1, growth=62 * 2**20)],
        ("memory", "sync"): [_burst(1, growth=640 * 2**20), _burst(1, growth=600 * 2**20)],
        # The same burst with 32 KiB hashes: what the rest holds, less its argon2 blocks.
        ("memory", "small"): [
            _burst(1, growth=2**20 + 64 * 2**10, bound=200 * 2**10, blocks=64 * 2**10),
            _burst(1, growth=2**20 + 64 * 2**10, bound=200 * 2**10, blocks=64 * 2**10),
        ],
    }
    rows = {row.name: row for row in _async_rows(PLANS["full"], bursts)}
    lag = rows["50 password sign-ins: loop lag p99, async vs sync Auth in async def"]
    assert (lag.subject, lag.baseline, lag.n, lag.verdict) == ("3 ms", "300 ms", 2, "ok")
    assert lag.ratio == pytest.approx(0.01)  # 3 ms / 300 ms
    throughput = rows["50 password sign-ins: burst time, async vs def routes"]
    assert (throughput.ratio, throughput.verdict) == (pytest.approx(1.05), "ok")
    callbacks = rows["50 Google callbacks: loop lag p99, async vs sync Auth in async def"]
    assert callbacks.verdict == "MISSED"  # 10 ms > 5 ms
    assert rows["50 Google callbacks: burst time, async vs def routes"].verdict == "MISSED"
    memory = rows["100 sign-ins: peak memory growth, AsyncAuth"]
    # Against the limiter's bound plus what the same burst holds besides argon2's blocks.
    assert (memory.subject, memory.baseline, memory.verdict) == ("61.0 MiB", "65.0 MiB", "ok")
    unbounded = rows["100 sign-ins: peak memory growth, def routes, no limiter"]
    assert (unbounded.ratio, unbounded.verdict) == (pytest.approx(620 / 65), "")  # median
    assert row(unbounded)[-2:] == ["", ""]


def _budget_result(subject, baseline, *, budget, high):
    case = Case(
        group="flow",
        name="a callback",
        baseline_name="floor",
        baseline=lambda: None,
        subject=lambda: None,
        budget=budget,
        high=high,
    )
    return Result(
        case=case,
        subject_samples=subject,
        baseline_samples=baseline,
        subject_calls=1,
        baseline_calls=1,
        load=1.0,
    )


def test_a_time_budget_shows_beside_the_ratio_bound_and_both_must_hold():
    within = _budget_result([6e-4, 6e-4, 6e-4], [5e-5] * 3, budget=7e-4, high=15)
    assert within.target == "<= 700 us, ratio <= 15"
    assert within.verdict == "ok"
    slow = _budget_result([8e-4] * 3, [1e-4] * 3, budget=7e-4, high=15)  # ratio 8: ok
    assert slow.verdict == "MISSED"
    heavy = _budget_result([6e-4] * 3, [2e-5] * 3, budget=7e-4, high=15)  # 0.6 ms, ratio 30
    assert heavy.verdict == "MISSED"
    alone = _budget_result([6e-4] * 3, [2e-5] * 3, budget=7e-4, high=None)
    assert (alone.target, alone.verdict) == ("<= 700 us", "ok")


GROUP_NAMES = r'group="([a-z-]+)"|GROUP = "([a-z-]+)"|"group": "([a-z-]+)"'


def test_every_group_the_benchmarks_name_has_a_block_in_the_docs_page():
    """`--write-docs` refuses a run whose groups the page lacks: find that before a run."""
    bench = Path(__file__).resolve().parents[1] / "bench"
    named = set()
    for module in bench.glob("bench_*.py"):
        text = module.read_text()
        for literal, constant, key in re.findall(GROUP_NAMES, text):
            named.add(literal or constant or key)
        if 'group=f"store-{backend}"' in text:
            named |= {"store-sqlite", "store-postgresql"}
    page = (bench.parent / "docs" / "benchmarks.md").read_text()
    blocks = set(re.findall(r"<!-- bench:([a-z-]+) -->", page)) - {"run"}
    assert named == blocks
