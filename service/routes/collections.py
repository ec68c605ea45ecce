"""List collections and delete one whole (its identities, faces, chips and vectors, erased like one identity)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.deps import AuditedAdmin, ReadKey, StateDep
from service.openapi import admin_errors, read_errors
from service.routes.forms import COLLECTION_PATTERN
from service.schemas import CollectionDeleteResponse, CollectionList, CollectionOut

router = APIRouter(prefix="/v1/collections", tags=["identities"])

CollectionPath = Annotated[str, Path(description="the collection's name", pattern=COLLECTION_PATTERN)]


@router.get("", response_model=CollectionList, responses=read_errors())
def list_collections(state: StateDep, principal: ReadKey) -> CollectionList:
    """The collections this key reaches that hold identities, with their sizes."""
    rows = [r for r in state.gallery.store.collections() if principal.may_use(r.name)]
    return CollectionList(items=[CollectionOut(name=r.name, identities=r.identities, faces=r.faces) for r in rows])


@router.delete("/{name}", response_model=CollectionDeleteResponse, responses=admin_errors(404, 409))
def delete_collection(state: StateDep, audit: AuditedAdmin, name: CollectionPath) -> CollectionDeleteResponse:
    """Delete every identity of a collection with its faces, chips and vectors, so none of their bytes stay on
    disk (on SQLite; PostgreSQL reclaims the space at its next vacuum)."""
    audit.principal.check(name)
    with state.gallery.switch_lock.read():
        n_ids, n_faces = state.gallery.delete_collection(name)
    audit.record("collection.delete", name, details={"identities": n_ids, "faces": n_faces})
    return CollectionDeleteResponse(name=name, deleted_identities=n_ids, deleted_faces=n_faces)
