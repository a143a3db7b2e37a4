"""Export the media encoders as ONNX graphs beside the decoder's.

vision: pixel_values [F, 3, S, S] -> video_embeds [Tv, D] (the vision tower and its projector)
audio:  fbank [1, T, M]           -> audio_embeds [Ta, D] (the audio tower and its projector)

A clip's shapes are fixed by the model's media settings (F frames at S x S, T filterbank
frames of a padded window), so the graphs are static: nothing for a runtime to guess.
They are exported in fp32: ONNX Runtime's CPU provider lacks half-precision kernels for
several of their ops, and they run once per request, beside a decoder that dominates.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .onnx_graphs import ExportedGraph, _check, _quiet_exporter
from .topk_gather import OPSET

VISION_IO = (["pixel_values"], ["video_embeds"])
AUDIO_IO = (["fbank"], ["audio_embeds"])


def export_encoder(module: nn.Module, sample: torch.Tensor, name: str, io: tuple[list[str], list[str]],
                   out_dir: Path) -> ExportedGraph:
    """Export `module` (fp32, eval) traced on `sample` as `out_dir`/`name`.onnx, weights in `name`.onnx.data."""
    inputs, outputs = io
    module = module.float().eval()
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(module, (sample.float(),), dynamo=True, opset_version=OPSET, input_names=inputs,
                                    output_names=outputs, optimize=True, verbose=False)
    program.model.graph.name = name
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    program.save(path, external_data=True)
    _check(path)
    return ExportedGraph(name, path, list(inputs), list(outputs))
