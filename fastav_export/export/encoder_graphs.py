"""Export the media encoders as ONNX graphs beside the decoder's.

vision: pixel_values [F, 3, S, S]       -> video_embeds [Tv, D] (the vision tower and its projector)
audio:  fbank [1, T, M]                 -> audio_embeds [Ta, D] (VideoLLaMA2-AV: BEATs and its projector)
        input_features [C, 128, 3000]   -> audio_embeds [Ta, D] (video-SALMONN 2: Whisper, Q-Former, ...)

VideoLLaMA2-AV's clip shapes are fixed by its media settings (F frames at S x S, T filterbank
frames of a padded window), so its graphs are static. video-SALMONN 2 samples one frame a
second and cuts the audio into 30 s chunks, so its graphs take the frame and chunk counts as
dynamic first axes (`dynamic_shapes`). They are exported in fp32: ONNX Runtime's CPU provider lacks half-precision kernels for
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
WHISPER_IO = (["input_features"], ["audio_embeds"])  # [C, 128, 3000] Whisper features -> [C * 60, D]
WHISPER_FEATURE_FRAMES = 3000  # log-mel frames of one 30 s chunk


def export_encoder(module: nn.Module, sample: torch.Tensor, name: str, io: tuple[list[str], list[str]],
                   out_dir: Path, dynamic_first_axis: bool = False) -> ExportedGraph:
    """Export `module` (fp32, eval) traced on `sample` as `out_dir`/`name`.onnx, weights in `name`.onnx.data.

    dynamic_first_axis: the input's first axis (frames, chunks) is symbolic; `sample` should have
    at least 2 there, so the exporter does not specialise it to 1.
    """
    inputs, outputs = io
    module = module.float().eval()
    with _quiet_exporter(), torch.no_grad():
        dynamic = ({0: torch.export.Dim.DYNAMIC},) if dynamic_first_axis else None
        program = torch.onnx.export(module, (sample.float(),), dynamo=True,
                                    opset_version=OPSET, input_names=inputs, output_names=outputs, optimize=True,
                                    verbose=False, dynamic_shapes=dynamic)
    program.model.graph.name = name
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    program.save(path, external_data=True)
    _check(path)
    return ExportedGraph(name, path, list(inputs), list(outputs))

