"""One bounded HTTP exchange with an identity provider, and reading its JSON answer.

Everything a provider sends is converted here, where it enters: a network failure,
a timeout, a 5xx or a 429 is `ProviderUnavailable`; an answer is read up to a size
limit (decompressed bytes, so a small gzip bomb cannot grow past it) and refused
beyond it; JSON must be strict (no `NaN`, no `Infinity`, no number that overflows a
float such as `1e400`) and an object. No exception of requests, urllib3 or json
leaves this module.

Examples:
    >>> answer = Answer(status=200, headers={}, body=b'{"issuer": "https://idp.test"}')
    >>> json_object(answer, provider="google", what="discovery")
    {'issuer': 'https://idp.test'}
"""

from __future__ import annotations

import json
import math
import os
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import urlencode

import requests
from requests.structures import CaseInsensitiveDict

from bpart_auth.errors import ProviderUnavailable

__all__ = ["MAX_ANSWER_BYTES", "Answer", "exchange", "json_object"]

MAX_ANSWER_BYTES: Final = 1 << 20
"""The largest answer read from a provider (discovery, keys, token endpoint)."""

_CHUNK_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's answer, read in full and within bounds."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def exchange(
    session: requests.Session,
    method: str,
    url: str,
    *,
    provider: str,
    what: str,
    timeout: float,
    limit: int = MAX_ANSWER_BYTES,
    params: Mapping[str, str] | None = None,
    data: Mapping[str, Any] | str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """Send one request to a provider and read its answer within `limit` bytes.

    Redirects are not followed (a provider's endpoints answer in place). The
    request is prepared and sent through `session` (its headers, auth, cookies,
    hooks and mounted adapters apply), but without `Session.request`'s environment
    scan on every call (`_environment`), and the session's own `verify`, `cert`
    and `proxies` win over `REQUESTS_CA_BUNDLE` and `HTTPS_PROXY`.

    Args:
        session: The session to send with (its CA bundle, proxies, certificate).
        method: `"GET"` or `"POST"`.
        url: The provider's endpoint.
        provider: The provider's name, for errors.
        what: What the request is for (`"discovery"`), for `detail`.
        timeout: Seconds allowed to connect, and between bytes received.
        limit: The most bytes of (decompressed) body to read.
        params: Query parameters to add to `url`.
        data: A form to post (a mapping, or a body already encoded).
        headers: Extra request headers.

    Returns:
        The status, headers and body of any answer but a 5xx or a 429.

    Raises:
        ProviderUnavailable: No answer (network error, timeout), a 5xx or 429
            status, or a body larger than `limit`.
    """

    def unavailable(why: str) -> ProviderUnavailable:
        return ProviderUnavailable(provider=provider, detail=f"{what} at {url}: {why}")

    try:
        prepared, settings = _prepare(
            session, method, url, params=params, data=data, headers=headers
        )
        response = session.send(
            prepared, stream=True, timeout=timeout, allow_redirects=False, **settings
        )
        with response:
            status = response.status_code
            if status >= HTTPStatus.INTERNAL_SERVER_ERROR or status == HTTPStatus.TOO_MANY_REQUESTS:
                raise unavailable(f"HTTP {status}")
            body = bytearray()
            for chunk in response.iter_content(_CHUNK_BYTES):
                body += chunk
                if len(body) > limit:
                    raise unavailable(f"answer larger than {limit} bytes")
            return Answer(status=status, headers=response.headers, body=bytes(body))
    except requests.RequestException as exc:
        raise unavailable(f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Environment:
    """What `requests` reads from the environment for one origin (scheme, host, port)."""

    proxies: Mapping[str, str]  # from HTTP(S)_PROXY, unless NO_PROXY covers the host
    ca_bundle: str | None  # REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE
    netrc: tuple[str, str] | None  # credentials for the host in ~/.netrc


_NO_ENVIRONMENT: Final = _Environment(proxies={}, ca_bundle=None, netrc=None)
_environments: weakref.WeakKeyDictionary[requests.Session, dict[str, _Environment]] = (
    weakref.WeakKeyDictionary()
)
_environments_lock = threading.Lock()


def _origin(url: str) -> str:
    start = url.find("//") + 2
    end = url.find("/", start)
    return url if end < 0 else url[:end]


def _environment(session: requests.Session, url: str) -> _Environment:
    """The environment's settings for `url`'s origin, read once per session and origin.

    `Session.request` reads them on every request (a scan of `os.environ`, the
    `NO_PROXY` match, a look for `~/.netrc`): two thirds of a callback's HTTP cost.
    A provider talks to two or three origins, so they are read once for each; a
    change to the environment after the first request is not seen.
    """
    origin = _origin(url)
    known = _environments.get(session)
    if known is not None:
        found = known.get(origin)
        if found is not None:
            return found
    environment = _Environment(
        proxies=requests.utils.get_environ_proxies(url, no_proxy=session.proxies.get("no_proxy")),
        ca_bundle=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"),
        netrc=requests.utils.get_netrc_auth(url),
    )
    with _environments_lock:
        _environments.setdefault(session, {})[origin] = environment
    return environment


def _form(data: Mapping[str, Any]) -> str:
    """A form body as `requests` encodes one: None values dropped, lists repeated."""
    pairs: list[tuple[str, object]] = []
    for name, value in data.items():
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            value = (value,)  # noqa: PLW2901 - one value or many, as requests takes them
        pairs.extend((name, item) for item in value if item is not None)
    return urlencode(pairs)


def _prepare(
    session: requests.Session,
    method: str,
    url: str,
    *,
    params: Mapping[str, str] | None,
    data: Mapping[str, Any] | str | None,
    headers: Mapping[str, str] | None,
) -> tuple[requests.PreparedRequest, dict[str, Any]]:
    """What `Session.request` would send, and the settings for `Session.send`.

    The session's headers, parameters, auth, cookies and hooks are merged as
    `Session.prepare_request` merges them, and its adapters (retries, proxies, a
    test transport) send the request. Unlike `Session.request`, the session's own
    `verify`, `cert` and `proxies` win over the environment's (`REQUESTS_CA_BUNDLE`,
    `HTTPS_PROXY`), which is read once per origin (`_environment`).
    """
    environment = _environment(session, url) if session.trust_env else _NO_ENVIRONMENT
    merged_headers: CaseInsensitiveDict[Any] = CaseInsensitiveDict(session.headers)
    if isinstance(data, Mapping):
        data = _form(data)
        merged_headers["Content-Type"] = "application/x-www-form-urlencoded"
    if headers:
        merged_headers.update(headers)
    for name, value in list(merged_headers.items()):
        if value is None:  # how a caller removes a session header, in requests
            del merged_headers[name]
    if session.params:
        params = {**session.params, **(params or {})}  # type: ignore[dict-item]
    # PreparedRequest.prepare's steps, in its order; the cookie header is skipped
    # when the session holds no cookie (the usual case: building it costs more
    # than the rest of the headers).
    prepared = requests.PreparedRequest()
    prepared.prepare_method(method)
    prepared.prepare_url(url, params or None)
    prepared.prepare_headers(merged_headers)
    if session.cookies:
        prepared.prepare_cookies(session.cookies)
    else:  # what prepare_cookies leaves, which Session.send reads on a redirect answer
        prepared._cookies = requests.cookies.RequestsCookieJar()  # type: ignore[attr-defined]  # noqa: SLF001
    prepared.prepare_body(data, None, None)
    prepared.prepare_auth(session.auth or environment.netrc, url)
    prepared.prepare_hooks(session.hooks)
    verify = session.verify
    if (verify is True or verify is None) and environment.ca_bundle:
        verify = environment.ca_bundle  # what requests does when none is set
    proxies = session.proxies
    if environment.proxies:
        proxies = {**environment.proxies, **proxies}
    return prepared, {"verify": verify, "cert": session.cert, "proxies": proxies}


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} overflows")
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_STRICT_JSON: Final = json.JSONDecoder(parse_float=_finite, parse_constant=_refuse_constant)


def json_object(answer: Answer, *, provider: str, what: str) -> dict[str, Any]:
    """The answer's body as a JSON object, or `ProviderUnavailable`.

    Args:
        answer: What `exchange` returned.
        provider: The provider's name, for errors.
        what: What the answer is (`"token endpoint answer"`), for `detail`.

    Returns:
        The decoded object (a fresh dict).

    Raises:
        ProviderUnavailable: The body is not UTF-8, not strict JSON (NaN,
            Infinity, a number too large for a float, integers longer than
            Python allows, nesting too deep), or not an object.
    """
    try:
        document = _STRICT_JSON.decode(answer.body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProviderUnavailable(
            provider=provider, detail=f"{what} (HTTP {answer.status}) is not JSON: {exc}"[:300]
        ) from exc
    if not isinstance(document, dict):
        raise ProviderUnavailable(
            provider=provider,
            detail=f"{what} (HTTP {answer.status}) is a JSON {type(document).__name__}, "
            "not an object",
        )
    return document
