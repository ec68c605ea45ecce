"""The service's error catalogue as exceptions: each code maps to one class, grouped by what a caller does next.

Catch the group (``except ImageError``) or read ``err.code`` for the exact code (``"no_face"``).
"""

from __future__ import annotations

from typing import Any

from facecore.errors import DprimeError


class ApiError(DprimeError):
    """The service answered with an error envelope ``{"error": {"code", "message", "details"}}``."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        status: int = 0,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details or {}
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after


class AuthError(ApiError):
    """The key is missing, unknown or revoked, or its role may not use the route."""


class NotFoundError(ApiError):
    """No such identity, model, job or route."""


class InvalidRequest(ApiError):
    """The request itself is malformed: fix it before sending it again."""


class ImageError(ApiError):
    """A photo could not be used: unreadable, too large, no face, several faces, none usable."""


class ConflictError(ApiError):
    """The service's state refuses this now: an uncalibrated model, a switch running, a calibration unresolved."""


class UnavailableError(ApiError):
    """Temporarily unable (no model ready, queue full, GPU missing): retry after ``retry_after`` seconds."""


class ServerError(ApiError):
    """An internal error; the server log has it under ``request_id``."""


CODES: dict[str, type[ApiError]] = {
    "unauthorized": AuthError,
    "forbidden": AuthError,
    "collection_forbidden": AuthError,
    "too_many_failed_keys": AuthError,
    "unknown_identity": NotFoundError,
    "unknown_collection": NotFoundError,
    "unknown_model": NotFoundError,
    "unknown_job": NotFoundError,
    "not_found": NotFoundError,
    "bad_request": InvalidRequest,
    "validation_error": InvalidRequest,
    "method_not_allowed": InvalidRequest,
    "bad_image": ImageError,
    "image_too_large": ImageError,
    "no_face": ImageError,
    "multiple_faces": ImageError,
    "no_usable_faces": ImageError,
    "alignment_failed": ImageError,
    "model_not_calibrated": ConflictError,
    "model_switch_in_progress": ConflictError,
    "calibration_unresolved": ConflictError,
    "model_load_failed": ConflictError,
    "model_not_ready": UnavailableError,
    "overloaded": UnavailableError,
    "deadline_exceeded": UnavailableError,
    "request_timeout": UnavailableError,
    "provider_unavailable": UnavailableError,
    "internal_error": ServerError,
}


def error_from(status: int, body: object, request_id: str | None, retry_after: str | None) -> ApiError:
    """The exception for an error response (a body that is not the envelope gives an ApiError named by status)."""
    envelope = body.get("error") if isinstance(body, dict) else None
    wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
    if not isinstance(envelope, dict) or "code" not in envelope:
        return ApiError(f"http_{status}", f"HTTP {status} without an error envelope", {}, status, request_id, wait)
    code = str(envelope["code"])
    details = envelope.get("details")
    cls = CODES.get(code, ApiError)
    return cls(
        code, str(envelope.get("message", "")), details if isinstance(details, dict) else {}, status, request_id, wait
    )
