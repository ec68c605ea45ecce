"""Enroll, list, read and delete identities (enrollment and deletion need an admin key)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile, status

from facecore.errors import DprimeError
from service.decisions import enroll_refusal
from service.deps import AuditedAdmin, Principal, ReadKey, StateDep
from service.error_catalogue import ServiceError, as_service_error
from service.gallery_records import DEFAULT_COLLECTION
from service.gallery_store import IdentityRow
from service.openapi import UPLOAD, admin_errors, read_errors
from service.pipeline import EmbeddedFace, FacePolicy
from service.routes.forms import COLLECTION_PATTERN, PRINTABLE, CollectionForm, PolicyForm, optional, read_upload
from service.runtime import ModelRuntime
from service.schemas import (
    AcceptedImage,
    DeleteResponse,
    EnrollResponse,
    FaceOut,
    IdentityOut,
    IdentityPage,
    RejectedImage,
)
from service.state import AppState

router = APIRouter(prefix="/v1/identities", tags=["identities"])

ImagesForm = Annotated[list[UploadFile], File(description="one or more photos of the person")]
# Sent as a JSON text part; declared as the object it must hold.
MetadataForm = Annotated[
    str | None,
    optional({"type": "object", "description": "a JSON object stored with the identity"}),
    Form(description="a JSON object stored with the identity"),
]


def identity_out(row: IdentityRow) -> IdentityOut:
    """API view of a stored identity."""
    return IdentityOut(
        id=row.identity_id,
        name=row.name,
        metadata=row.metadata,
        created=row.created,
        collection=row.collection,
        faces=[
            FaceOut(face_id=f.face_id, created=f.created, kappa=f.kappa, det_score=f.det_score, has_chip=f.has_chip)
            for f in row.faces
        ],
    )


def _reject_constant(name: str) -> None:
    # NaN and Infinity are not JSON: they could be stored but never sent back.
    raise ValueError(f"{name} is not a JSON value")


def _parse_metadata(raw: str | None, max_bytes: int) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ServiceError(
            "validation_error",
            f"metadata is {size} bytes; at most {max_bytes} bytes (DPRIME_MAX_METADATA_BYTES) are stored",
            {"bytes": size, "max_bytes": max_bytes},
        )
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError; RecursionError: absurd nesting
        raise ServiceError("validation_error", f"metadata must be a JSON object, got invalid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ServiceError("validation_error", f"metadata must be a JSON object, got {type(value).__name__}")
    return value


def _screen(
    state: AppState, runtime: ModelRuntime, images: list[UploadFile], policy: FacePolicy
) -> tuple[list[tuple[int, str | None, EmbeddedFace]], list[RejectedImage]]:
    """Embed every upload; keep one face per usable image and give a reason for each unusable one."""
    if len(images) > state.settings.max_images_per_request:
        raise ServiceError(
            "validation_error",
            f"{len(images)} images sent; at most {state.settings.max_images_per_request} per request",
        )
    datas: list[bytes | DprimeError] = []
    for upload in images:
        try:
            datas.append(read_upload(upload, state.settings.max_image_bytes))
        except DprimeError as exc:
            datas.append(exc)
    readable = [d for d in datas if isinstance(d, bytes)]
    results = iter(state.pipeline.embed_images(readable, runtime, policy, keep_chip=True))
    accepted: list[tuple[int, str | None, EmbeddedFace]] = []
    rejected: list[RejectedImage] = []
    for i, (upload, data) in enumerate(zip(images, datas, strict=True)):
        result = data if isinstance(data, DprimeError) else next(results)
        if isinstance(result, DprimeError):
            err = as_service_error(result)
            rejected.append(RejectedImage(index=i, filename=upload.filename, code=err.code, message=err.message))
            continue
        face = result[0]
        refusal = enroll_refusal(face.kappa, runtime.manifest)
        if refusal is not None:
            message = f"{refusal}; use a sharper, more frontal photo"
            rejected.append(RejectedImage(index=i, filename=upload.filename, code="low_quality", message=message))
            continue
        accepted.append((i, upload.filename, face))
    return accepted, rejected


def _enroll_response(
    row: IdentityRow,
    accepted: list[tuple[int, str | None, EmbeddedFace]],
    face_ids: list[int],
    rejected: list[RejectedImage],
    runtime: ModelRuntime,
) -> EnrollResponse:
    quality = runtime.manifest.uncertainty.quality_percentile
    return EnrollResponse(
        identity=identity_out(row),
        rejected=rejected,
        model_id=runtime.model_id,
        accepted=[
            AcceptedImage(index=i, filename=fn, face_id=fid, kappa=f.kappa, quality_pct=quality(f.kappa))
            for (i, fn, f), fid in zip(accepted, face_ids, strict=True)
        ],
    )


def _no_usable(rejected: list[RejectedImage]) -> ServiceError:
    return ServiceError(
        "no_usable_faces",
        f"none of the {len(rejected)} image(s) gave a usable face; nothing was stored",
        {"rejected": [r.model_dump() for r in rejected]},
    )


def _enroll_policy(requested: FacePolicy | None) -> FacePolicy:
    # Enrolling the wrong person is worse than asking again, so several faces are refused unless asked otherwise.
    return requested or "error"


@router.post(
    "", response_model=EnrollResponse, status_code=status.HTTP_201_CREATED, responses=admin_errors(*UPLOAD, 409)
)
def enroll(
    state: StateDep,
    audit: AuditedAdmin,
    name: Annotated[str, Form(min_length=1, max_length=200, pattern=PRINTABLE)],
    images: ImagesForm,
    metadata: MetadataForm = None,
    multiple_faces: PolicyForm = None,
    collection: CollectionForm = None,
) -> EnrollResponse:
    """Create an identity in a collection from several photos; each photo is accepted or rejected with a reason."""
    collection = collection or DEFAULT_COLLECTION
    audit.principal.check(collection)
    meta = _parse_metadata(metadata, state.settings.max_metadata_bytes)
    policy = _enroll_policy(multiple_faces)
    runtime = state.active_runtime()
    with state.gallery.switch_lock.read():
        accepted, rejected = _screen(state, runtime, images, policy)
        if not accepted:
            raise _no_usable(rejected)
        row, face_ids = state.gallery.enroll(name, meta, [f for _, _, f in accepted], runtime, collection)
    details = {"faces": len(face_ids), "rejected": len(rejected), "collection": collection}
    audit.record("identity.enroll", row.identity_id, details=details)
    return _enroll_response(row, accepted, face_ids, rejected, runtime)


@router.post(
    "/{identity_id}/faces",
    response_model=EnrollResponse,
    status_code=status.HTTP_201_CREATED,
    responses=admin_errors(*UPLOAD, 404, 409),
)
def add_faces(
    state: StateDep,
    audit: AuditedAdmin,
    identity_id: str,
    images: ImagesForm,
    multiple_faces: PolicyForm = None,
) -> EnrollResponse:
    """Add photos to an existing identity."""
    policy = _enroll_policy(multiple_faces)
    _visible_identity(state, audit.principal, identity_id)
    runtime = state.active_runtime()
    with state.gallery.switch_lock.read():
        accepted, rejected = _screen(state, runtime, images, policy)
        if not accepted:
            raise _no_usable(rejected)
        face_ids = state.gallery.add_faces(identity_id, [f for _, _, f in accepted], runtime)
    audit.record("identity.add_faces", identity_id, details={"faces": len(face_ids), "rejected": len(rejected)})
    row = state.gallery.store.get_identity(identity_id, runtime.model_id)
    if row is None:
        raise ServiceError("unknown_identity", f"identity {identity_id!r} was deleted meanwhile")
    return _enroll_response(row, accepted, face_ids, rejected, runtime)


# A cursor is the last row's position in hex: every value the pattern admits is a valid place to resume (at most
# 15 digits, so it always fits SQLite's 64-bit integers).
CURSOR_PATTERN = r"^[0-9a-f]{1,15}$"
CursorQuery = Annotated[
    str | None,
    optional({"type": "string", "pattern": CURSOR_PATTERN}),
    Query(description="next_cursor of the previous page", pattern=CURSOR_PATTERN),
]


def _decode_cursor(cursor: str | None) -> int:
    return int(cursor, 16) if cursor else 0


def _encode_cursor(rowid: int) -> str:
    return f"{rowid:x}"


def _visible_identity(
    state: AppState, principal: Principal, identity_id: str, model_id: str | None = None
) -> IdentityRow:
    """The identity, if it exists and the key reaches its collection (else 404 or 403)."""
    row = state.gallery.store.get_identity(identity_id, model_id)
    if row is None:
        raise ServiceError("unknown_identity", f"no identity {identity_id!r}", {"identity_id": identity_id})
    principal.check(row.collection)
    return row


CollectionQuery = Annotated[
    str | None,
    optional({"type": "string", "pattern": COLLECTION_PATTERN}),
    Query(description="only this collection (default: every collection the key reaches)", pattern=COLLECTION_PATTERN),
]


@router.get("", response_model=IdentityPage, responses=read_errors(403))
def list_identities(
    state: StateDep,
    principal: ReadKey,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: CursorQuery = None,
    q: Annotated[
        str | None, Query(max_length=200, description="only identities whose name contains this (any case)")
    ] = None,
    collection: CollectionQuery = None,
) -> IdentityPage:
    """Identities in enrollment order, a page at a time (send the same q with each page's cursor)."""
    after = _decode_cursor(cursor)
    model_id = state.runtime.model_id if state.runtime else None
    rows = state.gallery.store.list_identities(limit + 1, after, model_id, q, principal.scope(collection))
    more = len(rows) > limit
    rows = rows[:limit]
    return IdentityPage(
        items=[identity_out(r) for r in rows], next_cursor=_encode_cursor(rows[-1].rowid) if more else None
    )


@router.get("/{identity_id}", response_model=IdentityOut, responses=read_errors(403, 404))
def get_identity(state: StateDep, principal: ReadKey, identity_id: str) -> IdentityOut:
    """One identity with its faces."""
    model_id = state.runtime.model_id if state.runtime else None
    return identity_out(_visible_identity(state, principal, identity_id, model_id))


@router.delete("/{identity_id}", response_model=DeleteResponse, responses=admin_errors(404, 409))
def delete_identity(state: StateDep, audit: AuditedAdmin, identity_id: str) -> DeleteResponse:
    """Delete an identity with its faces, chips and vectors, so that none of their bytes stay on disk."""
    _visible_identity(state, audit.principal, identity_id)
    with state.gallery.switch_lock.read():
        n = state.gallery.delete(identity_id)
    audit.record("identity.delete", identity_id, details={"faces": n})
    return DeleteResponse(id=identity_id, deleted_faces=n)
