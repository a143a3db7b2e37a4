"""TensorRT build side: optimisation profiles, engine builds through Polygraphy, the
TopKGather plugin library, and TensorRT/GPU checks. Imported only when TensorRT is used."""
