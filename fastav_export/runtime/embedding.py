"""The embedding table inside an engine's `embed` graph (read with onnx; torch on the CPU)."""

from __future__ import annotations

from ..engine.manifest import EngineManifest


def embedding_table(manifest: EngineManifest):
    """[V, D] fp32 torch tensor on the CPU: the table inside the engine's `embed` graph.

    What synthetic inputs draw their text rows from (`run`, `compare`), whatever backend runs.
    """
    import numpy as np
    import onnx
    import torch
    from onnx import numpy_helper

    from ..contract.graph_io import EMBED

    model = onnx.load(str(manifest.file(manifest.graphs[EMBED].onnx)))
    return torch.from_numpy(numpy_helper.to_array(model.graph.initializer[0]).astype(np.float32))
