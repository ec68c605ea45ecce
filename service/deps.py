"""Request dependencies: the app state and API-key authorisation, as Annotated aliases for routes."""

from __future__ import annotations

import hmac
import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.audit import AuditAction
from service.error_catalogue import ServiceError
from service.keys import Role, hash_key
from service.repositories import AuditRepository
from service.state import AppState

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (read or admin role)")
# Prometheus can only send an Authorization header, so a key is also accepted as a Bearer token.
_bearer = HTTPBearer(auto_error=False, description="an API key as a Bearer token")

# The name the bootstrap key (DPRIME_ADMIN_KEY) has in logs and the audit trail.
BOOTSTRAP_KEY_NAME = "bootstrap-admin"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name (for logs and the audit trail), its role and the collections it may use."""

    name: str
    role: Role
    collections: frozenset[str] | None = None  # None: every collection

    def may_use(self, collection: str) -> bool:
        """The key reaches this collection."""
        return self.collections is None or collection in self.collections

    def check(self, collection: str) -> None:
        """Raise collection_forbidden unless the key reaches this collection."""
        if not self.may_use(collection):
            raise ServiceError(
                "collection_forbidden",
                f"this key may not use collection {collection!r}; it is limited to {sorted(self.collections or ())}",
                {"collection": collection},
            )

    def scope(self, requested: str | None) -> list[str] | None:
        """The collections a read may see: the one requested (checked), else all the key reaches (None: all)."""
        if requested is not None:
            self.check(requested)
            return [requested]
        return None if self.collections is None else sorted(self.collections)


def get_state(request: Request) -> AppState:
    """The AppState the lifespan stored."""
    state: AppState = request.app.state.dprime
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def client_address(request: Request) -> str:
    """The client's address as the server saw it (behind a proxy: as uvicorn's --forwarded-allow-ips resolves)."""
    return request.client.host if request.client else "unknown"


def _authenticate(request: Request, state: AppState, key: str | None) -> Principal:
    client = client_address(request)
    wait = state.auth_limiter.retry_after(client)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise ServiceError(
            "too_many_failed_keys",
            f"{state.auth_limiter.max_failures} wrong API keys from {client} within "
            f"{state.auth_limiter.window_s:g} s; retry in {seconds} s",
            {"retry_after_s": seconds},
            headers={"Retry-After": str(seconds)},
        )
    if not key:
        raise ServiceError("unauthorized", "missing API key: send it in the X-API-Key header")
    principal = _principal(state, key)
    if principal is None:
        state.auth_limiter.failed(client)
        raise ServiceError("unauthorized", "the API key is unknown, revoked or expired")
    request.state.key_name = principal.name
    return principal


def _principal(state: AppState, key: str) -> Principal | None:
    admin = state.settings.admin_key
    # Both sides hashed first, so compare_digest sees equal lengths and its time says nothing about the key.
    if admin is not None and hmac.compare_digest(hash_key(key), hash_key(admin.get_secret_value())):
        return Principal(name=BOOTSTRAP_KEY_NAME, role="admin")
    info = state.keys.lookup(key)
    if info is None:
        return None
    scope = None if info.collections is None else frozenset(info.collections)
    return Principal(name=info.name, role=info.role, collections=scope)


def presented_key(
    header: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The key from X-API-Key, else from a Bearer token."""
    return header or (bearer.credentials if bearer else None)


KeyDep = Annotated[str | None, Depends(presented_key)]


def require_read(request: Request, state: StateDep, key: KeyDep) -> Principal:
    """Any valid key."""
    return _authenticate(request, state, key)


def require_admin(request: Request, state: StateDep, key: KeyDep) -> Principal:
    """An admin key."""
    principal = _authenticate(request, state, key)
    if principal.role != "admin":
        raise ServiceError("forbidden", f"this route needs an admin key; the key sent has role {principal.role!r}")
    return principal


ReadKey = Annotated[Principal, Depends(require_read)]
AdminKey = Annotated[Principal, Depends(require_admin)]


@dataclass(frozen=True)
class Auditor:
    """Records this request's actions in the audit trail, under the caller's key name and the request id."""

    log: AuditRepository
    key_name: str
    request_id: str | None
    principal: Principal

    def record(
        self, action: AuditAction, target: str | None, outcome: str = "ok", details: dict[str, Any] | None = None
    ) -> None:
        """Append one entry."""
        self.log.record(self.key_name, action, target, self.request_id, outcome, details)


def admin_auditor(request: Request, state: StateDep, principal: AdminKey) -> Auditor:
    """An admin key, and the auditor of what it does."""
    return Auditor(state.audit, principal.name, getattr(request.state, "request_id", None), principal)


AuditedAdmin = Annotated[Auditor, Depends(admin_auditor)]
