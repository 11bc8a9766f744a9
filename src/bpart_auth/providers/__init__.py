"""Identity providers: one module each, behind the `Provider` Protocol (`base`).

A third-party provider implements `Provider`; `Auth` hands it the flow's `FlowState`
(the state, nonce, PKCE verifier and what the provider asked to keep) at both ends of
the redirect.
"""

from bpart_auth.oidc.flowstate import FlowState
from bpart_auth.providers.base import Provider

__all__ = ["FlowState", "Provider"]
