"""The TensorRT backend of the graph pipeline (imported only when TensorRT runs)."""
