"""What the OpenAPI document says about errors, and the parts of it only the running service knows.

Every route declares each status it can answer with the error envelope (``responses=`` built here from the
catalogue), so a client generated from the schema knows every answer. Limits that come from settings (the
largest ``k``, images per enrollment) and the operating points of the serving model are written into the
schema when it is served, so whatever the schema admits, the handler accepts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from facecore.errors import DprimeError
from service.config import Settings
from service.decisions import active_decision_set
from service.error_catalogue import CATALOGUE

if TYPE_CHECKING:
    from service.state import AppState

# Statuses whose answers tell the client when to try again.
_RETRY_STATUSES = (429, 503)


class ErrorDetail(BaseModel):
    """One error: a stable code from the catalogue, a message saying what was received and expected."""

    code: str = Field(description="stable, snake case; part of the API")
    message: str
    details: dict[str, Any] = Field(description="machine-readable facts about the error (may be empty)")


class ErrorBody(BaseModel):
    """The envelope of every error answer."""

    error: ErrorDetail


def _codes(status: int) -> list[str]:
    return sorted(code for code, s in CATALOGUE.items() if s == status)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries declaring the error envelope for each status, with the codes it may carry."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        codes = _codes(status)
        if not codes:
            raise ValueError(f"no catalogue code answers with HTTP {status}")
        entry: dict[str, Any] = {"model": ErrorBody, "description": "error codes: " + ", ".join(codes)}
        if status in _RETRY_STATUSES:
            entry["headers"] = {
                "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
            }
        out[status] = entry
    return out


# The statuses every route of a kind can answer with, besides its own.
ADMITTED = (503,)  # admission control sheds load before the route runs
READ = (*ADMITTED, 401, 429, 422)  # any key; 429 after repeated failed keys; 422 bad parameters
ADMIN = (*READ, 403)
UPLOAD = (400, 413)  # unreadable multipart or image; too many bytes


def read_errors(*extra: int) -> dict[int | str, dict[str, Any]]:
    """Errors of a route any valid key may call."""
    return error_responses(*READ, *extra)


def admin_errors(*extra: int) -> dict[int | str, dict[str, Any]]:
    """Errors of a route that needs an admin key."""
    return error_responses(*ADMIN, *extra)


# --- the schema as served -------------------------------------------------------------------------------------
SchemaPatch = Callable[[dict[str, Any]], None]


def _properties(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Properties of the request bodies (FastAPI names their schemas Body_<route>); responses are left alone."""
    schemas = schema.get("components", {}).get("schemas", {})
    return [s.get("properties", {}) for name, s in schemas.items() if name.startswith("Body_")]


def set_property(schema: dict[str, Any], name: str, update: dict[str, Any]) -> None:
    """Merge ``update`` into every request-body property called ``name``."""
    for props in _properties(schema):
        if name in props:
            props[name].update(update)


def set_query_parameter(schema: dict[str, Any], path: str, name: str, update: dict[str, Any]) -> None:
    """Merge ``update`` into the schema of one route's query parameter."""
    for operation in schema.get("paths", {}).get(path, {}).values():
        for param in operation.get("parameters", []):
            if param.get("name") == name:
                param["schema"].update(update)


def install_schema(app: FastAPI, patches: Callable[[], list[SchemaPatch]]) -> None:
    """Serve FastAPI's schema with the patches of this moment applied (the base schema is built once)."""
    base: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not base:
            base.update(FastAPI.openapi(app))
        schema = copy.deepcopy(base)
        for patch in patches():
            patch(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _exactly_one(body: str, first: str, second: str) -> SchemaPatch:
    """The multipart body must carry one of two optional fields, not both and not neither.

    oneOf of two bare ``required`` lists: a body with both fields fits both branches, one with neither fits none.
    """

    def patch(schema: dict[str, Any]) -> None:
        target = schema.get("components", {}).get("schemas", {}).get(body)
        if target is not None:
            target["oneOf"] = [{"required": [first]}, {"required": [second]}]

    return patch


def _mark_files(schema: dict[str, Any]) -> None:
    """Upload fields also say ``format: binary``: the OpenAPI 3.0 spelling that many generators still read."""
    for props in _properties(schema):
        for prop in props.values():
            for part in (prop, prop.get("items", {})):
                if part.get("contentMediaType") == "application/octet-stream":
                    part["format"] = "binary"


def service_patches(settings: Settings, state: AppState | None) -> list[SchemaPatch]:
    """What this service admits right now: its settings' limits and the serving model's rule names."""
    patches: list[SchemaPatch] = [
        lambda s: set_property(s, "k", {"maximum": settings.search_max_k}),
        lambda s: set_property(s, "images", {"maxItems": settings.max_images_per_request, "minItems": 1}),
        _exactly_one("Body_verify_v1_verify_post", "image_b", "identity_id"),
        _mark_files,
    ]
    runtime = state.runtime if state is not None else None
    if runtime is not None:
        try:
            names = [d.name for d in active_decision_set(runtime.manifest, state.calibrations).decisions]  # type: ignore[union-attr]
        except DprimeError:
            names = []  # an uncalibrated model decides nothing: any name is refused, and the schema says so
        enum = {"enum": names}
        patches.append(lambda s: set_property(s, "operating_point", enum))
        patches.append(lambda s: set_query_parameter(s, "/v1/admin/calibration", "rule", enum))
    return patches
