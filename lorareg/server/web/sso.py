"""Single sign-on for the web UI: OpenID Connect authorization-code flow with PKCE, ``state`` and ``nonce``.

Configured by ``LORAREG_OIDC_ISSUER``, ``LORAREG_OIDC_CLIENT_ID``, ``LORAREG_OIDC_CLIENT_SECRET`` and
``LORAREG_OIDC_ROLES`` (``server/config.py``); without an issuer these routes answer 404.

1. ``GET /auth/oidc/login?next=/…`` — discovery (``/.well-known/openid-configuration``), a pending login
   (``lorareg.registry.SsoLogins``: state, nonce, PKCE verifier, kept in the database so any replica can
   take the callback), a cookie binding the ``state`` to this browser (against login CSRF), and a redirect
   to the IdP with ``code_challenge`` (S256) — built by authlib's OAuth 2 client.
2. ``GET /auth/oidc/callback?code&state`` — the state must equal the browser's cookie and a pending login
   (used once); the code is exchanged with the verifier (authlib); the ID token is checked with joserfc
   (authlib's JOSE library): signature under the IdP's JWKS, ``iss`` = the issuer, ``aud`` contains the
   client id, ``exp``/``iat``/``nbf``, and ``nonce`` = the pending login's. Then the groups claim is mapped
   to one role (403 when nothing maps) and a session starts (``SsoLogins.sign_in``).
"""

from __future__ import annotations

import hmac
import time
from typing import Any
from urllib.parse import urljoin

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from lorareg.errors import AuthError, ForbiddenError, NotFoundError, RemoteError
from lorareg.registry import RoleMap, SsoLogins
from lorareg.server.config import Settings
from lorareg.server.deps import RegistryDep, SettingsDep
from lorareg.server.web import sessions
from lorareg.server.web.access import local_path

router = APIRouter(include_in_schema=False)

STATE_COOKIE = "lorareg_oidc_state"
CALLBACK_PATH = "/auth/oidc/callback"
IDP_TIMEOUT_S = 10.0
ID_TOKEN_LEEWAY_S = 60  # clock skew tolerated on exp / iat / nbf
ALGORITHMS = ["RS256", "ES256", "PS256", "EdDSA"]


@router.get("/auth/oidc/login")
async def login(request: Request, registry: RegistryDep, settings: SettingsDep, next: str = "/") -> Response:  # noqa: A002
    from authlib.integrations.httpx_client import OAuth2Client

    issuer, client_id, secret = _configured(settings)
    meta = await run_in_threadpool(discover, issuer)
    pending = await run_in_threadpool(SsoLogins(registry).begin, next_path=local_path(next))
    client = OAuth2Client(client_id, secret, scope="openid profile email", code_challenge_method="S256")
    url, _ = client.create_authorization_url(
        meta["authorization_endpoint"],
        state=pending.state,
        nonce=pending.nonce,
        code_verifier=pending.verifier,
        redirect_uri=redirect_uri(request, settings),
    )
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        pending.state,
        max_age=600,
        httponly=True,
        samesite="lax",  # sent on the IdP's top-level redirect back, never on cross-site subrequests
        secure=sessions.is_secure(request, settings.public_url),
        path="/auth/oidc",
    )
    return response


