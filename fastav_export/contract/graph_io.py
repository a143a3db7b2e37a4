"""Names and order of every exported graph's inputs and outputs.

The exporter, the manifest (`config.json`) and every runtime take names from here, so
a graph and the code that feeds it cannot drift apart. KV names follow the usual
convention: inputs `past_key_values.{i}.key|value`, outputs `present.{i}.key|value`,
with i the decoder layer's own index.

A cut (the global one inside the pre graph, a fine one inside every post graph but
the last) takes the TopKGather inputs `candidates`, `protected` and `keep` and returns
`kept_index` and `kept_position_ids` beside the kept tokens' hidden states.
"""

from __future__ import annotations

EMBED, PRE = "embed", "pre"

# Graph flavours (which attention op the graphs use; see export/custom_ops.py) and what
# their `present.*` outputs hold: the layer's whole KV buffer, written in place by the
# graph (past and present bound to the same memory), or only the new entries, which the
# runtime appends.
FLAVOURS = ("ort-contrib", "onnx-standard")
IN_PLACE_KV = {"ort-contrib": True, "onnx-standard": False}
DEFAULT_FLAVOUR = {"ort": "ort-contrib", "trt": "onnx-standard"}  # per engine backend

CUT_INPUTS = ["candidates", "protected", "keep"]
CUT_OUTPUTS = ["kept_index", "kept_position_ids"]


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
    outputs = ["hidden_states", *CUT_OUTPUTS]
    for layer in range(global_layer):
        inputs += past(layer)
        outputs += present(layer)
    inputs += CUT_INPUTS
    if rollout:
        inputs += ["rollout_weights", "rollout_alpha", "rollout_enabled"]
        outputs += ["importance"]
    return inputs, outputs


def post_io(layer: int, final: bool) -> tuple[list[str], list[str]]:
    inputs = ["hidden_states", "position_ids", "past_length", *past(layer)]
    if final:
        return inputs, ["logits", *present(layer)]
    return inputs + CUT_INPUTS, ["layer_output", *CUT_OUTPUTS, *present(layer), "last_query_scores"]


# TopKGather's own inputs and outputs (the op inside the graphs, and its ONNX function).
TOPK_INPUTS = ("scores", "hidden_states", "position_ids", "candidates", "protected", "keep")
TOPK_OUTPUTS = ("kept_index", "kept_hidden_states", "kept_position_ids")
