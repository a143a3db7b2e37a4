"""Names and order of every exported graph's inputs and outputs.

The exporter, the manifest (`config.json`) and every runtime take names from here, so
a graph and the code that feeds it cannot drift apart. KV names follow the usual
convention: inputs `past_key_values.{i}.key|value`, outputs `present.{i}.key|value`,
with i the decoder layer's own index.
"""

from __future__ import annotations

EMBED, PRE, TOPK_GATHER = "embed", "pre", "topk_gather"


def post(layer: int) -> str:
    return f"post_{layer}"


def past(layer: int) -> list[str]:
    return [f"past_key_values.{layer}.key", f"past_key_values.{layer}.value"]


def present(layer: int) -> list[str]:
    return [f"present.{layer}.key", f"present.{layer}.value"]


def embed_io() -> tuple[list[str], list[str]]:
    return ["input_ids"], ["inputs_embeds"]


def pre_io(global_layer: int, rollout: bool) -> tuple[list[str], list[str]]:
    inputs = ["inputs_embeds", "position_ids", "past_length"]
    outputs = ["hidden_states"]
    for layer in range(global_layer):
        inputs += past(layer)
        outputs += present(layer)
    if rollout:
        inputs += ["rollout_weights", "rollout_alpha"]
        outputs += ["importance"]
    return inputs, outputs


def post_io(layer: int, final: bool) -> tuple[list[str], list[str]]:
    inputs = ["hidden_states", "position_ids", "past_length", *past(layer)]
    outputs = ["logits" if final else "layer_output", *present(layer), "last_query_scores"]
    return inputs, outputs


TOPK_INPUTS = ("scores", "hidden_states", "position_ids", "candidates", "protected", "keep")
TOPK_OUTPUTS = ("kept_index", "kept_hidden_states", "kept_position_ids")


def topk_gather_io() -> tuple[list[str], list[str]]:
    return list(TOPK_INPUTS), list(TOPK_OUTPUTS)
