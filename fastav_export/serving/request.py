"""One serving request: Triton's input tensors -> a validated decoder input.

The placeholder convention: `input_ids` [N] is the whole prompt *after* the layout's
expansion, one id per decoder position. Every video or audio position of the layout
carries the model's placeholder id (VideoLLaMA2's `<video>` is -201), every text
position a real token id in [0, vocab). So len(input_ids) = N of the layout, and
`mm_embeds` [M, D] holds one encoder output row per placeholder, M = the number of
video + audio positions, in the order they appear. Text positions are embedded with the
engine's own table (the `embed` graph), then the rows of `mm_embeds` replace the
placeholders in order.

A media request sends instead the question (`question`, UTF-8 text as UINT8 bytes) and the
video file's bytes (`media`, UINT8 [n]; optionally `audio`, an audio file's bytes that replace
the video's track, or `silent_audio`, BOOL [1], true to give a video without an audio track
silence): the engine's encoders and tokenizer turn them into the same decoder input
(`parse_media_request`, then `ServedEngine`), and the answer comes back as text.

Everything here is plain numpy, so requests are validated and tested without Triton;
every problem is one `FastAVError` line that names the input and says what to send.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..contract.layout import KIND_CODES, TokenLayout
from ..contract.pruning_config import PruningConfig
from ..engine.manifest import EngineManifest
from ..engine.requests import check_request
from ..errors import FastAVError
from ..media.decode import MediaBytes
from ..runtime.prompt_embeds import Prompt
from ..user_io.embeds_file import require_finite
from ..user_io.json_input import parse_json

# Input tensors of the served models (names and Triton types are in templates/config.pbtxt).
INPUT_IDS, MM_EMBEDS, LAYOUT, MAX_NEW_TOKENS, FINE_RATIO, PRUNING = (
    "input_ids", "mm_embeds", "layout", "max_new_tokens", "fine_ratio", "pruning")
QUESTION, MEDIA, AUDIO, SILENT_AUDIO = "question", "media", "audio", "silent_audio"
MEDIA_INPUTS = (QUESTION, MEDIA, AUDIO, SILENT_AUDIO)
INPUT_NAMES = (INPUT_IDS, MM_EMBEDS, LAYOUT, MAX_NEW_TOKENS, FINE_RATIO, PRUNING, *MEDIA_INPUTS)
# Pruning settings a request may change: everything but K, where the graphs split the decoder.
OVERRIDABLE = tuple(f.name for f in fields(PruningConfig) if f.name != "global_layer")
MM_DTYPES = (np.float32, np.float16)
# layout and pruning are JSON text sent as UINT8 [n] (its UTF-8 bytes), not as a BYTES
# string: the python backend stub of Triton 2.51 is built against numpy 1.x and crashes
# on BYTES inputs when the server's Python has numpy 2, while UINT8 works with both.
JSON_INPUTS = (LAYOUT, PRUNING)


def request_field(setting: str) -> str:
    """How errors name a setting: the request's own field (`fine_ratio`), never a CLI flag."""
    return setting


@dataclass(frozen=True)
class ServingRequest(Prompt):
    """A validated request: the decoder's prompt (`runtime.prompt_embeds.Prompt`: input_ids [N] with
    placeholders, mm_embeds [M, D] float32, the layout; `text_ids()`, `splice()`) and how to generate.

    config:   the resolved pruning config (with the layout, the cache key of the backend).
    stop_ids: ids that end generation (the end-of-turn token of a media request's answer).
    """

    config: PruningConfig
    max_new_tokens: int
    stop_ids: tuple[int, ...] = ()  # media requests: generation ends at the end of the turn


_SEND = {int: "an integer (INT32 or INT64)", float: "a number (FP32)", bool: "BOOL [1], e.g. np.array([True])"}


def _scalar(inputs: dict, name: str, kind):
    """An optional one-value input of `kind` (int, float or bool); None when absent."""
    value = inputs.get(name)
    if value is None:
        return None
    array = np.asarray(value)
    if array.size != 1:
        raise FastAVError(f"input {name} is {array.dtype} shape {list(array.shape)}: send one value, shape [1]: "
                          f"{_SEND[kind]}")
    if kind is bool and array.dtype != np.bool_:
        raise FastAVError(f"input {name} is {array.dtype}: send {_SEND[bool]}")
    if kind is int and not np.issubdtype(array.dtype, np.integer):
        raise FastAVError(f"input {name} is {array.dtype}: send {_SEND[int]}")
    if kind is float and not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise FastAVError(f"input {name} is {array.dtype}: send {_SEND[float]}")
    return kind(array.reshape(-1)[0])


