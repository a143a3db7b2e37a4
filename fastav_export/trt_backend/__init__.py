"""TensorRT backend: the plugin library, engine builds and the TensorRT runtime."""
