"""Shared multipart form parameters and upload reading.

Optional fields are declared without ``null`` in the schema: a multipart form cannot send a JSON null (a
client would send the text "null"), so an optional field is either sent with a valid value or left out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import File, Form, UploadFile
from pydantic import BeforeValidator, WithJsonSchema

from facepipe.errors import ImageTooLargeError

# Names and other short texts: no control characters (they break logs, terminals and CSV exports).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

_POLICY_HELP = "several faces: 'largest' keeps the largest, 'error' refuses"
OnePolicy = Literal["largest", "error"]
EmbedPolicy = Literal["largest", "error", "all"]


def optional(schema: dict[str, Any]) -> WithJsonSchema:
    """The schema of an optional form field: its value's schema, without null."""
    return WithJsonSchema(schema)


# Routes that decide on one face per image.
PolicyForm = Annotated[
    OnePolicy | None,
    optional({"type": "string", "enum": ["largest", "error"]}),
    Form(description=_POLICY_HELP + "; default: DPRIME_MULTIPLE_FACES"),
]
# /v1/embed may also keep every face.
EmbedPolicyForm = Annotated[
    EmbedPolicy | None,
    optional({"type": "string", "enum": ["largest", "error", "all"]}),
    Form(description=_POLICY_HELP + ", 'all' keeps all; default: DPRIME_MULTIPLE_FACES"),
]
# The schema as served lists the serving model's operating points (service.openapi patches the enum in).
OperatingPointForm = Annotated[
    str | None,
    optional({"type": "string"}),
    Form(description="operating point name; default: the model's (see GET /v1/models/active)"),
]
# Collection names: short, lower case, safe in URLs, logs and file names.
COLLECTION_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
CollectionForm = Annotated[
    str | None,
    optional({"type": "string", "pattern": COLLECTION_PATTERN}),
    Form(
        description="a collection name; default: 'default' when enrolling, every collection the key reaches when "
        "searching",
        pattern=COLLECTION_PATTERN,
    ),
]
OptionalImage = Annotated[
    UploadFile | None,
    optional({"type": "string", "contentMediaType": "application/octet-stream"}),
    File(description="the photo to compare with"),
]


def _true_or_false(value: object) -> object:
    # pydantic's lax bool would also take "1", "yes" or "on"; the schema says boolean, which a form sends as text.
    if isinstance(value, str) and value.lower() not in ("true", "false"):
        raise ValueError(f"expected 'true' or 'false', got {value!r}")
    return value


FormBool = Annotated[bool, BeforeValidator(_true_or_false)]


def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """The upload's bytes, refusing more than max_bytes without reading the rest."""
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"{upload.filename or 'the image'} has more than {max_bytes} bytes; the limit is {max_bytes} bytes",
            {"max_bytes": max_bytes, "filename": upload.filename},
        )
    return data
