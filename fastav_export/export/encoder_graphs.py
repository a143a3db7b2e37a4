"""Export the media encoders as ONNX graphs beside the decoder's.

vision: pixel_values [F, 3, S, S]       -> video_embeds [Tv, D] (the vision tower and its projector)
audio:  fbank [1, T, M]                 -> audio_embeds [Ta, D] (VideoLLaMA2-AV: BEATs and its projector)
        input_features [C, 128, 3000]   -> audio_embeds [Ta, D] (video-SALMONN 2: Whisper, Q-Former, ...)
Qwen2.5-Omni: pixel_patches [P, 1176] + grid tables -> video_embeds [P / 4, D]; padded_features
        [C, 128, L] + chunk tables -> audio_embeds [A, D] (models/families/qwen2_5_omni/encoders.py)

VideoLLaMA2-AV's clip shapes are fixed by its media settings (F frames at S x S, T filterbank
frames of a padded window), so its graphs are static. video-SALMONN 2 samples one frame a
second and cuts the audio into 30 s chunks, so its graphs take the frame and chunk counts as
dynamic first axes (`dynamic_shapes`). Qwen2.5-Omni's towers take several inputs, the media and
the tables that depend on its size (rotary positions, window order, segment boundaries, computed in
Python), all with dynamic lengths (`dynamic_axes`). They are exported in fp32: ONNX Runtime's CPU
provider lacks half-precision kernels for several of their ops, and they run once per request,
beside a decoder that dominates. Like the decoder's, their exports are reused through the export
cache when it is set (graph_cache.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .graph_cache import cached_export, graph_key
from .onnx_graphs import ExportedGraph, _check, _quiet_exporter
from .topk_gather import OPSET

VISION_IO = (["pixel_values"], ["video_embeds"])
AUDIO_IO = (["fbank"], ["audio_embeds"])
WHISPER_IO = (["input_features"], ["audio_embeds"])  # [C, 128, 3000] Whisper features -> [C * 60, D]
WHISPER_FEATURE_FRAMES = 3000  # log-mel frames of one 30 s chunk


def export_encoder(module: nn.Module, sample: torch.Tensor | tuple[torch.Tensor, ...], name: str,
                   io: tuple[list[str], list[str]], out_dir: Path, dynamic_first_axis: bool = False,
                   dynamic_axes: tuple[tuple[int, ...], ...] | None = None) -> ExportedGraph:
    """Export `module` (fp32, eval) traced on `sample` as `out_dir`/`name`.onnx, weights in `name`.onnx.data.

    sample: one input tensor, or one per input named in `io` (integer tables keep their dtype,
    floating inputs are traced in fp32).
    dynamic_first_axis: every input's first axis (frames, chunks) is symbolic.
    dynamic_axes: per input, the axes that are symbolic (instead of `dynamic_first_axis`).
    A symbolic axis should be at least 2 in `sample`, so the exporter does not specialise it to 1.
    """
    inputs, outputs = io
    samples = sample if isinstance(sample, tuple) else (sample,)
    samples = tuple(tensor.float() if tensor.is_floating_point() else tensor for tensor in samples)
    if dynamic_axes is None and dynamic_first_axis:
        dynamic_axes = ((0,),) * len(samples)
    if dynamic_axes is not None and len(dynamic_axes) != len(samples):
        raise ValueError(f"dynamic_axes names {len(dynamic_axes)} inputs, the sample has {len(samples)}")
    dynamic = None if dynamic_axes is None else tuple(
        {axis: torch.export.Dim.DYNAMIC for axis in axes} or None for axes in dynamic_axes)
    module = module.float().eval()

    def export() -> Path:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(module, samples, dynamo=True,
                                        opset_version=OPSET, input_names=inputs, output_names=outputs, optimize=True,
                                        verbose=False, dynamic_shapes=dynamic)
        program.model.graph.name = name
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{name}.onnx"
        program.save(path, external_data=True)
        _check(path)
        return path

    key = graph_key(name, module, samples, {"kind": "encoder", "module": type(module).__qualname__,
                                            "io": [list(inputs), list(outputs)], "dynamic": repr(dynamic_axes)})
    path = cached_export(name, out_dir, key, export)
    return ExportedGraph(name, path, list(inputs), list(outputs))

