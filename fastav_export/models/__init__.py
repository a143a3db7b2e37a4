"""Registered models. Importing this package registers every family."""

from . import qwen2, video_salmonn2, videollama2  # noqa: F401  (registration side effects)
from .registry import (
    ModelSpec,
    all_specs,
    get_model_spec,
    model_names,
    placeholder_id_for,
)

__all__ = ["ModelSpec", "all_specs", "get_model_spec", "model_names", "placeholder_id_for"]
