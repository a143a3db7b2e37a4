"""Client-side helpers for the served models (tritonclient's HTTP or gRPC module).

    from tritonclient import grpc
    inputs = request_inputs(grpc, input_ids, mm_embeds, max_new_tokens=8)

builds the InferInputs of one request: input_ids INT64 [N], mm_embeds FP32/FP16 [M, D],
and the optional inputs that are given (layout and pruning as JSON text in UTF-8 bytes).

    inputs = media_request_inputs(grpc, "What is happening?", open("clip.mp4", "rb").read())

builds a media request instead (engines built with their encoders): the question and the
video file's bytes; the answer comes back as `text` (UTF-8 bytes) beside `token_ids`.
"""

from __future__ import annotations

import json

import numpy as np

# How a served model's "queue full" error begins (UNAVAILABLE: retry later); clients that get only
# the message, as over a gRPC stream, recognise it by this.
BUSY = "server busy"

TRITON_DTYPES = {np.dtype(np.int64): "INT64", np.dtype(np.int32): "INT32", np.dtype(np.float32): "FP32",
                 np.dtype(np.float16): "FP16", np.dtype(np.uint8): "UINT8", np.dtype(np.float64): "FP64",
                 np.dtype(np.bool_): "BOOL"}


def json_bytes(value) -> np.ndarray:
    """A JSON input (layout, pruning): the text's UTF-8 bytes, UINT8 [n]. Strings are sent as they are."""
    text = value if isinstance(value, str) else json.dumps(value)
    return np.frombuffer(text.encode("utf-8"), np.uint8)


def infer_input(module, name: str, array: np.ndarray):
    array = np.ascontiguousarray(array)
    tensor = module.InferInput(name, list(array.shape), TRITON_DTYPES[array.dtype])
    tensor.set_data_from_numpy(array)
    return tensor


def request_inputs(module, input_ids: np.ndarray, mm_embeds: np.ndarray, layout=None, max_new_tokens=None,
                   fine_ratio=None, pruning=None) -> list:
    """module: tritonclient.http or tritonclient.grpc. layout: a list of segments or JSON text."""
    inputs = [infer_input(module, "input_ids", np.asarray(input_ids)),
              infer_input(module, "mm_embeds", np.asarray(mm_embeds))]
    if layout is not None:
        inputs.append(infer_input(module, "layout", json_bytes(layout)))
    return inputs + _generation_inputs(module, max_new_tokens, fine_ratio, pruning)


def _generation_inputs(module, max_new_tokens, fine_ratio, pruning) -> list:
    """The optional inputs both request forms share."""
    inputs = []
    if max_new_tokens is not None:
        inputs.append(infer_input(module, "max_new_tokens", np.array([max_new_tokens], np.int32)))
    if fine_ratio is not None:
        inputs.append(infer_input(module, "fine_ratio", np.array([fine_ratio], np.float32)))
    if pruning is not None:
        inputs.append(infer_input(module, "pruning", json_bytes(pruning)))
    return inputs


def media_request_inputs(module, question: str, video: bytes, audio: bytes | None = None, max_new_tokens=None,
                         fine_ratio=None, pruning=None, silent_audio: bool = False) -> list:
    """module: tritonclient.http or tritonclient.grpc. video, audio: the files' bytes.
    silent_audio: a video without an audio track is answered with silence (otherwise an error)."""
    inputs = [infer_input(module, "question", np.frombuffer(question.encode("utf-8"), np.uint8)),
              infer_input(module, "media", np.frombuffer(video, np.uint8))]
    if audio is not None:
        inputs.append(infer_input(module, "audio", np.frombuffer(audio, np.uint8)))
    if silent_audio:
        inputs.append(infer_input(module, "silent_audio", np.array([True])))
    return inputs + _generation_inputs(module, max_new_tokens, fine_ratio, pruning)


def answer_text(text_bytes) -> str:
    """The `text` output (UTF-8 bytes, UINT8 [n]) as a string."""
    return np.asarray(text_bytes, np.uint8).tobytes().decode("utf-8", errors="replace")
