"""Exceptions raised by facecore. Plain exceptions with no HTTP knowledge; callers map them."""


class DprimeError(Exception):
    """Base of every error dprime raises on purpose; the CLI prints its message instead of a traceback."""


class FacecoreError(DprimeError):
    """Base class of every facecore error."""


class ManifestError(FacecoreError):
    """A model manifest is missing, malformed, of another schema version, or does not match its model."""


class CalibrationError(FacecoreError):
    """Scores cannot support the requested statistic (too few pairs, unresolvable FAR target, ...)."""


class AlignmentError(FacecoreError):
    """Landmarks or templates are malformed, or the transform between them is degenerate."""


class RegistryError(FacecoreError):
    """The model registry is missing a model, has nothing to roll back to, or is corrupt."""
