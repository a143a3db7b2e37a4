"""The engine directory: the handoff between build, run, compare and serve.

    <engine>/config.json      this manifest
    <engine>/onnx/*.onnx      the graphs, weights in <graph>.onnx.data (what every backend runs or builds from)
    <engine>/onnx/*.engine    TensorRT engines, when built with --backend trt

`config.json` records what was built (model, dimensions, precision, the graph flavour,
the layout it was built for and its limits, the pruning defaults, each graph's I/O
names, each backend's settings), the tool versions, the sha256 of every file, and the
sha256 of its own content (`manifest_sha256`), so an edit of the manifest itself is
reported as such. `load_engine_dir` refuses a directory that is incomplete, modified,
inconsistent, or written by another format version, with one line that says what to
do: nothing read from an engine directory reaches a runtime unchecked.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from .. import __version__
from ..contract import graph_io
from ..contract.dims import DecoderDims
from ..contract.graph_io import FLAVOURS
from ..contract.interleave import FrameInterleave
from ..contract.layout import TokenLayout
from ..contract.precision import ONNX_TYPES, PRECISIONS
from ..contract.pruning_config import PruningConfig
from ..contract.weights import ACCURACY_LEVELS, BLOCK_SIZES, QUANTIZED_OP, WEIGHT_KINDS, WeightQuantization
from ..errors import FastAVError
from ..media.settings import AudioSettings, VideoSettings
from ..user_io.file_digest import sha256_file
from ..user_io.json_input import read_json_file

FORMAT = "fastav-engine"
FORMAT_VERSION = 3  # 2: fused-attention graphs with the cuts inside, a graph flavour, no ort/ copies,
#    and the manifest carries the sha256 of its own content; 3: past_length [B], one per row (ragged batches)
MANIFEST = "config.json"
INTEGRITY = "manifest_sha256"
REBUILD = "rebuild it with `fastav-export build`"


@dataclass(frozen=True)
class GraphEntry:
    onnx: str  # path relative to the engine directory
    inputs: list[str]
    outputs: list[str]


@dataclass(frozen=True)
class OrtSection:
    """`backends.ort`: the engine was checked to load in ONNX Runtime, with these session settings."""

    session: dict = field(default_factory=dict)  # engine/ort_sessions.py SESSION_SETTINGS

    def to_json(self) -> dict:
        return {"session": self.session}

    @classmethod
    def from_json(cls, data: dict) -> "OrtSection":
        return cls(session=data.get("session", {}))


@dataclass(frozen=True)
class TrtSection:
    """`backends.trt`: TensorRT engines, valid only for the TensorRT version and GPU that built them."""

    engines: dict[str, str]  # graph -> engine file (relative), beside the graph's ONNX file
    tensorrt: str  # TensorRT version
    gpu: str = ""
    compute_capability: str = ""  # "9.0"
    limits: dict = field(default_factory=dict)  # max_batch, max_tokens, max_new_tokens of the profiles
    profiles: dict = field(default_factory=dict)  # trt/profiles.py profiles_to_json

    @property
    def max_batch(self) -> int:
        return self.limits.get("max_batch", 1)

    def to_json(self) -> dict:
        return {"engines": self.engines, "profiles": self.profiles, "limits": self.limits,
                "tensorrt": self.tensorrt, "gpu": self.gpu, "compute_capability": self.compute_capability}

    @classmethod
    def from_json(cls, data: dict) -> "TrtSection":
        return cls(engines=data["engines"], tensorrt=data["tensorrt"], gpu=data.get("gpu", ""),
                   compute_capability=data.get("compute_capability", ""), limits=data.get("limits", {}),
                   profiles=data.get("profiles", {}))


BACKEND_SECTIONS = {"ort": OrtSection, "trt": TrtSection}
VISION, AUDIO_ENCODER = "vision", "audio"  # the encoder graphs of `media.encoders`


@dataclass(frozen=True)
class MediaSection:
    """`media`: what turns a video and a question into the decoder's input, so that
    `run ENGINE_DIR --video F --question Q` and Triton need only the engine directory.

    encoders:  "vision" (pixel_values [F, 3, S, S] -> video_embeds [Tv, D]) and "audio"
               (fbank [1, T, M] -> audio_embeds [Ta, D]) graphs, fp32 (ONNX Runtime on the CPU).
    tokenizer: the directory (relative) with the snapshot's tokenizer files and chat template.
    placeholder_id, modal_token: how the prompt marks the media rows (`<video>` -> -201).
    interleave: video-SALMONN 2's per-frame layout rule (the media rows' counts follow each clip's
               duration); None: every clip fills the built layout's media rows.
    options:   the model's settings that are not in its checkpoint's config (window, pooling, ...),
               as the build used them.
    family:    the model family whose media rules (models.families.get_family) preprocess clips and
               arrange the encoders' rows; manifests written before it was recorded get the family
               their other fields match.
    """

    video: VideoSettings
    audio: AudioSettings
    encoders: dict[str, GraphEntry]
    tokenizer: str
    placeholder_id: int
    modal_token: str
    sources: dict = field(default_factory=dict)  # part -> where its weights came from (the loading report)
    engines: dict[str, str] = field(default_factory=dict)  # encoder -> TensorRT engine file (--backend trt)
    interleave: FrameInterleave | None = None
    options: dict = field(default_factory=dict)
    family: str = ""

    def to_json(self) -> dict:
        data = {"family": self.family, "video": self.video.to_json(), "audio": self.audio.to_json(),
                "encoders": {name: asdict(entry) for name, entry in self.encoders.items()},
                "tokenizer": self.tokenizer, "placeholder_id": self.placeholder_id,
                "modal_token": self.modal_token, "sources": self.sources, "engines": self.engines}
        if self.interleave is not None:
            data["interleave"] = self.interleave.to_json()
        if self.options:
            data["options"] = self.options
        return data

    @classmethod
    def from_json(cls, data: dict) -> "MediaSection":
        from ..models.families import family_of_media_section

        return cls(VideoSettings.from_json(data["video"]), AudioSettings.from_json(data["audio"]),
                   {name: GraphEntry(entry["onnx"], entry["inputs"], entry["outputs"])
                    for name, entry in data["encoders"].items()},
                   data["tokenizer"], data["placeholder_id"], data["modal_token"], data.get("sources", {}),
                   data.get("engines", {}),
                   FrameInterleave.from_json(data["interleave"]) if data.get("interleave") else None,
                   data.get("options", {}), family_of_media_section(data))

    def rules(self, layout: TokenLayout):
        """The family's media rules for clips of this engine (models.families.media_rules.MediaRules)."""
        from ..models.families import MediaRecord, get_family

        return get_family(self.family).media_rules(
            MediaRecord(self.video, self.audio, layout, self.interleave, dict(self.options)))


