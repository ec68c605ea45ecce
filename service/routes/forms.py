"""Shared multipart form parameters and upload reading."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Form, UploadFile

from facepipe.errors import ImageTooLargeError

PolicyForm = Annotated[
    Literal["largest", "error", "all"] | None,
    Form(description="several faces: 'largest' keeps the largest, 'error' refuses, 'all' (embed only) keeps all"),
]
OperatingPointForm = Annotated[
    str | None, Form(description="operating point name; default: the model's (see GET /v1/models/active)")
]


def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """The upload's bytes, refusing more than max_bytes without reading the rest."""
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"{upload.filename or 'the image'} has more than {max_bytes} bytes; the limit is {max_bytes} bytes",
            {"max_bytes": max_bytes, "filename": upload.filename},
        )
    return data
