"""Shared fixtures: the tiny seed models, built once per test session."""

from __future__ import annotations

import functools

import pytest
import torch

from fastav_export.models import get_model_spec
from fastav_export.torch_backend.model_factory import build_model

TINY_MODELS = ("videollama2-tiny", "video-salmonn2-tiny")


@functools.lru_cache(maxsize=None)
def tiny_model(name: str, seed: int = 0, attn_implementation: str = "sdpa", dtype=torch.float32):
    """A tiny seed model with seeded random weights (cached: tests must not modify it)."""
    return build_model(get_model_spec(name), seed=seed, attn_implementation=attn_implementation, dtype=dtype)


@pytest.fixture(params=TINY_MODELS)
def tiny_name(request) -> str:
    return request.param