@dataclass
class EngineManifest:
    model: str  # registered name, or the checkpoint directory's name
    source: dict  # {"kind": "random", "seed": 0} or {"kind": "checkpoint", "path": ...}
    dims: DecoderDims
    precision: str
    flavour: str  # the graphs' attention ops: "ort-contrib" or "onnx-standard" (export/custom_ops.py)
    layout: TokenLayout  # the layout the engine was built for (the default of `run`)
    pruning: PruningConfig  # resolved defaults; global_layer is fixed by the graphs
    rollout: bool  # the pre graph returns the rollout importance
    max_tokens: int
    max_new_tokens: int
    graphs: dict[str, GraphEntry]
    backends: dict[str, OrtSection | TrtSection] = field(default_factory=dict)  # what each backend loads
    versions: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # relative path -> sha256
    media: MediaSection | None = None  # encoders and tokenizer (models with a media path)
    pruning_source: dict = field(default_factory=dict)  # where `pruning` came from: a preset file, the model's preset
    weights: WeightQuantization | None = None  # quantized linear weights (`build --weights`); None: the precision's
    path: Path | None = None  # where it was loaded from (not stored)

    @property
    def global_layer(self) -> int:
        return self.pruning.global_layer

    @property
    def numerics(self) -> str:
        """The precision, with the weights' kind when quantized: "fp32" or "fp32, int4 weights"."""
        return self.precision if self.weights is None else f"{self.precision}, {self.weights.kind} weights"

    def file(self, relative: str) -> Path:
        return self.path / relative

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "source": self.source,
            "dims": self.dims.to_json(),
            "precision": self.precision,
            "flavour": self.flavour,
            "layout": self.layout.to_json(),
            "pruning": self.pruning.to_dict(),
            "rollout": self.rollout,
            "limits": {"max_tokens": self.max_tokens, "max_new_tokens": self.max_new_tokens},
            "graphs": {name: asdict(entry) for name, entry in self.graphs.items()},
            "backends": {name: section.to_json() for name, section in self.backends.items()},
            "versions": self.versions,
            "files": self.files,
            **({"media": self.media.to_json()} if self.media is not None else {}),
            **({"pruning_source": self.pruning_source} if self.pruning_source else {}),
            **({"weights": self.weights.to_json()} if self.weights is not None else {}),
        }

    @classmethod
    def from_json(cls, data: dict, path: Path) -> "EngineManifest":
        return cls(
            model=data["model"],
            source=data["source"],
            dims=DecoderDims(**data["dims"]),
            precision=data["precision"],
            flavour=data["flavour"],
            layout=TokenLayout.from_json(data["layout"]),
            pruning=PruningConfig.from_dict(data["pruning"]),
            rollout=data["rollout"],
            max_tokens=data["limits"]["max_tokens"],
            max_new_tokens=data["limits"]["max_new_tokens"],
            graphs={name: GraphEntry(entry["onnx"], entry["inputs"], entry["outputs"])
                    for name, entry in data["graphs"].items()},
            backends={name: BACKEND_SECTIONS[name].from_json(section)
                      for name, section in data.get("backends", {}).items()},
            versions=data.get("versions", {}),
            files=data["files"],
            media=MediaSection.from_json(data["media"]) if "media" in data else None,
            pruning_source=data.get("pruning_source", {}),
            weights=WeightQuantization.from_json(data["weights"], data["flavour"]) if "weights" in data else None,
            path=path,
        )


