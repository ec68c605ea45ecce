"""service: the FastAPI face-verification server over onnxruntime (see DESIGN.md "Service")."""
