"""Request dependencies: the app state and API-key authorisation, as Annotated aliases for routes."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.errors import ServiceError
from service.keys import Role, hash_key
from service.state import AppState

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (read or admin role)")
# Prometheus can only send an Authorization header, so a key is also accepted as a Bearer token.
_bearer = HTTPBearer(auto_error=False, description="an API key as a Bearer token")


def get_state(request: Request) -> AppState:
    """The AppState the lifespan stored."""
    state: AppState = request.app.state.dprime
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def _role(state: AppState, key: str | None) -> Role:
    if not key:
        raise ServiceError("unauthorized", "missing API key: send it in the X-API-Key header")
    admin = state.settings.admin_key
    if admin is not None and hmac.compare_digest(hash_key(key), hash_key(admin.get_secret_value())):
        return "admin"
    role = state.keys.role_of(key)
    if role is None:
        raise ServiceError("unauthorized", "the API key is unknown or revoked")
    return role


def presented_key(
    header: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The key from X-API-Key, else from a Bearer token."""
    return header or (bearer.credentials if bearer else None)


KeyDep = Annotated[str | None, Depends(presented_key)]


def require_read(state: StateDep, key: KeyDep) -> Role:
    """Any valid key."""
    return _role(state, key)


def require_admin(state: StateDep, key: KeyDep) -> Role:
    """An admin key."""
    role = _role(state, key)
    if role != "admin":
        raise ServiceError("forbidden", f"this route needs an admin key; the key sent has role {role!r}")
    return role


ReadKey = Annotated[Role, Depends(require_read)]
AdminKey = Annotated[Role, Depends(require_admin)]
