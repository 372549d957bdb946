"""The dependencies every route shares: the runtime, the authenticated caller and the caller's signature of the
request. One callable each, so FastAPI resolves each once per request (a route that asks for the caller and
for the signature, which needs the caller too, authenticates once). All are coroutines: they run on the event
loop, with no thread-pool hand-off.

Signed submissions: a route adds ``sig: SignedRequest`` and passes it to the use case as ``party_signature``.
The client sends ``Forewarn-Key-Id``, ``Forewarn-Nonce`` and ``Forewarn-Signature`` (base64url Ed25519) over the
signing form of :mod:`forewarn.ledger.keys` (method, path, SHA-256 of the RFC 8785 form of the JSON body).
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from forewarn.core.credentials import Principal
from forewarn.errors import InvalidInput, Unauthenticated
from forewarn.http.runtime import Runtime
from forewarn.ledger.keys import PartySignature, body_digest

bearer = HTTPBearer(auto_error=False, description="a token from POST /v1/token")


def runtime_of(request: Request) -> Runtime:
    """The runtime the application was built with."""
    rt: Runtime = request.app.state.runtime
    return rt


async def runtime(request: Request) -> Runtime:
    """The runtime, as a dependency."""
    return runtime_of(request)


RT = Annotated[Runtime, Depends(runtime)]


def authenticated(rt: Runtime, token: str | None) -> Principal:
    """The principal of a bearer token (401 without one, with a bad one, or with one of an unknown or disabled
    party, or issued for revoked credentials): the one check of every HTTP route and of the WebSocket."""
    if not token:
        raise Unauthenticated("a bearer token is required (POST /v1/token)")
    return rt.authenticate(token)


async def caller(request: Request,
                 creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """The authenticated caller (401 without a valid bearer token of a known, enabled party). The token check (an
    Ed25519/RSA verification, cached per token, and one indexed read of the party and its credentials, once per
    request: FastAPI resolves this dependency once) is well under a millisecond."""
    token = creds.credentials if creds is not None and creds.scheme.lower() == "bearer" else None
    return authenticated(runtime_of(request), token)


Caller = Annotated[Principal, Depends(caller)]


async def signed_request(
    request: Request, who: Caller,
    key_id: Annotated[str | None, Header(alias="Forewarn-Key-Id", max_length=100)] = None,
    nonce: Annotated[str | None, Header(alias="Forewarn-Nonce", max_length=200)] = None,
    signature: Annotated[str | None, Header(alias="Forewarn-Signature", max_length=200)] = None,
) -> PartySignature | None:
    """The caller's signature of this request, or None when it is unsigned. All three headers or none."""
    given = [h for h in (key_id, nonce, signature) if h]
    if not given:
        return None
    if len(given) != 3 or key_id is None or nonce is None or signature is None:
        raise InvalidInput("a signed request needs Forewarn-Key-Id, Forewarn-Nonce and Forewarn-Signature")
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, too deep, an integer too long
        raise InvalidInput("a signed request body must be JSON") from exc
    if not isinstance(body, dict):
        raise InvalidInput("a signed request body must be a JSON object")
    return PartySignature(party_id=who.party_id, key_id=key_id, nonce=nonce, method=request.method,
                          path=request.url.path, body_sha256=body_digest(body), signature=signature, body=body)


SignedRequest = Annotated[PartySignature | None, Depends(signed_request)]
