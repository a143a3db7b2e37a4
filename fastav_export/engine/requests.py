"""The limits an engine was built for, checked where a pipeline opens and where a request arrives."""

from __future__ import annotations

from collections.abc import Callable

from ..contract.layout import TokenLayout
from ..contract.pruning_config import PruningConfig, cli_flag
from ..errors import FastAVError
from .manifest import EngineManifest


def check_request(manifest: EngineManifest, layout: TokenLayout, config: PruningConfig,
                  max_new_tokens: int | None = None, name: Callable[[str], str] = cli_flag,
                  for_client: bool = False) -> None:
    """One-line errors for a layout, pruning config or generation length the engine cannot serve.

    name:       how a message names a setting the caller can change (default: `run`'s flags;
                the Triton request parser names request fields).
    for_client: the message goes to a client of a served engine, who cannot rebuild it: it says
                what to send instead, and suggests no `fastav-export build`.
    A rebuild is suggested only where the model's positions can hold it (prompt + new tokens).
    """
    positions = manifest.dims.max_position_embeddings
    new_tokens = max_new_tokens if max_new_tokens is not None else manifest.max_new_tokens
    if layout.n_tokens > manifest.max_tokens:
        problem = f"the layout has {layout.n_tokens} tokens but the engine was built for at most {manifest.max_tokens}"
        if for_client:
            raise FastAVError(f"{problem}: send a prompt of at most {manifest.max_tokens} tokens")
        if layout.n_tokens + new_tokens > positions:
            raise FastAVError(f"{problem}, and with {new_tokens} new tokens the model's {positions} positions hold at "
                              f"most {max(positions - new_tokens, 0)} prompt tokens: shorten the layout")
        raise FastAVError(f"{problem}: rebuild it with `fastav-export build --max-tokens {layout.n_tokens}`")
    rebuild = "" if for_client else " or rebuild it with `fastav-export build {}`"
    if config.global_layer != manifest.global_layer:
        raise FastAVError(f"the engine's graphs split the decoder at layer {manifest.global_layer}, not "
                          f"{config.global_layer}: drop {name('global_layer')}"
                          + rebuild.format(f"--global-layer {config.global_layer}"))
    if config.global_policy == "rollout" and not manifest.rollout:
        raise FastAVError(f"this engine was built without rollout importance: set {name('global_policy')} "
                          "positional" + rebuild.format("--global-policy rollout"))
    if max_new_tokens is not None and max_new_tokens > manifest.max_new_tokens:
        problem = (f"{max_new_tokens} new tokens exceed the engine's limit of {manifest.max_new_tokens}: ask for at "
                   f"most {manifest.max_new_tokens} with {name('max_new_tokens')}")
        if for_client:
            raise FastAVError(problem)
        if layout.n_tokens + max_new_tokens > positions:
            raise FastAVError(f"{problem} (the model's {positions} positions hold at most "
                              f"{max(positions - layout.n_tokens, 0)} after this {layout.n_tokens}-token prompt)")
        # A rebuild keeps the prompt limit unless prompt + new tokens would not fit the positions.
        prompt_limit = (f" --max-tokens {positions - max_new_tokens}"
                        if manifest.max_tokens + max_new_tokens > positions else "")
        raise FastAVError(f"{problem}, or rebuild it with "
                          f"`fastav-export build --max-new-tokens {max_new_tokens}{prompt_limit}`")
