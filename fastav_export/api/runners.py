"""What an `Engine` runs on: an engine directory's graphs, or the PyTorch reference of a model.

Both offer the same small surface to `api.engine.Engine`: the front end (media -> prompt), the
model's dimensions and default pruning, a check of a request before any media is decoded, the
backend for one (layout, pruning config), and the text rows' embeddings.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..closing import Closing
from ..contract.layout import TokenLayout
from ..contract.preset import PresetTarget
from ..contract.pruning_config import PruningConfig
from ..errors import FastAVError

CACHED_PIPELINES = 4  # distinct (layout, config) pipelines kept (their KV buffers), per engine


class EngineDirRunner(Closing):
    """An engine directory: graphs (ONNX Runtime sessions or TensorRT engines) opened once, one
    pipeline per (layout, pruning config) over them, cached."""

    def __init__(self, manifest, backend: str | None = None, threads: int | None = None, for_client: bool = False):
        from ..runtime.backends import default_backend, open_graphs
        from ..runtime.front_end import FrontEnd

        self.manifest = manifest
        self.backend_name = backend or default_backend(manifest)
        self.graphs = open_graphs(manifest, self.backend_name, threads)
        self._pipelines: OrderedDict = OrderedDict()
        self.front = None
        try:
            if manifest.media is not None:
                self.front = FrontEnd.from_engine(manifest, threads, self.graphs.name, for_client=for_client)
        except BaseException:
            self.graphs.close()
            raise
        self.dims, self.base_config, self.name = manifest.dims, manifest.pruning, manifest.model
        encoders = "" if self.front is None else (
            "; encoders on " + ("TensorRT" if self.front.encoders.name == "trt" else "ONNX Runtime"))
        self.title = (f"{manifest.model} engine {manifest.path}, {self.backend_name} backend on "
                      f"{'cuda' if self.graphs.name == 'trt' else 'cpu'} ({manifest.numerics}){encoders}")
        self.sources = dict(manifest.media.sources) if manifest.media is not None else {}

    def preset_target(self, layout: TokenLayout | None = None) -> PresetTarget:
        from ..models.registry import family_of

        return PresetTarget.of(self.manifest.model, family_of(self.manifest.model), layout or self.manifest.layout,
                               self.dims.num_layers)

    def check(self, layout: TokenLayout | None, config: PruningConfig, max_new_tokens: int, name=None) -> None:
        """One line for what the engine cannot run (before any media is decoded); layout None: the built one."""
        from ..engine.requests import check_request

        kwargs = {} if name is None else {"name": name}
        check_request(self.manifest, layout or self.manifest.layout, config, max_new_tokens, **kwargs)

    def check_prompt(self, layout: TokenLayout, config: PruningConfig, max_new_tokens: int) -> None:
        self.check(layout, config, max_new_tokens)

    def pipeline(self, layout: TokenLayout, config: PruningConfig, max_new_tokens: int | None = None):
        from ..runtime.backends import open_engine_backend

        key = (layout, config)
        if key in self._pipelines:
            self._pipelines.move_to_end(key)
            return self._pipelines[key]
        pipeline = open_engine_backend(self.manifest, layout, config, graphs=self.graphs,
                                       max_new_tokens=max_new_tokens)
        self._pipelines[key] = pipeline
        while len(self._pipelines) > CACHED_PIPELINES:
            # Dropped, not closed: a served request may still be decoding on it (its buffers go with it).
            self._pipelines.popitem(last=False)
        return pipeline

    def text_embeds(self, ids):
        """[T, D] fp32 on the CPU: the embed graph's rows for text ids [T] (run by the built layout's
        pipeline: the embed graph does not depend on the layout)."""
        pipeline = self.pipeline(self.manifest.layout, self.base_config)
        return pipeline.embed(ids[None])[0].float().cpu()

    def close(self) -> None:
        for pipeline in self._pipelines.values():
            pipeline.close()
        self._pipelines.clear()
        if self.front is not None:
            self.front.close()
        self.graphs.close()


@dataclass
class ReferenceRunner(Closing):
    """The PyTorch reference: a registered model's seeded weights or a local checkpoint, with its
    own encoders and tokenizer (models.media_parts.MediaParts) and decoder (transformers' Qwen2).

    name: the model's name in titles (the checkpoint directory's, or the registered one)."""

    spec: object  # models.registry.ModelSpec
    dims: object  # contract.dims.DecoderDims
    parts: object  # models.media_parts.MediaParts
    model: object  # the transformers decoder
    name: str
    device: object
    dtype: object
    rollout_impl: str = "streaming"
    front: object = field(init=False)
    backend_name = "torch"

    def __post_init__(self):
        from ..runtime.front_end import FrontEnd

        self.front = FrontEnd.from_parts(self.spec, self.parts)
        self.base_config = self.spec.preset.resolve(self.dims.num_layers)
        self.title = f"{self.name}, torch backend on {self.device} ({str(self.dtype).removeprefix('torch.')})"
        self.sources = dict(self.parts.sources)

    @classmethod
    def load(cls, spec, dims, name: str, checkpoint: Path | None = None, vision_tower: Path | None = None,
             seed: int = 0, options=None, device: str = "cpu", dtype: str = "float32",
             attn_implementation: str = "sdpa", rollout_impl: str = "streaming") -> "ReferenceRunner":
        """Load `spec`'s encoders, tokenizer and decoder (from `checkpoint`, else seeded weights)."""
        import torch

        from ..models.families import load_decoder, load_media_parts

        if not spec.has_media:
            raise FastAVError(f"{spec.name} has no media path (encoders, tokenizer) to answer questions about videos")
        torch_dtype = getattr(torch, dtype)
        parts = load_media_parts(spec, dims, checkpoint, vision_tower, seed=seed, options=options)
        model = load_decoder(spec, checkpoint, seed, torch_dtype, torch.device(device), attn_implementation)
        return cls(spec, dims, parts, model, name, torch.device(device), torch_dtype, rollout_impl)

    def preset_target(self, layout: TokenLayout | None = None) -> PresetTarget:
        return PresetTarget.of(self.name, self.spec.family, layout or self.spec.default_layout(), self.dims.num_layers)

    def check(self, layout, config: PruningConfig, max_new_tokens: int, name=None) -> None:
        """The reference runs any config; the prompt's size is checked once its layout is known."""
        from ..runtime.token_limit import TokenLimit

        self.front.token_limit = TokenLimit.of_model(self.dims.max_position_embeddings, max_new_tokens)

    def check_prompt(self, layout: TokenLayout, config: PruningConfig, max_new_tokens: int) -> None:
        from ..contract.run_limits import check_layout_positions, check_run_memory

        check_layout_positions(layout, self.dims, max_new_tokens)
        check_run_memory(layout, config, self.dims, 1, max_new_tokens, self.dtype.itemsize, synthetic=False)

    def pipeline(self, layout: TokenLayout, config: PruningConfig, max_new_tokens: int | None = None):
        from ..reference.torch_reference import TorchReference

        return TorchReference(self.model, layout, config, rollout_impl=self.rollout_impl)

    def text_embeds(self, ids):
        """[T, D] fp32 on the CPU: the decoder's embedding rows for text ids [T]."""
        import torch

        with torch.no_grad():
            return self.model.model.embed_tokens(torch.from_numpy(ids).to(self.device)).float().cpu()

    def close(self) -> None:
        self.front.close()