def _text(inputs: dict, name: str) -> str | None:
    """A JSON input, sent as UTF-8 bytes in a UINT8 [n] tensor (see JSON_INPUTS)."""
    value = inputs.get(name)
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype != np.uint8 or array.ndim != 1:
        raise FastAVError(f"input {name} is {array.dtype} {list(array.shape)}: send the JSON text's UTF-8 bytes "
                          "as UINT8 [n], e.g. np.frombuffer(text.encode(), np.uint8)")
    try:
        return array.tobytes().decode("utf-8")
    except UnicodeDecodeError:
        raise FastAVError(f"input {name} is not UTF-8 text: send the JSON text's UTF-8 bytes") from None


def _json(text: str, name: str):
    return parse_json(text, f"input {name}")


def request_config(base: PruningConfig, num_layers: int, fine_ratio: float | None,
                   pruning_json: str | None) -> PruningConfig:
    """The engine's pruning defaults with the request's overrides, validated and resolved."""
    overrides = {}
    if pruning_json is not None:
        data = _json(pruning_json, PRUNING)
        if not isinstance(data, dict):
            raise FastAVError(f'input {PRUNING} must be a JSON object like {{"fine_ratio": 0.3}}')
        if "global_layer" in data:
            raise FastAVError("input pruning sets global_layer, which the engine's graphs fix: drop it "
                              "(or build another engine with --global-layer)")
        unknown = sorted(set(data) - set(OVERRIDABLE))
        if unknown:
            raise FastAVError(f"input pruning has unknown settings {unknown}: allowed are {', '.join(OVERRIDABLE)}")
        overrides.update(data)
    if fine_ratio is not None:
        overrides["fine_ratio"] = fine_ratio  # validated with the rest: NaN is outside [0, 1)
    return base.with_overrides(overrides, num_layers, name=request_field)


def parse_request(inputs: dict, manifest: EngineManifest, placeholder_id: int,
                  default_max_new_tokens: int) -> ServingRequest:
    """Validate one request's tensors (name -> numpy array; absent optional inputs left out)."""
    dims = manifest.dims
    if INPUT_IDS not in inputs or MM_EMBEDS not in inputs:
        missing = [name for name in (INPUT_IDS, MM_EMBEDS) if name not in inputs]
        raise FastAVError(f"missing input {', '.join(missing)}: send input_ids [N] INT64 and mm_embeds [M, D]")
    media_only = [name for name in MEDIA_INPUTS if name in inputs]
    if media_only:
        raise FastAVError(f"input {', '.join(media_only)} belongs to a media request (question, media), not to "
                          "one with input_ids and mm_embeds: drop it, or send question and media instead")
    ids = np.asarray(inputs[INPUT_IDS])
    if ids.dtype != np.int64:
        raise FastAVError(f"input input_ids is {ids.dtype}: send INT64")
    if ids.ndim != 1 or ids.size == 0:
        raise FastAVError(f"input input_ids has shape {list(ids.shape)}: send the prompt as [N], N > 0")
    layout_text = _text(inputs, LAYOUT)
    layout = manifest.layout if layout_text is None else TokenLayout.from_json(_json(layout_text, LAYOUT))
    if layout.n_tokens != ids.size:
        source = "the engine's default layout" if layout_text is None else "the layout input"
        raise FastAVError(f"{source} covers {layout.n_tokens} tokens but input_ids has {ids.size}: send a layout "
                          "whose segment lengths add up to len(input_ids)")
    max_new_tokens = _scalar(inputs, MAX_NEW_TOKENS, int)
    max_new_tokens = default_max_new_tokens if max_new_tokens is None else max_new_tokens
    if max_new_tokens < 1:
        raise FastAVError(f"input max_new_tokens is {max_new_tokens}: generate at least 1 token")
    config = request_config(manifest.pruning, dims.num_layers, _scalar(inputs, FINE_RATIO, float),
                            _text(inputs, PRUNING))
    check_request(manifest, layout, config, max_new_tokens, name=request_field, for_client=True)
    if layout.n_tokens + max_new_tokens > dims.max_position_embeddings:
        raise FastAVError(f"{layout.n_tokens} tokens + {max_new_tokens} new exceed the model's "
                          f"{dims.max_position_embeddings} positions: shorten the prompt or max_new_tokens")

    multimodal = layout.kind_codes() != KIND_CODES["text"]
    wrong = np.flatnonzero((ids == placeholder_id) != multimodal)
    if wrong.size:
        at = int(wrong[0])
        expected = f"the placeholder {placeholder_id}" if multimodal[at] else "a text token id"
        raise FastAVError(f"input_ids[{at}] is {int(ids[at])} but the layout has a "
                          f"{'multimodal' if multimodal[at] else 'text'} position there, which takes {expected} "
                          f"({wrong.size} positions disagree): put {placeholder_id} at every video/audio position")
    text = ids[~multimodal]
    if text.size and (text.min() < 0 or text.max() >= dims.vocab_size):
        bad = int(text[(text < 0) | (text >= dims.vocab_size)][0])
        raise FastAVError(f"input_ids holds the text token id {bad}, outside the vocabulary [0, {dims.vocab_size})")

    embeds = np.asarray(inputs[MM_EMBEDS])
    if embeds.dtype not in MM_DTYPES:
        raise FastAVError(f"input mm_embeds is {embeds.dtype}: send FP32 or FP16")
    m = int(multimodal.sum())
    if embeds.shape != (m, dims.hidden_size):
        raise FastAVError(f"input mm_embeds has shape {list(embeds.shape)} but the layout has {m} video/audio "
                          f"positions and the model's hidden size is {dims.hidden_size}: send [{m}, {dims.hidden_size}]")
    require_finite(embeds, "input mm_embeds")
    return ServingRequest(ids, embeds.astype(np.float32), layout, config, max_new_tokens)


