"""FastAPI dependencies: the registry, the settings and the caller, as ``Annotated`` aliases for routes.

Tokens are read from the ``Authorization: Bearer lrg_…`` header only. A request that carries a token-like
query parameter is refused outright (400) rather than ignored, because a token in a URL has already leaked
into proxy and browser logs and its owner should learn that now. Authentication itself is the service's
(:meth:`Registry.authenticate`); this module only extracts the header.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lorareg.errors import AuthError, InputError
from lorareg.registry import Principal, Registry
from lorareg.server.config import Settings

_TOKEN_QUERY_NAMES = frozenset({"token", "access_token", "api_key", "apikey", "auth"})


def get_registry(request: Request) -> Registry:
    """The app's registry service, built once by ``create_app``."""
    registry: Registry = request.app.state.registry
    return registry


def get_settings(request: Request) -> Settings:
    """The app's frozen settings."""
    settings: Settings = request.app.state.settings
    return settings


def bearer_token(request: Request) -> str | None:
    """The bearer token of the ``Authorization`` header, or None when there is none.

    Raises:
        InputError: a token was put in the query string.
        AuthError: an ``Authorization`` header of another scheme, or an empty bearer value.
    """
    if _TOKEN_QUERY_NAMES.intersection(k.lower() for k in request.query_params):
        raise InputError("tokens are accepted only in the Authorization header, never in the URL; revoke it")
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthError("Authorization header must be 'Bearer lrg_…'")
    return value.strip()


def require_principal(request: Request, registry: Annotated[Registry, Depends(get_registry)]) -> Principal:
    """The authenticated caller; 401 when no token or an unusable one was sent."""
    secret = bearer_token(request)
    if secret is None:
        raise AuthError(
            "this action needs a token: pass --token lrg_… or set LORAREG_TOKEN "
            "(over HTTP: 'Authorization: Bearer lrg_…')"
        )
    return registry.authenticate(secret)


def optional_principal(request: Request, registry: Registry) -> Principal | None:
    """The caller when it sent a token (a public route that shows more to its owner), else None."""
    secret = bearer_token(request)
    return None if secret is None else registry.authenticate(secret)


RegistryDep = Annotated[Registry, Depends(get_registry)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PrincipalDep = Annotated[Principal, Depends(require_principal)]
