"""The redirect-flow core, shared by every provider: internal.

- `flowstate`: the sealed, single-use flow state (`FlowState`, `FlowSealer`) and the
  `return_to` check;
- `client`: the OpenID Connect client the providers share (discovery, the
  authorization URL, the code exchange);
- `transport`: provider HTTP through the provider's one `requests.Session`;
- `jwks`: the providers' signing keys, cached (Cache-Control, single flight,
  stale-if-error);
- `idtoken`: ID-token validation (google-auth for the signature and times, the OIDC
  claims here).

Apps never import from here. A third-party `Provider` gets the one name it needs,
`FlowState`, from `bpart_auth.providers`.
"""
