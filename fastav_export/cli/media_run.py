"""`fastav-export run ... --video FILE --question TEXT`: a video and a question in, an answer out.

With ENGINE_DIR everything runs from the engine directory (encoder graphs and the decoder
on ONNX Runtime or TensorRT, the tokenizer stored beside them); without it the PyTorch
reference runs the model's own modules (--model, or --checkpoint with its encoders).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ..errors import FastAVError
from ..user_io.output_paths import write_text_atomic
from .arg_types import utf8_text

log = logging.getLogger("fastav_export")
STAGES = ("media_decode", "vision_encoder", "audio_encoder", "prefill", "decode")
# Flags of the embeddings path that a media request replaces.
NOT_WITH_MEDIA = {"embeds": "--embeds", "layout": "--layout"}


def add_media_arguments(parser) -> None:
    group = parser.add_argument_group("media (answer a question about a video)")
    group.add_argument("--video", metavar="FILE", type=Path,
                       help="video file (any format FFmpeg reads); its audio track is the audio unless --audio")
    group.add_argument("--question", metavar="TEXT", type=utf8_text,
                       help="the question about the video (with --video)")
    group.add_argument("--audio", metavar="FILE", type=Path, help="audio file that replaces the video's own track")
    group.add_argument("--silent-audio", action="store_true",
                       help="a video without an audio track gets silence instead of an error")
    group.add_argument("--vision-tower", metavar="DIR", type=Path,
                       help="--checkpoint: a local SigLIP snapshot, when the checkpoint does not hold the vision "
                            "tower's weights (its config names it by hub id)")


def check_media_arguments(args) -> bool:
    """True when the run answers a question about a video; one-line errors for flags that do not combine."""
    media = args.video is not None
    if not media:
        given = [flag for flag, value in (("--question", args.question), ("--audio", args.audio),
                                          ("--silent-audio", args.silent_audio)) if value]
        if given:
            raise FastAVError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --video FILE")
        return False
    if args.question is None:
        raise FastAVError("--video needs --question TEXT: what to ask about the video")
    conflicting = [flag for name, flag in NOT_WITH_MEDIA.items() if getattr(args, name) is not None]
    if args.batch != 1:
        conflicting.append("--batch")
    if conflicting:
        raise FastAVError(f"{', '.join(conflicting)} do not apply to --video: a media request has one row and its "
                          "layout comes from the prompt")
    from ..text.prompt import check_question

    check_question(args.question)
    for flag, path in (("--video", args.video), ("--audio", args.audio)):
        if path is not None and not path.is_file():
            raise FastAVError(f"{flag} {path} is not a file")
    if args.audio is not None and args.silent_audio:
        raise FastAVError("--audio and --silent-audio contradict each other: drop one")
    return True


def run_engine(args) -> int:
    from ..api.engine import Engine
    from ..api.runners import EngineDirRunner
    from ..engine.manifest import load_engine_dir
    from ..engine.requests import check_request
    from .options import engine_preset_target, pruning_config_from_args

    manifest = load_engine_dir(args.engine)
    config = pruning_config_from_args(args, None, manifest.dims.num_layers, base=manifest.pruning,
                                      target=engine_preset_target(manifest))
    check_request(manifest, manifest.layout, config, args.max_new_tokens)  # before anything is opened or decoded
    with Engine(EngineDirRunner(manifest, args.backend, args.threads)) as engine:
        return _answer_and_report(args, engine, config)


def run_torch(args, spec, dims, config, dtype, device) -> int:
    from ..api.engine import Engine
    from ..api.runners import ReferenceRunner
    from ..models import all_specs
    from .options import family_options

    if spec is None or not spec.has_media:
        raise FastAVError(f"{getattr(spec, 'name', 'a plain Qwen2 checkpoint')} has no media path (encoders, "
                          f"tokenizer): use one of {', '.join(s.name for s in all_specs() if s.has_media)}, or pass --embeds")
    started = time.perf_counter()
    name = str(args.checkpoint or spec.name)
    runner = ReferenceRunner.load(spec, dims, name, args.checkpoint, args.vision_tower, seed=args.seed,
                                  options=family_options(args, spec), device=str(device), dtype=args.dtype,
                                  attn_implementation=args.attn_implementation, rollout_impl=args.rollout_impl)
    log.debug(f"loaded the model in {time.perf_counter() - started:.1f} s")
    with Engine(runner) as engine:
        return _answer_and_report(args, engine, config)


def _answer(engine, args, config):
    """`engine.answer` for the run's flags; a clip without sound gets the flags that fix it."""
    from ..media.decode import NoAudioTrack

    try:
        return engine.answer(args.video, args.question, audio=args.audio, silent_audio=args.silent_audio,
                             pruning=config, max_new_tokens=args.max_new_tokens)
    except NoAudioTrack as exc:
        advice = ("pass an audio file (or a video with sound) with --audio" if args.audio is not None
                  else "pass the audio with --audio FILE, or --silent-audio to answer with silence")
        raise FastAVError(f"{exc}: {advice}") from None


def _answer_and_report(args, engine, config) -> int:
    record = _answer(engine, args, config)
    print(f"model: {engine.description}")
    if engine.sources:
        print("loaded:")
        print("\n".join(f"  {part}: {where}" for part, where in engine.sources.items()))
    print(f"layout: {record.layout.describe()}")
    print(f"pruning: {record.pruning.describe()}")
    print(f"question: {args.question}")
    print(f"answer: {record.text}")
    print(f"tokens: {' '.join(map(str, record.token_ids))}")
    print(f"FLOPs ratio (pruned / dense): {record.describe_flops()}")
    print("seconds: " + ", ".join(f"{stage.replace('_', ' ')} {record.seconds.get(stage, 0.0):.3f}"
                                  for stage in STAGES))
    if args.json:
        write_text_atomic(args.json, json.dumps(record.to_json()) + "\n")
        log.info(f"wrote {args.json}")
    return 0
