"""The limits an engine was built for, checked where a pipeline opens and where a request arrives."""

from __future__ import annotations

from collections.abc import Callable

from ..contract.layout import TokenLayout
from ..contract.pruning_config import PruningConfig, cli_flag
from ..errors import FastAVError
from .manifest import EngineManifest


def check_request(manifest: EngineManifest, layout: TokenLayout, config: PruningConfig,
                  max_new_tokens: int | None = None, name: Callable[[str], str] = cli_flag) -> None:
    """One-line errors for a layout, pruning config or generation length the engine cannot serve.

    name: how a message names a setting the caller can change (default: `run`'s flags;
    the Triton request parser names request fields).
    """
    if layout.n_tokens > manifest.max_tokens:
        raise FastAVError(f"the layout has {layout.n_tokens} tokens but the engine was built for at most "
                          f"{manifest.max_tokens}: rebuild it with `fastav-export build --max-tokens "
                          f"{layout.n_tokens}`")
    if config.global_layer != manifest.global_layer:
        raise FastAVError(f"the engine's graphs split the decoder at layer {manifest.global_layer}, not "
                          f"{config.global_layer}: drop {name('global_layer')} or rebuild it with "
                          f"`fastav-export build --global-layer {config.global_layer}`")
    if config.global_policy == "rollout" and not manifest.rollout:
        raise FastAVError(f"this engine was built without rollout importance: set {name('global_policy')} "
                          "positional, or rebuild it with `fastav-export build --global-policy rollout`")
    if max_new_tokens is not None and max_new_tokens > manifest.max_new_tokens:
        raise FastAVError(f"{max_new_tokens} new tokens exceed the engine's limit of {manifest.max_new_tokens}: "
                          f"ask for at most {manifest.max_new_tokens} with {name('max_new_tokens')}, or rebuild it "
                          f"with `fastav-export build --max-new-tokens {max_new_tokens}`")
