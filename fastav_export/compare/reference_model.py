"""The PyTorch reference of an engine: the same weights, reloaded in fp32.

`fastav-export build` records where its weights came from in the manifest's `source`:
`{"kind": "random", "seed": S}` (a registered model's seeded random weights) or
`{"kind": "checkpoint", "path": DIR}` (a local snapshot). The reference is rebuilt from
that record, always in fp32 on CPU, so an fp16 engine is checked against the fp32
model it was cast from.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..engine.manifest import EngineManifest
from ..errors import FastAVError

log = logging.getLogger("fastav_export")


def reference_model(manifest: EngineManifest, attn_implementation: str = "sdpa"):
    """The transformers `Qwen2ForCausalLM` (fp32, CPU) whose weights `manifest`'s graphs hold."""
    source = manifest.source or {}
    kind = source.get("kind")
    if kind == "random":
        return _seeded(manifest, int(source.get("seed", 0)), attn_implementation)
    if kind == "checkpoint":
        return _checkpoint(manifest, Path(source.get("path", "")), attn_implementation)
    raise FastAVError(f"{manifest.path} does not record where its weights came from (source {source!r}): "
                      "rebuild it with `fastav-export build`, or compare with --against ort")


def _seeded(manifest: EngineManifest, seed: int, attn_implementation: str):
    from ..models import get_model_spec, model_names
    from ..models.model_factory import build_model

    spec = get_model_spec(manifest.model) if manifest.model in model_names() else None
    if spec is None or spec.dims != manifest.dims:
        raise FastAVError(f"{manifest.path} was built from seeded random weights of {manifest.model!r}, which "
                          "this fastav-export does not register with the same dimensions: compare with --against ort")
    return build_model(spec, seed=seed, dtype=torch.float32, attn_implementation=attn_implementation)


def _checkpoint(manifest: EngineManifest, path: Path, attn_implementation: str):
    from ..models.checkpoint import load_qwen2_checkpoint

    if not path.is_dir():
        raise FastAVError(f"{manifest.path} was built from the checkpoint {path}, which is not there any more: "
                          "restore it, or compare with --against ort")
    loaded = load_qwen2_checkpoint(path, dtype=torch.float32, device="cpu", attn_implementation=attn_implementation)
    log.info(f"reference: the decoder of {path}; {loaded.describe_skipped()}")
    return loaded.model
