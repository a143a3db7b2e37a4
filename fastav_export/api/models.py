"""Which model a checkpoint directory or a registered name is, for the PyTorch reference."""

from __future__ import annotations

from pathlib import Path

from ..errors import FastAVError
from ..models import get_model_spec, model_names


def checkpoint_spec(checkpoint: str | Path, model: str | None = None):
    """The spec of a local snapshot (its family's full-size spec, or `model`'s), with what its
    config.json sets (VideoLLaMA2: num_frames); None for a plain Qwen2 checkpoint without `model`."""
    from ..models.checkpoint import checkpoint_family, read_config
    from ..models.families import find_family

    family_name, _ = checkpoint_family(checkpoint)  # also refuses what is not a supported checkpoint
    if model:
        spec = get_model_spec(model)
        family = find_family(spec.family)
    else:  # a plain Qwen2 checkpoint has no family folder, so no spec
        family = find_family(family_name)
        spec = family.full_size_spec() if family is not None else None
    if spec is None:
        return None
    return family.for_checkpoint(spec, read_config(Path(checkpoint)), f"{checkpoint}/config.json")


def checkpoint_dims(spec, checkpoint: str | Path):
    """The decoder's dimensions from the checkpoint's config.json."""
    from ..models.checkpoint import read_config
    from ..models.families import checkpoint_decoder_dims

    return checkpoint_decoder_dims(spec, read_config(Path(checkpoint)), f"{checkpoint}/config.json")


def open_reference(source: str | Path, device: str = "cpu", dtype: str = "float32", model: str | None = None):
    """A `ReferenceRunner` for a checkpoint directory (read as `model` when given) or a registered tiny
    model's name."""
    import torch

    from .runners import ReferenceRunner

    if dtype not in ("float32", "float16", "bfloat16"):
        raise FastAVError(f"dtype {dtype!r} is not one of float32, float16, bfloat16")
    try:
        torch_device = torch.device(device)
    except (RuntimeError, TypeError):
        raise FastAVError(f"device {device!r} is not a torch device: use cpu or cuda") from None
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise FastAVError("device cuda but this torch has no CUDA device: use device='cpu'")
    path = Path(source)
    if model is not None and model not in model_names():
        raise FastAVError(f"model {model!r} is not registered: use one of {', '.join(model_names())}")
    if path.is_dir():
        spec = checkpoint_spec(path, model)
        if spec is None:
            raise FastAVError(f"{path} is a plain Qwen2 checkpoint: it has no encoders to answer questions about "
                              "videos")
        return ReferenceRunner.load(spec, checkpoint_dims(spec, path), path.resolve().name, checkpoint=path,
                                    device=device, dtype=dtype)
    if model is not None:
        raise FastAVError(f"model names a checkpoint directory's model, but {source} is not a directory")
    if str(source) not in model_names():
        raise FastAVError(f"{source} is neither an engine directory, a checkpoint directory nor a registered model "
                          f"({', '.join(model_names())})")
    spec = get_model_spec(str(source))
    if not spec.is_tiny:
        raise FastAVError(f"{spec.name} has no built-in weights: open a local checkpoint directory of it, or "
                          f"{spec.name}-tiny")
    return ReferenceRunner.load(spec, spec.dims, spec.name, device=device, dtype=dtype)
