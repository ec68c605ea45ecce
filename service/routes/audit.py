"""GET /v1/admin/audit: the append-only trail of enrollments, deletions, key and model actions (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.audit import AuditAction
from service.deps import AdminKey, StateDep
from service.openapi import admin_errors
from service.routes.forms import optional
from service.schemas import AuditEntryOut, AuditPage

router = APIRouter(prefix="/v1/admin", tags=["audit"])

# A cursor is the last entry's sequence number in hex (any value the pattern admits is a place to resume).
_CURSOR = r"^[0-9a-f]{1,15}$"


@router.get("/audit", response_model=AuditPage, responses=admin_errors())
def audit_log(
    state: StateDep,
    _: AdminKey,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        str | None, optional({"type": "string", "pattern": _CURSOR}), Query(pattern=_CURSOR, description="next_cursor")
    ] = None,
    action: Annotated[AuditAction | None, Query(description="only entries of this action")] = None,
) -> AuditPage:
    """Audit entries, oldest first, a page at a time."""
    rows = state.audit.entries(limit + 1, int(cursor, 16) if cursor else 0, action)
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(
        items=[AuditEntryOut(**vars(r)) for r in rows], next_cursor=f"{rows[-1].seq:x}" if more and rows else None
    )
