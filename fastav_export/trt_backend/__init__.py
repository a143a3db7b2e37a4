"""The TensorRT backend: the TopKGather plugin library, engine builds and the runtime."""
