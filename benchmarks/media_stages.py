"""Per-stage seconds of the media path (a video and a question in, an answer out).

Default (CPU): two models, each run from an engine directory built here (encoder and
decoder graphs on ONNX Runtime) and by the torch reference, on one 10 s test clip:
* tiny: videollama2-tiny (8 frames of 48 px, 2 s of audio: 36 video + 24 audio rows);
* mid:  the real media shapes (16 frames at 384 px -> 1,352 video rows; 30 s of audio ->
  1,496 audio rows) with narrow encoders (SigLIP's 14 px patches, 4 layers of width 256;
  the STC connector at the decoder's width, depth 1; BEATs' 16 x 16 patches, 4 layers of
  width 256) in front of the mid-size decoder of the other CPU benchmarks (hidden 512,
  8 layers; vocabulary 256, the tiny tokenizer's).
Each stage is the median of --repeats answers after one warm-up: media_decode (PyAV +
preprocessing), vision_encoder, audio_encoder, prefill, decode (per generated token).

`--real-encoders` instead times the encoders at VideoLLaMA2.1-7B-AV's real size (random
weights: SigLIP-so400m on 16 frames, the STC connector, BEATs on 30 s, the projectors) on
--device in --dtype, e.g. `--real-encoders --device cuda --dtype bfloat16` on a GPU.

    python benchmarks/media_stages.py --json stages.json
    python benchmarks/media_stages.py --real-encoders --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from fastav_export.contract.precision import TORCH_DTYPES
from fastav_export.engine.build import MediaBuild, build_engine
from fastav_export.engine.manifest import load_engine_dir
from fastav_export.models import get_model_spec
from fastav_export.models.families.videollama2 import beats, stc_connector
from fastav_export.models.families.videollama2.encoders import EncoderShapes, random_encoders, real_shapes, tiny_shapes
from fastav_export.models.media_parts import MediaParts, tiny_tokenizer
from fastav_export.models.model_factory import random_qwen2
from fastav_export.reference.torch_reference import TorchReference
from fastav_export.runtime.answer import answer
from fastav_export.runtime.backends import open_engine_backend
from fastav_export.runtime.front_end import FrontEnd
from fastav_export.testing.media_clips import write_test_clip
from fastav_export.testing.models import MID_SIZE

QUESTION = "What is happening in this video?"
STAGES = ("media_decode", "vision_encoder", "audio_encoder", "prefill", "decode_per_token")


def mid_shapes(hidden: int) -> EncoderShapes:
    from transformers import SiglipVisionConfig

    siglip = SiglipVisionConfig(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4,
                                image_size=384, patch_size=14, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6)
    return EncoderShapes(siglip, stc_connector.STCConfig(256, hidden, depth=1),
                         beats.BEATsConfig(embed_dim=256, encoder_layers=4, encoder_embed_dim=256,
                                           encoder_ffn_embed_dim=1024, encoder_attention_heads=4), hidden)


def models():
    """name -> (spec with the media settings and layout, decoder, encoder shapes)."""
    tiny = get_model_spec("videollama2-tiny")
    real = get_model_spec("videollama2")
    mid_dims = replace(MID_SIZE, vocab_size=256)
    mid = replace(real, name="videollama2-mid", dims=mid_dims, random_init_std=0.02)
    return {"tiny": (tiny, random_qwen2(tiny.dims, std=tiny.random_init_std), tiny_shapes(tiny.dims.hidden_size)),
            "mid": (mid, random_qwen2(mid_dims), mid_shapes(mid_dims.hidden_size))}


def run_stages(front: FrontEnd, open_backend, embed, clip: Path, repeats: int) -> dict:
    rows = []
    for _ in range(repeats + 1):  # the first is a warm-up
        prompt, seconds = front.prompt(QUESTION, clip)
        with open_backend(prompt.layout) as backend:
            result = answer(backend, prompt.splice(embed(backend, prompt)), 16, front.tokenizer, front.stop_ids())
        seconds.update(result.seconds)
        seconds["decode_per_token"] = seconds.pop("decode") / max(1, len(result.token_ids) - 1)
        rows.append(seconds)
    return {stage: statistics.median(row[stage] for row in rows[1:]) for stage in STAGES}


class _Unclosing:
    """The torch reference as a `with` target (it holds nothing to release)."""

    def __init__(self, backend):
        self.backend = backend

    def __enter__(self):
        return self.backend

    def __exit__(self, *exc):
        return None


def measure(name, spec, decoder, shapes, clip: Path, work: Path, repeats: int) -> dict:
    vision, audio = random_encoders(shapes, seed=0, std=0.02)
    parts = MediaParts(vision, audio, tiny_tokenizer(spec.dims.vocab_size))
    layout = spec.default_layout()
    media = MediaBuild.from_parts(spec, parts)
    out = work / f"{name}-fp32"
    build_engine(decoder, model_name=spec.name, source={"kind": "random", "seed": 0}, dims=spec.dims,
                 precision="fp32", layout=layout, config=spec.preset.resolve(spec.dims.num_layers),
                 max_tokens=layout.n_tokens + 256, max_new_tokens=32, out=out, media=media)
    manifest = load_engine_dir(out)
    config = manifest.pruning
    with FrontEnd.from_engine(manifest) as front:
        engine = run_stages(front, lambda lay: open_engine_backend(manifest, lay, config, max_new_tokens=16),
                            lambda backend, prompt: backend.embed(prompt.text_ids()[None])[0].float(), clip, repeats)
    front = FrontEnd.from_parts(spec, parts)
    table = decoder.model.embed_tokens.weight.detach()
    reference = run_stages(front, lambda lay: _Unclosing(TorchReference(decoder, lay, config)),
                           lambda backend, prompt: table[torch.from_numpy(prompt.text_ids())], clip, repeats)
    return {"engine (ort)": engine, "torch reference": reference}


def real_encoders(device: str, dtype: str, repeats: int) -> dict:
    spec = get_model_spec("videollama2")
    vision, audio = real_shapes(spec.dims.hidden_size).build()  # random (uninitialised) weights: timing only
    torch_dtype = TORCH_DTYPES.get(dtype, getattr(torch, dtype))
    vision, audio = vision.to(device, torch_dtype), audio.to(device, torch_dtype)
    pixels = torch.randn(spec.video.num_frames, 3, spec.video.image_size, spec.video.image_size, device=device,
                         dtype=torch_dtype)
    fbank = torch.randn(1, spec.audio.fbank_frames, spec.audio.mel_bins, device=device, dtype=torch_dtype)
    times = {}
    for stage, module, sample in (("vision_encoder", vision, pixels), ("audio_encoder", audio, fbank)):
        runs = []
        with torch.no_grad():
            for _ in range(repeats + 1):
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                started = time.perf_counter()
                rows = module(sample)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                runs.append(time.perf_counter() - started)
        times[stage] = statistics.median(runs[1:])
        times[f"{stage}_rows"] = int(rows.shape[0])
    if device.startswith("cuda"):
        times["device"] = torch.cuda.get_device_name(0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--real-encoders", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.real_encoders:
        results = {"real encoders": real_encoders(args.device, args.dtype, args.repeats)}
        print(json.dumps(results, indent=2))
    else:
        results = {}
        with tempfile.TemporaryDirectory() as work:
            work = Path(work)
            clip = write_test_clip(work / "clip.mp4", seconds=10.0, fps=8, size=(320, 240))
            for name, (spec, decoder, shapes) in models().items():
                results[name] = measure(name, spec, decoder, shapes, clip, work, args.repeats)
        print(f"{'model':<6} {'runner':<16}" + "".join(f"{stage:>18}" for stage in STAGES) + "   (seconds)")
        for name, runners in results.items():
            for runner, stages in runners.items():
                print(f"{name:<6} {runner:<16}" + "".join(f"{stages[stage]:>18.4f}" for stage in STAGES))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
