"""Qwen2.5-Omni end to end against transformers, on a tiny snapshot in the released format.

`fastav-export build --checkpoint SNAP`, then `run ENGINE --video CLIP --question Q --no-prune --json`
gives the greedy tokens and text of transformers' own thinker
(`Qwen2_5OmniThinkerForConditionalGeneration.generate(do_sample=False)`, the snapshot's weights) on the
inputs `Qwen2_5OmniProcessor` makes from the same clip and question (`processor_inputs.py`: the processor's
own call, with the PIL image processor standing in for its torchvision video processor). What the processor
is handed is what qwen-omni-utils hands it: the frames it samples (listed per clip below), resized to
`smart_resize`'s size (torchvision's antialiased bicubic: `resize_frames`, checked in test_media.py), and
the track at 16 kHz mono.

With pruning on, the engine and the PyTorch reference keep the same tokens and answer the same.
One snapshot and one engine (built for rollout, which also runs dense) serve the whole module.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from transformers.models.qwen2_5_omni.processing_qwen2_5_omni import (
    Qwen2_5OmniProcessor,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

from fastav_export.cli import main
from fastav_export.engine.manifest import load_engine_dir
from fastav_export.media.decode import read_audio, read_frames_at
from fastav_export.models.families import get_family
from fastav_export.models.families.qwen2_5_omni.chat import messages
from fastav_export.models.families.qwen2_5_omni.frame_resize import resize_frames
from fastav_export.models.families.qwen2_5_omni.snapshot import load_thinker
from fastav_export.runtime.front_end import FrontEnd
from fastav_export.testing.media_clips import write_test_clip

from .processor_inputs import omni_processor, processor_inputs

pytestmark = pytest.mark.slow

QUESTION = "What is happening?"
NEW_TOKENS = 12
BUDGET = "0.3"

# name -> (seconds, with an audio track, the frames qwen-omni-utils samples from the clip's 8 fps:
# `smart_nframes` at 2 fps, at least 4 and at most the clip's frames, even, at rounded linspace indices).
CLIPS = {
    "0.25s": (0.25, True, [0, 1]),  # the shortest clip: 2 frames, one temporal grid, 6 audio tokens
    "1s": (1.0, True, [0, 2, 5, 7]),  # the 4-frame minimum: sampled at 4 fps, still 1 s a grid for TMRoPE
    "3s": (3.0, True, [0, 5, 9, 14, 18, 23]),
    "5s": (5.0, True, [0, 4, 9, 13, 17, 22, 26, 30, 35, 39]),  # odd: the last 2 s chunk holds one grid
    "3s-without-audio": (3.0, False, [0, 5, 9, 14, 18, 23]),
}


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    return get_family("qwen2.5-omni").write_tiny_snapshot(tmp_path_factory.mktemp("omni-snapshot"), seed=0)


@pytest.fixture(scope="module")
def engine(snapshot, tmp_path_factory):
    out = tmp_path_factory.mktemp("omni-engines") / "qwen2.5-omni-tiny-fp32"
    assert main(["build", "--checkpoint", str(snapshot), "--out", str(out), "--global-policy", "rollout",
                 "--global-budget", BUDGET, "-q"]) == 0
    return out


@pytest.fixture(scope="module")
def thinker(snapshot):
    return load_thinker(snapshot).thinker


@pytest.fixture(scope="module")
def tokenizer(snapshot):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(snapshot), local_files_only=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("omni-parity-clips")
    return {name: write_test_clip(folder / f"{name}.mp4", seconds=seconds, audio=audio)
            for name, (seconds, audio, _) in CLIPS.items()}


@pytest.fixture(scope="module")
def upstream_inputs(tokenizer, clips):
    """name -> what the processor makes of that clip and QUESTION (computed once per clip)."""
    made = {}

    def inputs(name: str) -> dict:
        if name not in made:
            _, with_audio, indices = CLIPS[name]
            clip = clips[name]
            made[name] = processor_inputs(tokenizer, messages(QUESTION), upstream_frames(clip, indices),
                                          read_audio(clip) if with_audio else None)
        return made[name]

    return inputs


def upstream_frames(clip, indices: list[int]) -> np.ndarray:
    """[T, 3, H, W] uint8: the frames at `indices`, resized to the size qwen-omni-utils gives them (transformers'
    `smart_resize` with the processor's video pixel bounds)."""
    frames = read_frames_at(clip, indices)
    bounds = Qwen2_5OmniProcessor.videos_kwargs["size"]
    size = smart_resize(frames.shape[1], frames.shape[2], 28, bounds["shortest_edge"], bounds["longest_edge"])
    return resize_frames(frames, size)


def until_end_of_turn(tokens: list[int], end: int) -> list[int]:
    """The reply's tokens up to and including the first `end`, as both sides stop there."""
    return tokens[:tokens.index(end) + 1] if end in tokens else tokens


def run_json(tmp_path, name: str, clip, *argv) -> dict:
    """The --json of `fastav-export run *argv --video clip --question QUESTION` (NEW_TOKENS at most)."""
    out = tmp_path / f"{name}.json"
    assert main(["run", *map(str, argv), "--video", str(clip), "--question", QUESTION,
                 "--max-new-tokens", str(NEW_TOKENS), "--json", str(out), "-q"]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("name", list(CLIPS))
def test_dense_engine_answers_as_transformers_generate(name, engine, thinker, tokenizer, clips, upstream_inputs,
                                                        tmp_path):
    with_audio = CLIPS[name][1]
    inputs = upstream_inputs(name)
    assert ("input_features" in inputs) == with_audio
    generated = thinker.generate(**inputs, use_audio_in_video=with_audio, do_sample=False, max_new_tokens=NEW_TOKENS,
                                 eos_token_id=tokenizer.eos_token_id, output_logits=True,
                                 return_dict_in_generate=True)
    prompt_length = inputs["input_ids"].shape[1]
    expected = until_end_of_turn(generated.sequences[0, prompt_length:].tolist(), tokenizer.eos_token_id)
    # the processor's own decoding; stripped, as `run` strips the reply
    expected_text = omni_processor(tokenizer).post_process_image_text_to_text(torch.tensor([expected]))[0].strip()

    ours = run_json(tmp_path, name, clips[name], engine, "--no-prune")
    assert ours["n_tokens"] == prompt_length
    tokens = until_end_of_turn(ours["tokens"][0], tokenizer.eos_token_id)
    assert len(tokens) >= 8 and tokens == expected
    assert ours["text"] == expected_text
    np.testing.assert_allclose(ours["logits"][0], generated.logits[0][0].numpy(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", list(CLIPS))
def test_front_end_prompt_is_the_processors_with_get_rope_index_positions(name, engine, thinker, tokenizer, clips,
                                                                          upstream_inputs):
    with_audio = CLIPS[name][1]
    inputs = upstream_inputs(name)
    with FrontEnd.from_engine(load_engine_dir(engine)) as front:
        prompt, _ = front.prompt(QUESTION, clips[name])
    input_ids = inputs["input_ids"][0].numpy()
    # The same tokens: text ids equal, each media row where the processor put its <|VIDEO|> / <|AUDIO|>.
    media = {"video": tokenizer.video_token_id, "audio": tokenizer.audio_token_id}
    kinds = np.array([s.kind for s in prompt.layout.segments for _ in range(s.length)])
    np.testing.assert_array_equal(np.where(prompt.multimodal, -1, prompt.input_ids),
                                  np.where(prompt.multimodal, -1, input_ids))
    for kind, token_id in media.items():
        np.testing.assert_array_equal(kinds == kind, input_ids == token_id)
    audio_seqlens = inputs["feature_attention_mask"].sum(-1) if with_audio else None
    positions, _ = thinker.get_rope_index(inputs["input_ids"], video_grid_thw=inputs["video_grid_thw"],
                                          attention_mask=inputs["attention_mask"], use_audio_in_video=with_audio,
                                          audio_seqlens=audio_seqlens,
                                          second_per_grids=inputs["video_second_per_grid"])
    assert prompt.positions.dtype == np.int64
    np.testing.assert_array_equal(prompt.positions, positions[:, 0].numpy())


@pytest.mark.parametrize("policy", [
    pytest.param(("--global-policy", "positional"), id="tiny-preset"),  # the first 2 chunks of 3
    pytest.param(("--global-policy", "rollout", "--global-budget", BUDGET), id="rollout"),
])
def test_pruned_engine_keeps_and_answers_as_the_torch_reference(policy, engine, snapshot, clips, tmp_path):
    clip = clips["5s"]
    pruned = run_json(tmp_path, "engine", clip, engine, *policy)
    reference = run_json(tmp_path, "torch", clip, "--checkpoint", snapshot, "--backend", "torch", *policy)
    assert pruned["n_tokens"] == reference["n_tokens"]
    # pruning happened: the global cut and every fine cut left fewer tokens
    kept = [len(rows[0]) for _, rows in sorted(pruned["kept"].items(), key=lambda item: int(item[0]))]
    assert pruned["n_tokens"] > kept[0] and all(a > b for a, b in itertools.pairwise(kept))
    assert pruned["kept"] == reference["kept"]
    assert pruned["tokens"] == reference["tokens"] and len(pruned["tokens"][0]) == NEW_TOKENS
    assert pruned["text"] == reference["text"]
    np.testing.assert_allclose(pruned["logits"][0], reference["logits"][0], rtol=0, atol=1e-4)
