"""The ONNX Runtime backend of the graph pipeline."""
