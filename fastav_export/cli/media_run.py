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
    from ..engine.manifest import load_engine_dir
    from ..engine.requests import check_request
    from ..runtime.backends import default_backend, open_engine_backend
    from ..runtime.front_end import FrontEnd
    from .options import engine_preset_target, pruning_config_from_args

    manifest = load_engine_dir(args.engine)
    backend_name = args.backend or default_backend(manifest)
    config = pruning_config_from_args(args, None, manifest.dims.num_layers, base=manifest.pruning,
                                      target=engine_preset_target(manifest))
    check_request(manifest, manifest.layout, config, args.max_new_tokens)  # before any media is decoded
    with FrontEnd.from_engine(manifest, args.threads, backend_name) as front:
        prompt, seconds = _prompt(front, args)
        backend = open_engine_backend(manifest, prompt.layout, config, backend_name, threads=args.threads,
                                      max_new_tokens=args.max_new_tokens)
        with backend:
            text_embeds = backend.embed(prompt.text_ids()[None])[0].float().cpu()
            encoders = "TensorRT" if front.encoders.name == "trt" else "ONNX Runtime"
            title = (f"{manifest.model} engine {args.engine}, {backend_name} backend on {backend.device} "
                     f"({manifest.numerics}); encoders on {encoders}")
            return _answer_and_report(args, backend, front, prompt, text_embeds, seconds, manifest.dims, config,
                                      title, _sources(manifest.media.sources))


def run_torch(args, spec, dims, config, dtype, device) -> int:
    import torch

    from ..models import all_specs
    from ..models.families import load_media_parts
    from ..reference.torch_reference import TorchReference
    from ..runtime.front_end import FrontEnd
    from ..runtime.token_limit import TokenLimit
    from .options import check_layout_positions, check_run_memory, family_options, load_decoder

    if spec is None or not spec.has_media:
        raise FastAVError(f"{getattr(spec, 'name', 'a plain Qwen2 checkpoint')} has no media path (encoders, "
                          f"tokenizer): use one of {', '.join(s.name for s in all_specs() if s.has_media)}, or pass --embeds")
    started = time.perf_counter()
    parts = load_media_parts(spec, dims, args.checkpoint, args.vision_tower, seed=args.seed,
                             options=family_options(args, spec))
    model = load_decoder(args, spec, dtype, device, args.attn_implementation)
    log.debug(f"loaded the model in {time.perf_counter() - started:.1f} s")
    # what the reference can run, so a clip whose layout follows its length is refused before decoding
    front = FrontEnd.from_parts(spec, parts, token_limit=TokenLimit.of_model(dims.max_position_embeddings,
                                                                             args.max_new_tokens))
    prompt, seconds = _prompt(front, args)
    check_layout_positions(prompt.layout, dims, args.max_new_tokens)
    check_run_memory(prompt.layout, config, dims, 1, args.max_new_tokens, dtype.itemsize, synthetic=False)
    backend = TorchReference(model, prompt.layout, config, rollout_impl=args.rollout_impl)
    with torch.no_grad():
        ids = torch.from_numpy(prompt.text_ids()).to(backend.device)
        text_embeds = model.model.embed_tokens(ids).float().cpu()
    title = f"{args.checkpoint or spec.name}, torch backend on {device} ({args.dtype})"
    return _answer_and_report(args, backend, front, prompt, text_embeds, seconds, dims, config, title,
                              _sources(parts.sources))


def _prompt(front, args):
    """`front.prompt` for the run's media flags; a clip without sound gets the flags that fix it."""
    from ..media.decode import NoAudioTrack

    try:
        return front.prompt(args.question, args.video, args.audio, args.silent_audio)
    except NoAudioTrack as exc:
        advice = ("pass an audio file (or a video with sound) with --audio" if args.audio is not None
                  else "pass the audio with --audio FILE, or --silent-audio to answer with silence")
        raise FastAVError(f"{exc}: {advice}") from None


def _sources(sources: dict) -> list[str]:
    return [f"  {part}: {where}" for part, where in sources.items()]


def _answer_and_report(args, backend, front, prompt, text_embeds, seconds, dims, config, title, sources) -> int:
    from ..contract.flops import flops_report
    from ..runtime.answer import answer

    embeds = prompt.splice(text_embeds)
    result = answer(backend, embeds, args.max_new_tokens, front.tokenizer, front.stop_ids(), prompt.positions)
    result.seconds = {**seconds, **result.seconds}
    report = flops_report(dims, backend.schedule)
    print(f"model: {title}")
    if sources:
        print("loaded:")
        print("\n".join(sources))
    print(f"layout: {prompt.layout.describe()}")
    print(f"pruning: {config.describe()}")
    print(f"question: {args.question}")
    print(f"answer: {result.text}")
    print(f"tokens: {' '.join(map(str, result.token_ids))}")
    print(f"FLOPs ratio (pruned / dense): {report.describe()}")
    print("seconds: " + ", ".join(f"{stage.replace('_', ' ')} {result.seconds.get(stage, 0.0):.3f}"
                                  for stage in STAGES))
    if args.json:
        data = {**result.to_json(), "question": args.question, "layout": prompt.layout.to_json(),
                "flops_ratio": report.to_json()}
        write_text_atomic(args.json, json.dumps(data) + "\n")
        log.info(f"wrote {args.json}")
    return 0
