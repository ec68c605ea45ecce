"""The error catalogue: every error the API returns, its stable code and HTTP status, mapped in one place.

No web framework here, so the service's rule-side modules (service.decisions, the gallery calibration) can raise
catalogue errors without importing one; service.errors renders them.
"""

from __future__ import annotations

from typing import Any

from facecore.errors import AlignmentError, DprimeError, ManifestError, RegistryError
from facepipe.errors import FacepipeError

# code -> HTTP status. The codes are part of the API: add, never rename.
CATALOGUE: dict[str, int] = {
    "bad_image": 400,
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "collection_forbidden": 403,
    "unknown_identity": 404,
    "unknown_collection": 404,
    "unknown_model": 404,
    "unknown_job": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "model_not_calibrated": 409,
    "model_switch_in_progress": 409,
    "calibration_unresolved": 409,
    "image_too_large": 413,
    "validation_error": 422,
    "no_face": 422,
    "multiple_faces": 422,
    "no_usable_faces": 422,
    "alignment_failed": 422,
    "model_load_failed": 422,
    "too_many_failed_keys": 429,
    "provider_unavailable": 503,
    "model_not_ready": 503,
    "overloaded": 503,
    "deadline_exceeded": 503,
    "internal_error": 500,
}


class ServiceError(DprimeError):
    """An error with a catalogue code; raise it anywhere, the handler renders it."""

    def __init__(
        self, code: str, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        if code not in CATALOGUE:
            raise ValueError(f"error code {code!r} is not in the catalogue")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers

    @property
    def status(self) -> int:
        """HTTP status of this code."""
        return CATALOGUE[self.code]


def as_service_error(exc: Exception) -> ServiceError:
    """Map a domain error from facepipe/facecore to its catalogue entry."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, FacepipeError):
        return ServiceError(exc.code, exc.message, exc.details)
    if isinstance(exc, AlignmentError):
        return ServiceError("alignment_failed", str(exc))
    if isinstance(exc, RegistryError):
        return ServiceError("unknown_model", str(exc))
    if isinstance(exc, ManifestError):
        return ServiceError("model_load_failed", str(exc))
    return ServiceError("internal_error", "internal error; see the server log with this request's x-request-id")
