"""service: the FastAPI face-verification server over onnxruntime (docs/operations.md)."""
