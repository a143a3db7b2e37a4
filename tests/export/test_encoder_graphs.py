"""export_encoder: one sample tensor (the VideoLLaMA2 / video-SALMONN 2 call) or several named inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fastav_export.export.encoder_graphs import export_encoder


class _ScaleRows(nn.Module):
    """x [N, 4] float, index [K] int64 -> x[index] projected: a float input and an integer table."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)

    def forward(self, x, index):
        return self.proj(x)[index]


@pytest.mark.slow
def test_one_sample_with_a_dynamic_first_axis(tmp_path):
    import onnxruntime as ort

    module = nn.Linear(4, 3)
    graph = export_encoder(module, torch.zeros(2, 4), "single", (["x"], ["y"]), tmp_path, dynamic_first_axis=True)
    session = ort.InferenceSession(str(graph.path), providers=["CPUExecutionProvider"])
    for rows in (1, 5):
        x = np.random.randn(rows, 4).astype(np.float32)
        (y,) = session.run(None, {"x": x})
        np.testing.assert_allclose(y, module(torch.from_numpy(x)).detach().numpy(), atol=1e-6)


@pytest.mark.slow
def test_several_inputs_keep_their_dtypes_and_dynamic_axes(tmp_path):
    import onnxruntime as ort

    module = _ScaleRows()
    sample = (torch.zeros(3, 4), torch.tensor([2, 0]))
    graph = export_encoder(module, sample, "pair", (["x", "index"], ["y"]), tmp_path, dynamic_axes=((0,), (0,)))
    assert graph.inputs == ["x", "index"]
    session = ort.InferenceSession(str(graph.path), providers=["CPUExecutionProvider"])
    assert [i.type for i in session.get_inputs()] == ["tensor(float)", "tensor(int64)"]
    x, index = np.random.randn(6, 4).astype(np.float32), np.array([5, 1, 1, 0], dtype=np.int64)
    (y,) = session.run(None, {"x": x, "index": index})
    np.testing.assert_allclose(y, module(torch.from_numpy(x), torch.from_numpy(index)).detach().numpy(), atol=1e-6)


def test_dynamic_axes_must_name_every_input(tmp_path):
    with pytest.raises(ValueError, match="dynamic_axes"):
        export_encoder(_ScaleRows(), (torch.zeros(3, 4), torch.tensor([0, 1])), "bad", (["x", "index"], ["y"]),
                       tmp_path, dynamic_axes=((0,),))
