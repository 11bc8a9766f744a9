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
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

import requests

from bpart_auth.errors import ProviderUnavailable

if TYPE_CHECKING:
    from collections.abc import Mapping

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

    Redirects are not followed (a provider's endpoints answer in place), and the
    session's `verify` is passed explicitly: `requests` would otherwise let a
    `REQUESTS_CA_BUNDLE` environment variable override it.

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
        response = session.request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            timeout=timeout,
            verify=session.verify,
            allow_redirects=False,
            stream=True,
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
