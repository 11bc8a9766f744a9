"""Microsoft ID-token validation, warm: the tenant issuer check against the RSA floor."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from bench._harness import Case, Scale
from bpart_auth.oidc.idtoken import validate_id_token
from bpart_auth.testing import FakeMicrosoft

if TYPE_CHECKING:
    from collections.abc import Iterator

NONCE = "bench-nonce"


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def benchmarks(scale: Scale) -> Iterator[Case]:
    del scale  # one size: a token is a token
    with FakeMicrosoft(tenant="organizations") as fake:
        provider = fake.provider()
        idp = fake._idp  # noqa: SLF001 - the benchmark signs tokens as the fake would
        token = idp.id_token(
            {
                "sub": "pairwise",
                "oid": "aaaaaaaa-0000-0000-0000-000000000001",
                "tid": FakeMicrosoft.WORK_TENANT,
                "preferred_username": "ann@contoso.example",
                "nonce": NONCE,
                "ver": "2.0",
            }
        )
        oidc = provider._oidc  # noqa: SLF001
        keys = oidc.keys()
        issuer_check = provider._issuer_matches  # noqa: SLF001

        def ours() -> None:
            validate_id_token(
                token,
                keys=keys,
                provider="microsoft",
                issuer=issuer_check,
                audience=provider.client_id,
                nonce=NONCE,
            )

        ours()  # warm: discovery and keys fetched once, here
        header, payload, signature = token.split(".")
        signing_input = f"{header}.{payload}".encode()
        raw_signature = _unb64(signature)
        public_key = idp._key.public_key()  # noqa: SLF001

        def floor() -> None:
            public_key.verify(raw_signature, signing_input, padding.PKCS1v15(), hashes.SHA256())

        yield Case(
            group="microsoft",
            name="validate Entra ID token, issuer from its tid, warm (keys fetched at warm-up)",
            subject=ours,
            baseline_name="cryptography RSA verify",
            baseline=floor,
            high=3,
        )
