"""Exceptions raised by facecore. Plain exceptions with no HTTP knowledge; callers map them."""


class DprimeError(Exception):
    """Base of every error dprime raises on purpose; the CLI prints its message instead of a traceback."""


class FacecoreError(DprimeError):
    """Base class of every facecore error."""


class ManifestError(FacecoreError):
    """A model manifest is missing, malformed, of another schema version, or does not match its model."""


class CalibrationError(FacecoreError):
    """Scores cannot support the requested statistic (too few pairs, unresolvable FAR target, ...).

    ``details`` carries what a caller needs to act, such as how many people a calibration would need.
    """

    def __init__(self, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.details: dict[str, object] = details or {}


class AlignmentError(FacecoreError):
    """Landmarks or templates are malformed, or the transform between them is degenerate."""


class RegistryError(FacecoreError):
    """The model registry is missing a model, has nothing to roll back to, or is corrupt."""
