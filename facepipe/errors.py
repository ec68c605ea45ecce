"""Errors of the face pipeline. Each carries a stable code; the service maps codes to HTTP statuses."""

from facecore.errors import DprimeError


class FacepipeError(DprimeError):
    """Base of face-pipeline errors; ``code`` is stable and part of the API."""

    code = "face_pipeline_error"

    def __init__(self, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class BadImageError(FacepipeError):
    """The bytes are not a decodable image of a supported format."""

    code = "bad_image"


class ImageTooLargeError(FacepipeError):
    """The upload exceeds the byte or pixel limit."""

    code = "image_too_large"


class NoFaceError(FacepipeError):
    """No face was detected."""

    code = "no_face"


class MultipleFacesError(FacepipeError):
    """Several faces were found and the request asked for exactly one."""

    code = "multiple_faces"


class ModelLoadError(FacepipeError):
    """An ONNX model or detector could not be loaded or does not match its manifest."""

    code = "model_load_failed"


class ProviderUnavailableError(FacepipeError):
    """An execution provider was required (CUDA) but is not really in use."""

    code = "provider_unavailable"