@dataclass(frozen=True)
class MediaRequest:
    """A validated media request: the question, the video file's bytes, optionally an audio file's
    (both `MediaBytes`, named after their input for messages), and whether a video without an audio
    track gets silence."""

    question: str
    video: bytes
    audio: bytes | None
    config: PruningConfig
    max_new_tokens: int
    silent_audio: bool = False


def _file_bytes(inputs: dict, name: str) -> bytes | None:
    value = inputs.get(name)
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype != np.uint8 or array.ndim != 1 or array.size == 0:
        raise FastAVError(f"input {name} is {array.dtype} {list(array.shape)}: send the file's bytes as UINT8 [n], "
                          "e.g. np.fromfile(path, np.uint8)")
    return MediaBytes(array.tobytes(), input_label(name))


def input_label(name: str) -> str:
    """How messages name a request input, e.g. "the `audio` input" (never "the media data" or a flag)."""
    return f"the `{name}` input"


def parse_media_request(inputs: dict, manifest: EngineManifest, default_max_new_tokens: int) -> MediaRequest:
    """Validate a media request's tensors (question + media [+ audio], optional generation settings)."""
    if manifest.media is None:
        raise FastAVError("this engine holds the decoder only (no encoders or tokenizer): send input_ids and "
                          "mm_embeds, or serve an engine built with its encoders")
    decoder_inputs = [name for name in (INPUT_IDS, MM_EMBEDS, LAYOUT) if name in inputs]
    if decoder_inputs:
        raise FastAVError(f"a media request (question, media) cannot also send {', '.join(decoder_inputs)}: "
                          "send one form or the other")
    missing = [name for name in (QUESTION, MEDIA) if name not in inputs]
    if missing:
        raise FastAVError(f"missing input {', '.join(missing)}: a media request sends the question's UTF-8 bytes "
                          "and the video file's bytes, both UINT8 [n]")
    question = _text(inputs, QUESTION)
    from ..text.prompt import check_question

    check_question(question, manifest.media.modal_token)
    max_new_tokens = _scalar(inputs, MAX_NEW_TOKENS, int)
    max_new_tokens = default_max_new_tokens if max_new_tokens is None else max_new_tokens
    if max_new_tokens < 1:
        raise FastAVError(f"input max_new_tokens is {max_new_tokens}: generate at least 1 token")
    config = request_config(manifest.pruning, manifest.dims.num_layers, _scalar(inputs, FINE_RATIO, float),
                            _text(inputs, PRUNING))
    silent_audio = bool(_scalar(inputs, SILENT_AUDIO, bool))
    if silent_audio and AUDIO in inputs:
        raise FastAVError(f"inputs {AUDIO} and {SILENT_AUDIO} contradict each other: drop one")
    return MediaRequest(question, _file_bytes(inputs, MEDIA), _file_bytes(inputs, AUDIO), config, max_new_tokens,
                        silent_audio)
