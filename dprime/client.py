"""A small typed client for a running dprime service: one method per route, the API's own response models back.

    from dprime.client import DprimeClient

    with DprimeClient("http://127.0.0.1:8000", api_key="dpk_...") as dp:
        result = dp.verify("a.jpg", "b.jpg")
        print(result.decision, result.cosine, result.band.far)

Errors come back as exceptions carrying the error catalogue's code (dprime.api_errors). Needs the ``client`` extra
(httpx2); the response models are the service's own pydantic classes (service.schemas, which imports only
pydantic and facecore), so nothing of the server (FastAPI, onnxruntime) is imported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import httpx2 as httpx
from pydantic import BaseModel

from dprime.api_errors import ApiError, error_from
from service.schemas import (
    AdoptResult,
    AuditPage,
    CollectionDeleteResponse,
    CollectionList,
    DeleteResponse,
    EmbedResponse,
    EnrollResponse,
    GalleryReport,
    Health,
    IdentityOut,
    IdentityPage,
    KeySelf,
    ModelList,
    ModelOut,
    ModelReport,
    Ready,
    RevertResult,
    SearchResponse,
    SwitchJob,
    VerifyResponse,
)

DEFAULT_URL = "http://127.0.0.1:8000"  # where `make serve` listens
Image = str | os.PathLike[str] | bytes | tuple[str, bytes] | IO[bytes]
M = TypeVar("M", bound=BaseModel)


def _upload(image: Image, default_name: str) -> tuple[str, bytes]:
    """(filename, bytes) of a path, raw bytes, a (name, bytes) pair or an open binary file."""
    if isinstance(image, tuple):
        return image
    if isinstance(image, bytes):
        return default_name, image
    if isinstance(image, str | os.PathLike):
        path = Path(image)
        return path.name, path.read_bytes()
    return Path(getattr(image, "name", default_name)).name, image.read()


def _form(**fields: object) -> dict[str, str]:
    """Form fields that were given, as strings (None means: let the server decide)."""
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in fields.items() if v is not None}


class DprimeClient:
    """Talks to one dprime server with one API key (X-API-Key)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)

    @classmethod
    def from_env(cls, **kwargs: Any) -> DprimeClient:
        """A client for $DPRIME_URL (default http://127.0.0.1:8000) with the key in $DPRIME_API_KEY."""
        return cls(os.environ.get("DPRIME_URL", DEFAULT_URL), os.environ.get("DPRIME_API_KEY"), **kwargs)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> DprimeClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- plumbing -----------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                body: object = response.json()
            except ValueError:
                body = None
            raise error_from(
                response.status_code, body, response.headers.get("x-request-id"), response.headers.get("retry-after")
            )
        return response

    def _get(self, model: type[M], path: str, **kwargs: Any) -> M:
        return model.model_validate_json(self._send("GET", path, **kwargs).content)

    def _post(self, model: type[M], path: str, **kwargs: Any) -> M:
        return model.model_validate_json(self._send("POST", path, **kwargs).content)

    # --- operations ---------------------------------------------------------------------------------------
    def health(self) -> Health:
        """GET /health: the process is up."""
        return self._get(Health, "/health")

    def ready(self) -> Ready:
        """GET /ready: whether a model and the gallery are loaded (a 503 answer is returned, not raised)."""
        response = self.http.get("/ready")
        if response.status_code not in (200, 503):
            self._send("GET", "/ready")
        return Ready.model_validate_json(response.content)

    def metrics(self) -> str:
        """GET /metrics: the Prometheus text exposition."""
        return self._send("GET", "/metrics").text

    def me(self) -> KeySelf:
        """GET /v1/keys/me: this client's key's role."""
        return self._get(KeySelf, "/v1/keys/me")

    # --- faces and decisions ------------------------------------------------------------------------------
    def embed(self, image: Image, *, aligned: bool = False, multiple_faces: str | None = None) -> EmbedResponse:
        """POST /v1/embed: every kept face's raw embedding, kappa, box and landmarks."""
        files = {"image": _upload(image, "image.jpg")}
        return self._post(
            EmbedResponse, "/v1/embed", files=files, data=_form(aligned=aligned, multiple_faces=multiple_faces)
        )

    def verify(
        self,
        image_a: Image,
        image_b: Image | None = None,
        *,
        identity_id: str | None = None,
        operating_point: str | None = None,
        multiple_faces: str | None = None,
    ) -> VerifyResponse:
        """POST /v1/verify: two photos, or a photo and an enrolled identity -> match / non_match / uncertain."""
        files = {"image_a": _upload(image_a, "a.jpg")}
        if image_b is not None:
            files["image_b"] = _upload(image_b, "b.jpg")
        data = _form(identity_id=identity_id, operating_point=operating_point, multiple_faces=multiple_faces)
        return self._post(VerifyResponse, "/v1/verify", files=files, data=data)

    def search(
        self,
        image: Image,
        *,
        k: int = 5,
        operating_point: str | None = None,
        multiple_faces: str | None = None,
        collection: str | None = None,
    ) -> SearchResponse:
        """POST /v1/search: the k closest enrolled identities (of one collection, else of every collection the key
        reaches) and an open-set result (match / unknown / uncertain)."""
        files = {"image": _upload(image, "probe.jpg")}
        data = _form(k=k, operating_point=operating_point, multiple_faces=multiple_faces, collection=collection)
        return self._post(SearchResponse, "/v1/search", files=files, data=data)

    # --- the gallery --------------------------------------------------------------------------------------
    def enroll(
        self,
        name: str,
        images: Sequence[Image],
        *,
        metadata: str | None = None,
        multiple_faces: str | None = None,
        collection: str | None = None,
    ) -> EnrollResponse:
        """POST /v1/identities (admin): a new identity; each photo accepted or rejected with a reason.

        Args:
            metadata: a JSON object, as text, stored with the identity.
            collection: the collection it joins (default: 'default').
        """
        files = [("images", _upload(img, f"image-{i}.jpg")) for i, img in enumerate(images)]
        data = _form(name=name, metadata=metadata, multiple_faces=multiple_faces, collection=collection)
        return self._post(EnrollResponse, "/v1/identities", files=files, data=data)

    def add_faces(
        self, identity_id: str, images: Sequence[Image], *, multiple_faces: str | None = None
    ) -> EnrollResponse:
        """POST /v1/identities/{id}/faces (admin): more photos of an enrolled person."""
        files = [("images", _upload(img, f"image-{i}.jpg")) for i, img in enumerate(images)]
        return self._post(
            EnrollResponse,
            f"/v1/identities/{identity_id}/faces",
            files=files,
            data=_form(multiple_faces=multiple_faces),
        )

    def list_identities(self, *, limit: int = 50, cursor: str | None = None, q: str | None = None) -> IdentityPage:
        """GET /v1/identities: one page, optionally only names containing q."""
        return self._get(IdentityPage, "/v1/identities", params=_form(limit=limit, cursor=cursor, q=q))

    def iter_identities(self, *, q: str | None = None, page_size: int = 200) -> Iterator[IdentityOut]:
        """Every identity (whose name contains q), following the cursors."""
        cursor = None
        while True:
            page = self.list_identities(limit=page_size, cursor=cursor, q=q)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_identity(self, identity_id: str) -> IdentityOut:
        """GET /v1/identities/{id}."""
        return self._get(IdentityOut, f"/v1/identities/{identity_id}")

    def delete_identity(self, identity_id: str) -> DeleteResponse:
        """DELETE /v1/identities/{id} (admin): the identity with its faces, chips and vectors."""
        return DeleteResponse.model_validate_json(self._send("DELETE", f"/v1/identities/{identity_id}").content)

    def collections(self) -> CollectionList:
        """GET /v1/collections: the collections this key reaches that hold identities, with their sizes."""
        return self._get(CollectionList, "/v1/collections")

    def delete_collection(self, name: str) -> CollectionDeleteResponse:
        """DELETE /v1/collections/{name} (admin): every identity of the collection, erased like one identity."""
        return CollectionDeleteResponse.model_validate_json(self._send("DELETE", f"/v1/collections/{name}").content)

    # --- models -------------------------------------------------------------------------------------------
    def models(self) -> ModelList:
        """GET /v1/models."""
        return self._get(ModelList, "/v1/models")

    def active_model(self) -> ModelOut:
        """GET /v1/models/active: the serving model with its operating points and bands."""
        return self._get(ModelOut, "/v1/models/active")

    def model_report(self, model_id: str) -> ModelReport:
        """GET /v1/models/{id}/report: the calibration report's figures."""
        return self._get(ModelReport, f"/v1/models/{model_id}/report")

    def report_plot(self, model_id: str, name: str) -> bytes:
        """GET /v1/models/{id}/report/{name}: one figure's PNG bytes."""
        return self._send("GET", f"/v1/models/{model_id}/report/{name}").content

    def activate(self, model_id: str) -> SwitchJob:
        """POST /v1/admin/models/{id}/activate (admin): start a hot switch; follow it with wait_for."""
        return self._post(SwitchJob, f"/v1/admin/models/{model_id}/activate")

    def rollback(self) -> SwitchJob:
        """POST /v1/admin/models/rollback (admin): start switching back to the previous model."""
        return self._post(SwitchJob, "/v1/admin/models/rollback")

    def job(self, job_id: str) -> SwitchJob:
        """GET /v1/admin/jobs/{id} (admin): a switch's progress."""
        return self._get(SwitchJob, f"/v1/admin/jobs/{job_id}")

    def wait_for(self, job: SwitchJob, *, timeout: float = 600.0, poll: float = 0.5) -> SwitchJob:
        """Poll a switch until it is no longer running; raises TimeoutError after timeout seconds."""
        deadline = time.monotonic() + timeout
        while job.status == "running":
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job.job_id} still running after {timeout} s")
            time.sleep(poll)
            job = self.job(job.job_id)
        return job

    # --- calibration in the user's domain (admin) ---------------------------------------------------------
    def gallery_calibration(self, rule: str | None = None) -> GalleryReport:
        """GET /v1/admin/calibration: do the stated rates hold on the enrolled faces?"""
        return self._get(GalleryReport, "/v1/admin/calibration", params=_form(rule=rule))

    def adopt_calibration(self, rule: str | None = None) -> AdoptResult:
        """POST /v1/admin/calibration: refit the thresholds on the gallery and adopt them."""
        return self._post(AdoptResult, "/v1/admin/calibration", params=_form(rule=rule))

    def revert_calibration(self) -> RevertResult:
        """DELETE /v1/admin/calibration: back to the model manifest's calibration."""
        return RevertResult.model_validate_json(self._send("DELETE", "/v1/admin/calibration").content)

    # --- audit trail (admin) ------------------------------------------------------------------------------
    def audit(self, *, limit: int = 100, cursor: str | None = None, action: str | None = None) -> AuditPage:
        """GET /v1/admin/audit (admin): one page of the trail, oldest first; action keeps only that action."""
        return self._get(AuditPage, "/v1/admin/audit", params=_form(limit=limit, cursor=cursor, action=action))


__all__ = ["ApiError", "DprimeClient", "Image"]
