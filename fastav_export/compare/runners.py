"""Polygraphy runners for the whole FastAV pipeline (torch reference, ONNX Runtime, TensorRT).

Every runner takes the same feed dict and returns the same outputs, so Polygraphy's
`Comparator` can compare any two of them:

    feed:     inputs_embeds  [B, N, D] float32   (N = the layout's tokens, encoder outputs spliced in)
    outputs:  logits         [B, V]    float32   first-step next-token logits
              kept.<l>       [B, n_l]  int64     original indices each layer l = K..L-1 processes, ascending
              tokens         [B, T]    int64     T greedily generated ids

A runner opens its engine directory (and its backend) on activation, so it can be built
cheaply, pickled for Polygraphy's `--use-subprocess`, and named on the command line.
This module imports Polygraphy: import it only after `optional.require("polygraphy")`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from polygraphy.backend.base import BaseRunner
from polygraphy.common import TensorMetadata

from ..contract.layout import TokenLayout
from ..contract.pruning_config import PruningConfig
from ..engine.manifest import load_engine_dir
from ..engine.requests import check_request
from ..errors import FastAVError
from ..optional import check_installed
from ..runtime.backends import open_engine_backend
from ..runtime.generation import GenerationResult, generate
from ..user_io.embeds_file import require_finite
from .feeds import INPUT

DEFAULT_NEW_TOKENS = 8


def kept_name(layer: int) -> str:
    return f"kept.{layer}"


def pipeline_outputs(result: GenerationResult) -> OrderedDict:
    """A generation result as the runners' output dict (see the module docstring)."""
    outputs = OrderedDict(logits=np.asarray(result.first_logits, np.float32))
    for layer, rows in sorted(result.kept.items()):
        outputs[kept_name(layer)] = np.asarray(rows, np.int64)
    outputs["tokens"] = np.asarray(result.tokens, np.int64)
    return outputs


class PipelineRunner(BaseRunner):
    """Base of the pipeline runners: subclasses say how to open the backend of a manifest.

    engine_dir: an engine directory from `fastav-export build` (it fixes model, layout and
    pruning defaults); layout/config override the engine's defaults like `run`'s flags do.
    """

    def __init__(self, engine_dir, max_new_tokens: int = DEFAULT_NEW_TOKENS, layout: TokenLayout | None = None,
                 config: PruningConfig | None = None, name: str | None = None, prefix: str = "fastav"):
        super().__init__(name=name, prefix=prefix)
        self.engine_dir = str(engine_dir)
        self.max_new_tokens = max_new_tokens
        self._layout, self._config = layout, config

    def open_backend(self, manifest, layout, config):
        raise NotImplementedError

    def activate_impl(self):
        manifest = load_engine_dir(Path(self.engine_dir))
        layout = self._layout or manifest.layout
        config = (self._config or manifest.pruning).resolve(manifest.dims.num_layers)
        check_request(manifest, layout, config, self.max_new_tokens)
        self.manifest, self.layout = manifest, layout
        self.backend = self.open_backend(manifest, layout, config)

    def get_input_metadata_impl(self):
        # The batch is free: any B rows over the engine's layout.
        meta = TensorMetadata()
        meta.add(INPUT, np.float32, ("batch", self.layout.n_tokens, self.manifest.dims.hidden_size))
        return meta

    def infer_impl(self, feed_dict):
        embeds = feed_dict[INPUT]
        if embeds.ndim != 3 or embeds.shape[1] != self.layout.n_tokens:
            raise FastAVError(f"{INPUT} has shape {list(embeds.shape)}, expected [B, {self.layout.n_tokens}, "
                              f"{self.manifest.dims.hidden_size}] for {self.engine_dir}")
        require_finite(embeds, INPUT)
        started = time.perf_counter()
        result = generate(self.backend, torch.from_numpy(np.ascontiguousarray(embeds, np.float32)),
                          self.max_new_tokens)
        self.inference_time = time.perf_counter() - started
        return pipeline_outputs(result)

    def deactivate_impl(self):
        # Polygraphy checks that a deactivated runner is back to its pre-activation state.
        del self.backend, self.manifest, self.layout


class EngineRunner(PipelineRunner):
    """The engine's own runtime: backend "ort", "trt", or None (TensorRT when built and a GPU is present)."""

    def __init__(self, engine_dir, backend: str | None = None, threads: int | None = None, **kwargs):
        kwargs.setdefault("prefix", f"fastav-{backend or 'engine'}")
        super().__init__(engine_dir, **kwargs)
        self.backend_name, self.threads = backend, threads

    def open_backend(self, manifest, layout, config):
        if self.backend_name == "trt":
            check_installed("tensorrt", "the TensorRT backend")
        return open_engine_backend(manifest, layout, config, self.backend_name, threads=self.threads)


class TorchRunner(PipelineRunner):
    """The PyTorch reference (`TorchReference`, fp32 on CPU) of the weights the engine was built from."""

    def __init__(self, engine_dir, **kwargs):
        kwargs.setdefault("prefix", "fastav-torch")
        super().__init__(engine_dir, **kwargs)

    def open_backend(self, manifest, layout, config):
        from ..reference.torch_reference import TorchReference
        from .reference_model import reference_model

        return TorchReference(reference_model(manifest), layout, config)
