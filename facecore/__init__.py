"""facecore: the pure, shared core of dprime.

vMF math, calibration math, the 5-point alignment transform and the model manifest. Imports only
numpy, scipy and pydantic, so both the training pipeline and the service can depend on it.
"""

__version__ = "0.1.0"
