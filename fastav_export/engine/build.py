"""`fastav-export build`: export the graphs, build the backend artifacts, write the manifest.

Everything is written into a hidden `.<name>.partial-<pid>` directory beside the target
and renamed into place only at the end, so an interrupted or failed build leaves no
engine directory behind (a killed one leaves only the hidden partial directory, which
the next build removes).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from ..contract.dims import DecoderDims
from ..contract import graph_io
from ..contract.graph_io import DEFAULT_FLAVOUR
from ..contract.interleave import FrameInterleave
from ..contract.layout import TokenLayout
from ..contract.pruning_config import PruningConfig
from ..contract.weights import WeightQuantization
from ..errors import FastAVError
from ..media.settings import AudioSettings, VideoSettings
from ..user_io.json_input import read_json_file
from ..user_io.output_paths import (
    check_can_create,
    partial_directory,
    replace_directory,
)
from .manifest import (
    FORMAT,
    MANIFEST,
    EngineManifest,
    GraphEntry,
    MediaSection,
    OrtSection,
    TrtSection,
    tool_versions,
    write_manifest,
)

log = logging.getLogger("fastav_export")
ONNX_DIR = "onnx"
TOKENIZER_DIR = "tokenizer"


@dataclass
class MediaBuild:
    """What `build` adds for a model with a media path: the encoders (fp32 torch modules), the
    tokenizer, and the settings a run needs to preprocess as the model does."""

    vision: object  # forward(pixel_values [F, 3, S, S]) -> [Tv, D]; .for_export()
    audio: object  # forward(fbank [1, T, M]) -> [Ta, D]
    tokenizer: object  # transformers tokenizer (save_pretrained)
    video_settings: VideoSettings
    audio_settings: AudioSettings
    placeholder_id: int
    modal_token: str
    sources: dict = field(default_factory=dict)
    interleave: FrameInterleave | None = None  # the per-frame rule of a layout that follows each clip
    options: dict = field(default_factory=dict)  # the family's settings not in the checkpoint's config
    family: str = ""  # whose media rules (models.families.get_family) export and run the encoders

    @classmethod
    def from_parts(cls, spec, parts) -> "MediaBuild":
        """`spec`'s media settings (models.registry.ModelSpec) with `parts` (models.media_parts.MediaParts)."""
        return cls(parts.vision, parts.audio, parts.tokenizer, spec.video, spec.audio, spec.placeholder_id,
                   parts.modal_token, parts.sources, parts.interleave, parts.options, spec.family)

    def rules(self, layout: TokenLayout):
        """The family's media rules for this build (models.families.media_rules.MediaRules)."""
        from ..models.families import MediaRecord, get_family

        record = MediaRecord(self.video_settings, self.audio_settings, layout, self.interleave, dict(self.options))
        return get_family(self.family).media_rules(record)


