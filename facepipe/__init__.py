"""facepipe: the face pipeline shared by training and the service.

Image decoding, the ONNX face detectors behind one interface, crops (5-point warp or box plus margin),
the model-input tensor a manifest describes, and the onnxruntime embedder. ``dprime align`` and the
service both run this code, so training and serving see identical crops.
"""
