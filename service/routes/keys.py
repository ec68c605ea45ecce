"""GET /v1/keys/me: which key a request carries and its role (the console hides what the role cannot use)."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import KeyDep, ReadKey, StateDep
from service.openapi import read_errors
from service.schemas import KeySelf

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get("/me", response_model=KeySelf, responses=read_errors())
def key_self(state: StateDep, principal: ReadKey, key: KeyDep) -> KeySelf:
    """The role of the key sent (any valid key may ask); never the key itself or its hash."""
    info = state.keys.lookup(key) if key else None
    if info is None:  # a valid key that is not stored is the bootstrap admin key
        return KeySelf(role=principal.role, source="bootstrap", key_id=None, name=None)
    scope = None if info.collections is None else list(info.collections)
    return KeySelf(role=info.role, source="stored", key_id=info.key_id, name=info.name, collections=scope)