@contextmanager
def _terminate_as_interrupt():
    """SIGTERM (e.g. `kill`, a CI timeout) unwinds like Ctrl-C, so cleanup runs."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_target(out: Path) -> None:
    """Refuse, before any work, a target the build could not replace without harm.

    A build replaces `out` whole, so `out` must be absent, an empty directory, or an
    engine directory this tool wrote: its config.json is an engine manifest and every
    file in it is one the manifest lists (a Hugging Face snapshot also has a
    config.json, and a user may have added notes). It must not hold the current
    directory (renaming that fails, or strands the shell in a deleted directory), and
    its parent must take new entries (checked by creating one).
    """
    out = Path(os.path.abspath(out))
    if out.exists():
        if not out.is_dir():
            raise FastAVError(f"--out {out} exists and is not a directory: choose another --out")
        if any(out.iterdir()):
            _check_replaceable_engine(out)
    here = Path.cwd().resolve()
    if out.exists() and (out.resolve() == here or out.resolve() in here.parents):
        raise FastAVError(f"--out {out} is the current directory or holds it, which a build cannot replace: "
                          "run from another directory or choose another --out")
    check_can_create(out.parent, f"--out {out}")


def _check_replaceable_engine(out: Path) -> None:
    not_engine = f"--out {out} exists and is not an engine directory: choose another --out or remove it"
    try:
        data = read_json_file(out / MANIFEST, "engine manifest")
    except FastAVError:
        raise FastAVError(not_engine) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), dict):
        raise FastAVError(not_engine)
    listed = {*data["files"], MANIFEST}
    for path in sorted(out.rglob("*")):
        if (path.is_file() or path.is_symlink()) and path.relative_to(out).as_posix() not in listed:
            raise FastAVError(f"--out {out} holds {path.relative_to(out)}, which is not part of the engine built "
                              "there and would be deleted: choose another --out or move that file")


def build_engine(model, *, model_name: str, source: dict, dims: DecoderDims, precision: str,
                 layout: TokenLayout, config: PruningConfig, max_tokens: int, max_new_tokens: int,
                 out: Path, export_only: bool = False, backend: str = "ort", max_batch: int = 1,
                 timing_cache: Path | None = None, flavour: str | None = None, media: MediaBuild | None = None,
                 pruning_source: dict | None = None, weights: WeightQuantization | None = None,
                 progress: Callable[[str], None] = lambda message: None) -> EngineManifest:
    """Export `model` (already in the target precision) and build it into `out`.

    backend: "ort" (ONNX Runtime: the graphs are checked to load) or "trt" (TensorRT
    engines; `max_batch` rows at most, tuned with the shared `timing_cache`).
    `export_only` writes the ONNX graphs only. flavour: the graphs' attention ops
    (graph_io.FLAVOURS; default: the one `backend` runs fastest). media: also export the
    encoders and store the tokenizer (the manifest's `media` section). weights: quantize the
    decoder's linear weights (contract/weights.py; its flavour must be the graphs').
    """
    flavour = flavour or DEFAULT_FLAVOUR[backend]
    if weights is not None and weights.flavour != flavour:
        raise ValueError(f"{weights.kind} weights for {weights.flavour} graphs, but the graphs are {flavour}")
    if backend == "trt" and flavour != "onnx-standard" and not export_only:
        raise FastAVError(f"TensorRT cannot build {flavour} graphs (ONNX Runtime's contrib ops): "
                          "drop --graphs or use --graphs onnx-standard with --backend trt")
    out = Path(os.path.abspath(out))  # `.` or `..` have no name to rename
    check_target(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FastAVError(f"cannot create {out.parent} ({exc.strerror or exc}): choose another --out") from None
    partial = partial_directory(out)
    started = time.perf_counter()
    try:
        with _terminate_as_interrupt():
            manifest = _build_into(partial, model, model_name=model_name, source=source, dims=dims,
                                   precision=precision, layout=layout, config=config, max_tokens=max_tokens,
                                   max_new_tokens=max_new_tokens, export_only=export_only, backend=backend,
                                   max_batch=max_batch, timing_cache=timing_cache, flavour=flavour,
                                   media=media, pruning_source=pruning_source or {}, weights=weights,
                                   progress=progress, started=started)
            replace_directory(out, partial)
    except OSError as exc:  # the disk filled up, a directory turned read-only, ...: the build is undone
        shutil.rmtree(partial, ignore_errors=True)
        raise FastAVError(f"writing {out} failed ({exc.strerror or exc}{_filename(exc)}): nothing was written; "
                          "free space or fix permissions and build again") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    manifest.path = out
    return manifest


def _filename(exc: OSError) -> str:
    return f": {exc.filename}" if exc.filename else ""


def _build_into(directory: Path, model, *, model_name, source, dims, precision, layout, config, max_tokens,
                max_new_tokens, export_only, backend, max_batch, timing_cache, flavour, media, pruning_source,
                weights, progress, started) -> EngineManifest:
    from ..export.onnx_graphs import export_graphs

    def step(name: str) -> None:
        progress(f"[{time.perf_counter() - started:6.1f} s] {name}")

    rollout = config.global_policy == "rollout"
    onnx_dir = directory / ONNX_DIR
    exported = export_graphs(model, onnx_dir, config.global_layer, rollout, flavour,
                             progress=lambda name: step(f"export {name}.onnx ({flavour})"))
    if weights is not None:
        from ..export.weight_quantization import quantize_graph

        for g in exported:
            if g.name != graph_io.EMBED:  # the embedding table stays (contract/weights.py)
                step(f"quantize {g.name}.onnx's weights to {weights.kind} ({weights.op})")
                quantize_graph(g.path, weights)
    graphs = {g.name: GraphEntry(f"{ONNX_DIR}/{g.path.name}", g.inputs, g.outputs) for g in exported}
    backends = {}
    if not export_only and backend == "trt":
        from ..contract.schedule import make_schedule
        from .trt.engine_build import build_trt_engines
        from .trt.profiles import Limits

        schedule = make_schedule(layout, config.resolve(dims.num_layers), dims.num_layers)
        built = build_trt_engines(directory, {g.name: g.path for g in exported}, dims, schedule,
                                  Limits(max_batch, max_tokens, max_new_tokens), rollout, timing_cache, progress=step)
        backends["trt"] = TrtSection.from_json(built)
    elif not export_only:
        from .ort_sessions import SESSION_SETTINGS, check_graph_loads

        for g in exported:
            step(f"check that ONNX Runtime loads {g.name}.onnx")
            check_graph_loads(g.path, precision)
        backends["ort"] = OrtSection(session=SESSION_SETTINGS)
    media_section = None
    if media is not None:
        rules = media.rules(layout)
        media_section = _export_media(media, rules, directory, check_ort=backend == "ort" and not export_only,
                                      step=step)
        # Static encoder graphs only: encoders that take any frame and chunk count would need TensorRT
        # profiles; those run on ONNX Runtime beside a TensorRT decoder.
        if backend == "trt" and not export_only and rules.static_encoders:
            from .trt.engine_build import build_static_engines

            paths = {name: directory / entry.onnx for name, entry in media_section.encoders.items()}
            media_section = replace(media_section,
                                    engines=build_static_engines(directory, paths, timing_cache, progress=step))
    manifest = EngineManifest(
        model=model_name, source=source, dims=dims, precision=precision, flavour=flavour, layout=layout,
        pruning=config,
        rollout=rollout, max_tokens=max_tokens, max_new_tokens=max_new_tokens, graphs=graphs,
        backends=backends, versions=tool_versions(), media=media_section, pruning_source=pruning_source,
        weights=weights,
    )
    step("hash files and write config.json")
    write_manifest(directory, manifest)
    return manifest


def _export_media(media: MediaBuild, rules, directory: Path, check_ort: bool, step) -> MediaSection:
    """Export the encoder graphs (fp32, traced on the family's sample inputs: `rules.encoder_samples`)
    and save the tokenizer."""
    from ..export.encoder_graphs import export_encoder

    encoders = {}
    for name, sample in rules.encoder_samples(media.vision, media.audio).items():  # manifest.VISION, AUDIO_ENCODER
        step(f"export {name}.onnx (encoder, fp32)")
        graph = export_encoder(sample.module, tuple(sample.inputs), name,
                               (list(sample.input_names), list(sample.output_names)), directory / ONNX_DIR,
                               dynamic_first_axis=sample.dynamic_first_axis, dynamic_axes=sample.dynamic_axes)
        if check_ort:
            from .ort_sessions import check_graph_loads

            check_graph_loads(graph.path, "fp32")
        encoders[name] = GraphEntry(f"{ONNX_DIR}/{graph.path.name}", graph.inputs, graph.outputs)
    step("save the tokenizer")
    media.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
    return MediaSection(media.video_settings, media.audio_settings, encoders, TOKENIZER_DIR, media.placeholder_id,
                        media.modal_token, dict(media.sources), interleave=media.interleave,
                        options=dict(media.options), family=media.family)


def default_engine_dir(model_name: str, precision: str, weights: str | None = None) -> Path:
    """engines/<model>-<precision>, or engines/<model>-<precision>-<weights> with quantized weights."""
    return Path("engines") / f"{model_name}-{precision}{f'-{weights}' if weights else ''}"