@router.get(CALLBACK_PATH)
async def callback(
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    code: str = "",
    state: str = "",
    error: str = "",
) -> Response:
    issuer, client_id, secret = _configured(settings)
    if error:
        raise AuthError(f"the identity provider refused the sign-in: {error[:100]}")
    browser_state = request.cookies.get(STATE_COOKIE, "")
    if not state or not code or not hmac.compare_digest(browser_state.encode(), state.encode()):
        raise AuthError("sign-in state does not match this browser; start the sign-in again")
    pending = await run_in_threadpool(SsoLogins(registry).finish, state)
    meta = await run_in_threadpool(discover, issuer)
    tokens = await run_in_threadpool(
        _exchange, meta, client_id, secret, code, pending.verifier, redirect_uri(request, settings)
    )
    jwks = await run_in_threadpool(_get_json, meta["jwks_uri"])
    claims = validate_id_token(
        str(tokens.get("id_token", "")),
        jwks,
        issuer=issuer,
        client_id=client_id,
        nonce=pending.nonce,
        now=int(time.time()),
    )
    grant = RoleMap.parse(settings.oidc_roles).grant_for(_groups(claims, settings.oidc_groups_claim))
    if grant is None:
        raise ForbiddenError(
            "none of your groups is mapped to a lorareg role; ask an admin (LORAREG_OIDC_ROLES)"
        )
    username = str(claims.get("preferred_username") or claims.get("email") or claims["sub"])
    cookie = await run_in_threadpool(
        SsoLogins(registry).sign_in,
        username=username,
        grant=grant,
        previous_cookie=request.cookies.get(sessions.SESSION_COOKIE),
    )
    response = RedirectResponse(pending.next_path, status_code=303)
    sessions.set_session_cookie(response, cookie, secure=sessions.is_secure(request, settings.public_url))
    response.delete_cookie(STATE_COOKIE, path="/auth/oidc")
    return response


def validate_id_token(
    id_token: str, jwks: dict[str, Any], *, issuer: str, client_id: str, nonce: str, now: int
) -> dict[str, Any]:
    """The ID token's claims once signature, ``iss``, ``aud``, ``exp``/``iat``/``nbf`` and ``nonce`` hold.

    Raises:
        AuthError: naming the first check that failed (never a traceback).
    """
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    try:
        token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=ALGORITHMS)  # type: ignore[arg-type]
        jwt.JWTClaimsRegistry(
            now=now,
            leeway=ID_TOKEN_LEEWAY_S,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as e:
        raise AuthError(f"the identity provider's ID token was refused: {type(e).__name__}: {e}"[:300]) from e
    return dict(token.claims)


def discover(issuer: str) -> dict[str, Any]:
    """The IdP's OpenID configuration; its ``issuer`` must be the configured one (OIDC Discovery 4.3)."""
    meta = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if str(meta.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise RemoteError(
            f"identity provider says its issuer is {str(meta.get('issuer'))[:100]!r}, not {issuer!r}"
        )
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(meta.get(name), str):
            raise RemoteError(f"identity provider's configuration lacks {name}")
    return meta


def redirect_uri(request: Request, settings: Settings) -> str:
    base = settings.public_url or str(request.base_url)
    return urljoin(base.rstrip("/") + "/", CALLBACK_PATH.lstrip("/"))


def sso_configured(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def _configured(settings: Settings) -> tuple[str, str, str | None]:
    if not settings.oidc_issuer or not settings.oidc_client_id:
        raise NotFoundError("single sign-on is not configured on this registry")
    return settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret


def _exchange(
    meta: dict[str, Any], client_id: str, secret: str | None, code: str, verifier: str, redirect: str
) -> dict[str, Any]:
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.oauth2 import OAuth2Error

    with OAuth2Client(client_id, secret, timeout=IDP_TIMEOUT_S) as client:
        try:
            token = client.fetch_token(
                meta["token_endpoint"], grant_type="authorization_code", code=code, code_verifier=verifier,
                redirect_uri=redirect,
            )  # fmt: skip
        except (OAuth2Error, httpx.HTTPError) as e:
            raise AuthError(f"the identity provider refused the code exchange: {e}"[:300]) from e
    return dict(token)


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=IDP_TIMEOUT_S, follow_redirects=False)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as e:
        raise RemoteError(f"identity provider at {url[:100]} failed: {e}"[:300]) from e
    if not isinstance(data, dict):
        raise RemoteError(f"identity provider at {url[:100]} answered {type(data).__name__}, not an object")
    return data


def _groups(claims: dict[str, Any], claim: str) -> list[str]:
    value = claims.get(claim, [])
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []
