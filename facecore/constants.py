"""Universal constants shared by training and the service (nothing model-specific lives here)."""

from typing import Final

# ArcFace / InsightFace 112x112 five-point template (x, y): left eye, right eye, nose tip,
# left mouth corner, right mouth corner, as seen in the image (subject's right eye is image-left).
ARCFACE_TEMPLATE_112: Final[tuple[tuple[float, float], ...]] = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)
ARCFACE_TEMPLATE_SIZE: Final[int] = 112

# Templates by the name a manifest uses for them.
TEMPLATES: Final[dict[str, tuple[tuple[float, float], ...]]] = {"arcface_112": ARCFACE_TEMPLATE_112}
TEMPLATE_SIZES: Final[dict[str, int]] = {"arcface_112": ARCFACE_TEMPLATE_SIZE}

MANIFEST_FILENAME: Final[str] = "manifest.json"
MODEL_FILENAME: Final[str] = "model.onnx"
REPORT_DIRNAME: Final[str] = "report"
ACTIVE_FILENAME: Final[str] = "active.json"

# Bump when ModelManifest changes incompatibly; load_manifest refuses other versions.
SCHEMA_VERSION: Final[int] = 2

ONNX_INPUT_NAME: Final[str] = "images"
ONNX_OUTPUT_NAME: Final[str] = "embedding"