def tool_versions() -> dict:
    """Versions of everything that shaped the graphs and artifacts."""
    from importlib import metadata

    versions = {"fastav-export": __version__, "python": platform.python_version()}
    for package in ("torch", "transformers", "onnx", "onnxscript", "onnxruntime"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def manifest_digest(data: dict) -> str:
    """sha256 of the manifest's canonical JSON, without its own `manifest_sha256` entry."""
    content = {key: value for key, value in data.items() if key != INTEGRITY}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def write_manifest_data(directory: Path, data: dict) -> None:
    """Write `data` as `directory`/config.json, sealed with its `manifest_sha256`."""
    sealed = {**data, INTEGRITY: manifest_digest(data)}
    (Path(directory) / MANIFEST).write_text(json.dumps(sealed, indent=2) + "\n")


def write_manifest(directory: Path, manifest: EngineManifest) -> None:
    """Hash every file under `directory` and write config.json there."""
    manifest.files = {
        p.relative_to(directory).as_posix(): sha256_file(p)
        for p in sorted(directory.rglob("*")) if p.is_file() and p.name != MANIFEST
    }
    write_manifest_data(directory, manifest.to_json())


# ---- the manifest's schema ---------------------------------------------------------------
# A check takes (value, where) and raises a one-line FastAVError naming `where` (the
# entry's dotted path) when the value is wrong. A dict is a sub-schema: its keys must be
# present unless wrapped in `optional`; keys it does not list are carried unchecked, so
# a field added to the manifest needs one line here to be checked, and none to load.
Check = Callable[[object, str], None]


def _fail(where: str, problem: str):
    raise FastAVError(f"{MANIFEST}: {where or 'the manifest'} {problem}: {REBUILD}")


def _show(value) -> str:
    """A value in an error line, cut short: it may be a whole edited section."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _few(names: list[str]) -> str:
    if not names:
        return "none"
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _at(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)


def _type_name(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _expect(kind: type, noun: str) -> Check:
    def check(value, where):
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            _fail(where, f"is {_type_name(value)}, expected {noun}")
    return check


_string, _object, _list, _boolean = (_expect(str, "a string"), _expect(dict, "an object"),
                                     _expect(list, "a list"), _expect(bool, "a boolean"))


def _count(value, where):
    _expect(int, "an integer")(value, where)
    if not 1 <= value <= 2**31 - 1:
        _fail(where, f"is {value}, expected an integer in 1..{2**31 - 1}")


def _equals(expected) -> Check:
    def check(value, where):
        if value != expected:
            _fail(where, f"is {_show(value)}, expected {expected!r}")
    return check


def _one_of(choices) -> Check:
    def check(value, where):
        if not isinstance(value, str) or value not in choices:
            _fail(where, f"is {_show(value)}, expected one of {', '.join(choices)}")
    return check


def _one_of_numbers(choices) -> Check:
    def check(value, where):
        if isinstance(value, bool) or not isinstance(value, int) or value not in choices:
            _fail(where, f"is {_show(value)}, expected one of {', '.join(map(str, choices))}")
    return check


def _audio_features(value, where):
    """One of the audio features the families register (`models.families.media_rules`)."""
    from ..models.families.media_rules import audio_feature_names

    _one_of(audio_feature_names())(value, where)


def _relative_path(value, where):
    """A file inside the engine directory: relative, no `..`, POSIX separators."""
    _string(value, where)
    parts = PurePosixPath(value).parts
    if not parts or PurePosixPath(value).is_absolute() or ".." in parts or "\\" in value:
        _fail(where, f"is {_show(value)}, expected a path inside the engine directory")


def _sha256_hex(value, where):
    _string(value, where)
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        _fail(where, f"is {_show(value)}, expected a sha256 hex digest")


def _list_of(item: Check) -> Check:
    def check(value, where):
        _list(value, where)
        for index, element in enumerate(value):
            item(element, f"{where}[{index}]")
    return check


def _mapping_of(item, key: Check = _string) -> Check:
    def check(value, where):
        _object(value, where)
        for name, element in value.items():
            key(name, f"{where} key")
            _check(element, item, _at(where, name))
    return check


@dataclass(frozen=True)
class optional:  # noqa: N801  (reads as a schema keyword)
    schema: object


def _check(value, schema, where: str) -> None:
    if not isinstance(schema, dict):
        schema(value, where)
        return
    _object(value, where)
    for key, sub in schema.items():
        if key not in value:
            if isinstance(sub, optional):
                continue
            _fail(where, f"lacks the entry {key!r}")
        _check(value[key], sub.schema if isinstance(sub, optional) else sub, _at(where, key))


GRAPH_SCHEMA = {"onnx": _relative_path, "inputs": _list_of(_string), "outputs": _list_of(_string)}
BACKEND_SCHEMAS = {
    "ort": {"session": optional(_object)},
    "trt": {"engines": _mapping_of(_relative_path), "tensorrt": _string, "gpu": optional(_string),
            "compute_capability": optional(_string),
            "limits": optional({"max_batch": _count, "max_tokens": _count, "max_new_tokens": _count}),
            "profiles": optional(_object)},
}
def _integer(value, where):
    _expect(int, "an integer")(value, where)


def _number(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
        _fail(where, f"is {_show(value)}, expected a positive number")


def _real(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(where, f"is {_show(value)}, expected a number")


MEDIA_SCHEMA = {
    "family": optional(_string),
    "video": {"num_frames": _count, "image_size": _count, "image_mean": _list_of(_real),
              "image_std": _list_of(_real), "fps": optional(_number)},
    "audio": {"sample_rate": _count, "seconds": _number, "mel_bins": _count,
              "features": optional(_audio_features)},
    "encoders": {VISION: GRAPH_SCHEMA, AUDIO_ENCODER: GRAPH_SCHEMA},
    "tokenizer": _relative_path,
    "placeholder_id": _integer,
    "modal_token": _string,
    "sources": optional(_object),
    "engines": optional(_mapping_of(_relative_path)),
    "interleave": optional({"video_per_frame": _count, "window_seconds": _number, "fps": _number,
                            "max_frames": _count, "chunk_seconds": _number, "encoder_frames": _count}),
    "options": optional(_object),
}
MANIFEST_SCHEMA = {
    "format": _equals(FORMAT),
    "format_version": _equals(FORMAT_VERSION),
    "model": _string,
    "source": _object,
    "dims": _object,  # DecoderDims.check: types, ranges, head counts
    "precision": _one_of(PRECISIONS),
    "flavour": _one_of(FLAVOURS),  # graph_io.FLAVOURS
    "layout": _list,  # TokenLayout.from_json
    "pruning": _object,  # PruningConfig.from_dict + validate
    "rollout": _boolean,
    "limits": {"max_tokens": _count, "max_new_tokens": _count},
    "graphs": _mapping_of(GRAPH_SCHEMA),
    "backends": {name: optional(schema) for name, schema in BACKEND_SCHEMAS.items()},
    "versions": _mapping_of(_string),
    "files": _mapping_of(_sha256_hex, key=_relative_path),
    INTEGRITY: _sha256_hex,
    "media": optional(MEDIA_SCHEMA),
    "pruning_source": optional(_object),
    "weights": optional({"kind": _one_of(WEIGHT_KINDS), "op": _one_of(tuple(QUANTIZED_OP.values())),
                         "block_size": _one_of_numbers(BLOCK_SIZES), "accuracy_level": _one_of_numbers(ACCURACY_LEVELS),
                         "lm_head": _boolean}),
}


def _validate_manifest(data) -> None:
    """Types and ranges of every field (MANIFEST_SCHEMA), then what the fields imply together:
    the dimensions, layout and pruning config are valid, the layout fits the limits and the
    limits the model's positions, the graphs are the ones the split at K over L layers
    produces, and every file a graph or backend names is hashed in `files`."""
    _check(data, MANIFEST_SCHEMA, "")
    unknown = sorted(set(data.get("backends", {})) - set(BACKEND_SCHEMAS))
    if unknown:
        _fail("backends", f"name {', '.join(map(repr, unknown))}, which is not an engine backend "
                          f"({', '.join(BACKEND_SCHEMAS)})")
    dims = _dims(data["dims"])
    try:
        layout = TokenLayout.from_json(data["layout"])
    except FastAVError as exc:
        _fail("layout", f"is invalid ({exc})")
    try:
        pruning = PruningConfig.from_dict(data["pruning"]).validate(dims.num_layers, name=lambda key: key)
    except (FastAVError, TypeError) as exc:
        _fail("pruning", f"is invalid ({exc})")
    limits = data["limits"]
    if layout.n_tokens > limits["max_tokens"]:
        _fail("limits.max_tokens", f"is {limits['max_tokens']}, below the built layout's {layout.n_tokens} tokens")
    if limits["max_tokens"] + limits["max_new_tokens"] > dims.max_position_embeddings:
        _fail("limits", f"exceed the model's {dims.max_position_embeddings} positions")
    K = pruning.global_layer
    if K is None:
        _fail("pruning.global_layer", "is null, expected the layer the graphs split the decoder at")
    if pruning.global_policy == "rollout" and not data["rollout"]:
        _fail("rollout", "is false but the pruning policy is rollout")
    graphs = data["graphs"]
    posts = {graph_io.post(layer) for layer in range(K, dims.num_layers)}
    required = {graph_io.EMBED, graph_io.PRE, *posts}
    stray = {name for name in graphs if name.startswith("post_") and name not in posts}
    missing = sorted(required - graphs.keys(), key=lambda name: (len(name), name))
    if missing or stray:
        _fail("graphs", f"do not match a decoder of {dims.num_layers} layers split at layer {K} "
                        f"(missing {_few(missing)}; unexpected {_few(sorted(stray))})")
    files = data["files"]
    for name, entry in graphs.items():
        if entry["onnx"] not in files:
            _fail(f"graphs.{name}.onnx", f"({entry['onnx']}) is not listed in files")
    weights = data.get("weights")
    if weights is not None:
        try:
            quantization = WeightQuantization.from_json(weights, data["flavour"])
        except FastAVError as exc:
            _fail("weights", f"are invalid ({exc})")
        if quantization.op != weights["op"]:
            _fail("weights.op", f"is {weights['op']!r} but {data['flavour']} graphs hold {quantization.op}")
    media = data.get("media")
    if media is not None:
        for name, entry in media["encoders"].items():
            if entry["onnx"] not in files:
                _fail(f"media.encoders.{name}.onnx", f"({entry['onnx']}) is not listed in files")
        for name, relative in media.get("engines", {}).items():
            if name not in media["encoders"] or relative not in files:
                _fail(f"media.engines.{name}", f"({relative}) names no encoder or no listed file")
        if not any(path.startswith(media["tokenizer"].rstrip("/") + "/") for path in files):
            _fail("media.tokenizer", f"({media['tokenizer']}) holds no listed file")
    for graph, relative in data["backends"].get("trt", {}).get("engines", {}).items():
        if graph not in graphs or relative not in files:
            _fail(f"backends.trt.engines.{graph}", f"({relative}) names no graph or no listed file")


def _dims(data: dict) -> DecoderDims:
    try:
        return DecoderDims(**data).check("dims")
    except (TypeError, FastAVError) as exc:  # TypeError: unknown or missing fields
        _fail("dims", f"are invalid ({exc})")


def parse_manifest(data, path: Path) -> EngineManifest:
    """The manifest of the engine directory `path` from config.json's parsed JSON: sealed
    (its `manifest_sha256` matches its content), schema-valid and consistent, or one FastAVError line."""
    config = path / MANIFEST
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FastAVError(f"{config} is not a fastav-export engine manifest: {REBUILD}")
    if data.get("format_version") != FORMAT_VERSION:
        raise FastAVError(f"{path} has engine format {data.get('format_version')!r} but fastav-export "
                          f"{__version__} reads format {FORMAT_VERSION}: {REBUILD}")
    try:
        sealed = data.get(INTEGRITY) == manifest_digest(data)
    except (TypeError, ValueError):  # NaN or non-string keys cannot have been written by build
        sealed = False
    if not sealed:
        raise FastAVError(f"{config} was edited after the build (its content does not match its {INTEGRITY}): "
                          f"{REBUILD}")
    _validate_manifest(data)
    return EngineManifest.from_json(data, path)


def load_engine_dir(path: str | Path, verify: bool = True) -> EngineManifest:
    """Read and validate an engine directory; `verify` also checks every file's sha256."""
    path = Path(path)
    config = path / MANIFEST
    if not path.is_dir():
        raise FastAVError(f"{path} is not a directory: build an engine with `fastav-export build`")
    if not config.is_file():
        raise FastAVError(f"{path} has no {MANIFEST}, so it is not an engine directory: build one with "
                          "`fastav-export build`")
    manifest = parse_manifest(read_json_file(config, "engine manifest"), path)
    for relative, digest in manifest.files.items():
        file = path / relative
        if not file.is_file():
            raise FastAVError(f"{path}: {relative} is missing: {REBUILD}")
        if verify:
            try:
                actual = sha256_file(file)
            except OSError as exc:
                raise FastAVError(f"cannot read {file}: {exc.strerror or exc}") from None
            if actual != digest:
                raise FastAVError(f"{path}: {relative} does not match the sha256 recorded in {MANIFEST} "
                                  f"(modified or corrupted): {REBUILD}")
    _check_embed_graph(manifest)
    return manifest


def _check_embed_graph(manifest: EngineManifest) -> None:
    """The embed graph's [V, D] table agrees with the manifest's vocab_size, hidden_size and precision
    (read from the graph's proto; the weights themselves are not loaded)."""
    import onnx

    path = manifest.file(manifest.graphs[graph_io.EMBED].onnx)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise FastAVError(f"cannot read the embed graph {path}: {str(exc).splitlines()[0] if str(exc) else exc}: "
                          f"{REBUILD}") from None
    dims = manifest.dims
    tables = [init for init in model.graph.initializer if list(init.dims) == [dims.vocab_size, dims.hidden_size]]
    if not tables:
        raise FastAVError(f"{manifest.path}: the embed graph holds no [{dims.vocab_size}, {dims.hidden_size}] "
                          f"table, so {MANIFEST}'s vocab_size or hidden_size is wrong: {REBUILD}")
    if tables[0].data_type != ONNX_TYPES[manifest.precision]:
        raise FastAVError(f"{manifest.path}: the embed graph's table is not {manifest.precision}, the precision "
                          f"{MANIFEST} records: {REBUILD}")


def source_graphs(manifest: EngineManifest) -> dict[str, str]:
    """graph -> its ONNX file (relative): what every backend builds from."""
    return {name: entry.onnx for name, entry in manifest.graphs.items()}


def backend_files(manifest: EngineManifest, backend: str) -> dict[str, str]:
    """graph -> the file (relative) `backend` loads for it: its own artifact where the manifest
    lists one (TensorRT's engines), else the ONNX graph itself."""
    section = manifest.backends.get(backend)
    return {**source_graphs(manifest), **(section.engines if isinstance(section, TrtSection) else {})}
