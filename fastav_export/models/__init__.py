"""Registered models. Importing this package registers every family."""

from . import qwen2, video_salmonn2, videollama2  # noqa: F401  (registration side effects)
from .registry import DecoderDims, ModelSpec, all_specs, get_model_spec, model_names

__all__ = ["DecoderDims", "ModelSpec", "all_specs", "get_model_spec", "model_names"]
