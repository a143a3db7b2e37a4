"""The encoders of the media path, run by torch (the reference) or from an engine's graphs.

Both runners take the preprocessed tensors of one clip and give the rows the decoder's
placeholders take, as float32 numpy arrays:
    video(pixel_values [F, 3, S, S]) -> [Tv, D]
    audio(fbank [1, T, M])          -> [Ta, D]
An encoder with several graph inputs (Qwen2.5-Omni's: the patches and the tables of the clip's grid)
takes a tuple of them, in the graph's input order.
"""

from __future__ import annotations

import numpy as np
import torch

from ..closing import Closing
from ..engine.manifest import AUDIO_ENCODER, VISION, EngineManifest


def _torch_inputs(inputs) -> tuple[torch.Tensor, ...]:
    """An encoder's inputs, in its graph's input order: one tensor or a tuple (tensors or arrays);
    floating ones in fp32, integer tables as they are."""
    tensors = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
    tensors = tuple(torch.as_tensor(t) for t in tensors)
    return tuple(t.float() if t.is_floating_point() else t for t in tensors)


class TorchEncoders(Closing):
    """The encoder modules (`models/encoders/`) on the CPU, fp32."""

    name = "torch"

    def __init__(self, vision: torch.nn.Module, audio: torch.nn.Module):
        self.vision, self.audio_encoder = vision.eval(), audio.eval()

    @torch.no_grad()
    def video(self, pixel_values) -> np.ndarray:
        return self.vision(*_torch_inputs(pixel_values)).float().numpy()

    @torch.no_grad()
    def audio(self, fbank) -> np.ndarray:
        return self.audio_encoder(*_torch_inputs(fbank)).float().numpy()

    def close(self) -> None:
        pass


class OrtEncoders(Closing):
    """The engine's `media.encoders` graphs in ONNX Runtime sessions (CPU)."""

    name = "ort"

    def __init__(self, manifest: EngineManifest, threads: int | None = None):
        from ..engine.ort_sessions import SESSION_SETTINGS, load_session

        self.entries = manifest.media.encoders
        self.sessions = {name: load_session(manifest.file(entry.onnx), SESSION_SETTINGS, "fp32", threads)
                         for name, entry in self.entries.items()}

    def _run(self, name: str, inputs) -> np.ndarray:
        entry = self.entries[name]
        feed = {input_name: tensor.numpy() for input_name, tensor in zip(entry.inputs, _torch_inputs(inputs))}
        (out,) = self.sessions[name].run(entry.outputs, feed)
        return out

    def video(self, pixel_values: torch.Tensor) -> np.ndarray:
        return self._run(VISION, pixel_values)

    def audio(self, fbank: torch.Tensor) -> np.ndarray:
        return self._run(AUDIO_ENCODER, fbank)

    def close(self) -> None:
        self.sessions.clear()


class TrtEncoders(Closing):
    """The engine's encoder engines (`build --backend trt`) through Polygraphy's TensorRT runner, on the GPU."""

    name = "trt"

    def __init__(self, manifest: EngineManifest):
        from polygraphy.backend.common import BytesFromPath
        from polygraphy.backend.trt import EngineFromBytes, TrtRunner

        from ..engine.trt.tensorrt_env import check_engine_compatible

        check_engine_compatible(manifest.backends["trt"], manifest.path)
        self.entries = manifest.media.encoders
        self.runners = {name: TrtRunner(EngineFromBytes(BytesFromPath(str(manifest.file(path)))))
                        for name, path in manifest.media.engines.items()}
        for runner in self.runners.values():
            runner.activate()

    def _run(self, name: str, inputs) -> np.ndarray:
        entry = self.entries[name]
        feed = {input_name: tensor.cuda().contiguous() for input_name, tensor in zip(entry.inputs, _torch_inputs(inputs))}
        out = self.runners[name].infer(feed)[entry.outputs[0]]  # torch in, torch out (on the GPU)
        return out.float().cpu().numpy()

    def video(self, pixel_values: torch.Tensor) -> np.ndarray:
        return self._run(VISION, pixel_values)

    def audio(self, fbank: torch.Tensor) -> np.ndarray:
        return self._run(AUDIO_ENCODER, fbank)

    def close(self) -> None:
        for runner in self.runners.values():
            runner.deactivate()
        self.runners.clear()
