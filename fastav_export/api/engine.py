"""`Engine`: open a model once, then answer questions about videos (docs/python.md).

    import fastav_export
    with fastav_export.Engine.open("engines/videollama2-tiny-fp32") as engine:
        record = engine.answer(video="clip.mp4", question="What is happening?", pruning="rollout:0.3")
        print(record.text, record.flops_ratio["exact_macs"])

`fastav-export run --video`, `eval` and the Triton model answer through this class, so a prediction
of `eval` is by construction what `run` prints. One request runs at a time per Engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..closing import Closing
from ..contract.layout import TokenLayout
from ..contract.pruning_config import PruningConfig
from ..contract.pruning_policy import PruningPolicy
from ..errors import FastAVError

DEFAULT_MAX_NEW_TOKENS = 16


@dataclass(frozen=True)
class AnswerRecord:
    """One answer. `to_json()` is the record `fastav-export run --video ... --json` writes.

    text:        the answer, detokenised up to the end of the turn.
    token_ids:   the generated ids (the end-of-turn id included when it came).
    kept_tokens: [L] tokens each decoder layer processed (the prompt's N before the global cut).
    flops_ratio: pruned / dense decoder FLOPs: {"paper", "exact_macs", "exact_macs_without_early_drop"}.
    seconds:     stage -> seconds (media_decode, vision_encoder, audio_encoder, prefill, decode).
    layout:      the prompt's token layout; pruning: the resolved config it ran with.
    """

    text: str
    token_ids: list[int]
    kept_tokens: list[int]
    flops_ratio: dict
    seconds: dict
    layout: TokenLayout
    pruning: PruningConfig
    question: str
    _json: dict
    _flops: object  # contract.flops.FlopsReport

    @property
    def prompt_tokens(self) -> int:
        return self.layout.n_tokens

    def describe_flops(self) -> str:
        """One line: the paper formula's and the exact MACs' ratios."""
        return self._flops.describe()

    def to_json(self) -> dict:
        return dict(self._json)


class Engine(Closing):
    """An engine directory (ONNX Runtime or TensorRT) or a model on the PyTorch reference, opened once."""

    def __init__(self, runner):
        """Use `Engine.open`; runner: an `api.runners` object (the command line builds its own)."""
        self._runner = runner

    @classmethod
    def open(cls, source: str | Path, *, backend: str | None = None, device: str = "cpu",
             dtype: str = "float32", threads: int | None = None, model: str | None = None) -> "Engine":
        """Open `source`:
        - an engine directory from `fastav-export build` (backend "ort" or "trt"; default: trt where
          its TensorRT engines can run, else ort; `threads`: ONNX Runtime's intra-op threads);
        - a local Hugging Face snapshot directory, or a registered model name such as
          "videollama2-tiny" (seeded random weights; tiny models only), on the PyTorch reference
          (backend "torch"; `device` and `dtype` apply to it only; `model` names a snapshot's registered
          model where its config alone does not, as `--model` does with `--checkpoint`).
        Everything is validated first (an engine directory's files against their sha256)."""
        path = Path(source)
        if _is_engine_dir(path):
            if backend == "torch":
                raise FastAVError(f"{path} is an engine directory, which runs on ort or trt: open a checkpoint or a "
                                  "model name for backend='torch'")
            if (device, dtype, model) != ("cpu", "float32", None):
                raise FastAVError("device, dtype and model apply to the torch backend: an engine runs its built model "
                                  "in its built precision where its backend runs")
            from ..engine.manifest import load_engine_dir
            from .runners import EngineDirRunner

            return cls(EngineDirRunner(load_engine_dir(path), backend, threads))
        if backend not in (None, "torch"):
            raise FastAVError(f"{source} is not an engine directory (no fastav-engine config.json), so it runs on "
                              f"the torch backend, not {backend!r}: build an engine with `fastav-export build`")
        if threads is not None:
            raise FastAVError("threads sets ONNX Runtime's threads for an engine directory: drop it for the torch "
                              "backend")
        from .models import open_reference

        return cls(open_reference(source, device=device, dtype=dtype, model=model))

    @property
    def model(self) -> str:
        """The model's name: the registered one, or the checkpoint directory's."""
        return self._runner.name

    @property
    def backend(self) -> str:
        """"ort", "trt" or "torch"."""
        return self._runner.backend_name

    @property
    def description(self) -> str:
        """One line: model, backend, device and numerics."""
        return self._runner.title

    @property
    def sources(self) -> dict[str, str]:
        """part -> where its weights came from (encoders, tokenizer)."""
        return dict(self._runner.sources)

    @property
    def default_pruning(self) -> PruningConfig:
        """The engine's own pruning settings (the `preset` policy)."""
        return self._runner.base_config

    def pruning_config(self, pruning: str | PruningPolicy | PruningConfig | None = None) -> PruningConfig:
        """The resolved config of `pruning`: None or "preset" (the engine's own), "dense", a policy such as
        "rollout:0.3" or "keep_chunks:2" (contract.pruning_policy), "preset:FILE", or a PruningConfig."""
        from ..contract.pruning_policy import parse_policy

        num_layers = self._runner.dims.num_layers
        if pruning is None:
            return self._runner.base_config
        if isinstance(pruning, PruningConfig):
            return pruning.resolve(num_layers)
        policy = pruning if isinstance(pruning, PruningPolicy) else parse_policy(pruning)
        return policy.config(self._runner.base_config, num_layers, self._runner.preset_target())

    def check(self, pruning: str | PruningPolicy | PruningConfig | None = None,
              max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, name=None) -> PruningConfig:
        """The resolved config, checked against what the engine can run (K, rollout graph, new tokens);
        `name` names a setting in the error. Nothing is decoded."""
        self._check_media_path()
        config = self.pruning_config(pruning)
        _check_new_tokens(max_new_tokens)
        self._runner.check(None, config, max_new_tokens, name or _setting_name)
        return config

    def answer(self, video: str | Path | bytes, question: str, *, audio: str | Path | bytes | None = None,
               silent_audio: bool = False, pruning: str | PruningPolicy | PruningConfig | None = None,
               max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> AnswerRecord:
        """Answer `question` about `video` (a file path or the file's bytes; its audio track unless
        `audio`, or silence with `silent_audio`) with greedy decoding; see `pruning_config`."""
        *_, record = self._generate(video, question, audio, silent_audio, pruning, max_new_tokens, pieces=False)
        return record

    def stream(self, video: str | Path | bytes, question: str, *, audio: str | Path | bytes | None = None,
               silent_audio: bool = False, pruning: str | PruningPolicy | PruningConfig | None = None,
               max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> Iterator[str]:
        """The answer's text in pieces as it is generated; joined, they equal `answer(...).text`."""
        for piece in self._generate(video, question, audio, silent_audio, pruning, max_new_tokens):
            if isinstance(piece, str) and piece:
                yield piece

    def _generate(self, video, question, audio, silent_audio, pruning, max_new_tokens, pieces: bool = True):
        """Text pieces as tokens come (with `pieces`), then the AnswerRecord."""
        from ..contract.flops import flops_report
        from ..runtime.answer import Answer, answer_pieces

        runner = self._runner
        config = self.check(pruning, max_new_tokens)
        prompt, embeds, seconds = self._prompt_inputs(video, question, audio, silent_audio)
        runner.check_prompt(prompt.layout, config, max_new_tokens)
        backend = runner.pipeline(prompt.layout, config, max_new_tokens)
        for item in answer_pieces(backend, embeds, max_new_tokens, runner.front.tokenizer, runner.front.stop_ids(),
                                  prompt.positions, pieces):
            if not isinstance(item, Answer):
                yield item
        result = item
        result.seconds = {**seconds, **result.seconds}
        report = flops_report(runner.dims, backend.schedule)
        data = {**result.to_json(), "question": question, "layout": prompt.layout.to_json(),
                "flops_ratio": report.to_json()}
        yield AnswerRecord(result.text, result.token_ids, list(backend.schedule.tokens), report.to_json(),
                           result.seconds, prompt.layout, config, question, data, report)

    def prompt_inputs(self, video: str | Path | bytes, question: str, *, audio: str | Path | bytes | None = None,
                      silent_audio: bool = False):
        """The decoder's input for a question, as `answer` builds it: (Prompt, inputs_embeds [1, N, D] fp32
        on the CPU, seconds per front-end stage). Prompt has the layout, the text ids and the position ids
        (runtime.prompt_embeds.Prompt). For research on the embeddings (calibration uses it)."""
        return self._prompt_inputs(video, question, audio, silent_audio)

    def _prompt_inputs(self, video, question, audio, silent_audio):
        from ..text.prompt import check_question

        runner = self._runner
        self._check_media_path()
        check_question(question)
        prompt, seconds = runner.front.prompt(question, _source(video, "video"), _source(audio, "audio"),
                                              silent_audio)
        return prompt, prompt.splice(runner.text_embeds(prompt.text_ids())), seconds

    def _check_media_path(self) -> None:
        if self._runner.front is None:
            raise FastAVError(f"{self.model} holds the decoder only (no encoders or tokenizer): rebuild it without "
                              "--decoder-only to answer questions about videos")

    def close(self) -> None:
        self._runner.close()


def _setting_name(setting: str) -> str:
    """How an error names a pruning setting for a Python caller: `pruning setting global_policy`."""
    return f"the pruning setting {setting}"


def _is_engine_dir(path: Path) -> bool:
    """A directory whose config.json is a fastav-engine manifest (a checkpoint's config.json is not)."""
    import json

    from ..engine.manifest import FORMAT, MANIFEST

    config = path / MANIFEST
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _source(media, what: str):
    """A file path or the file's bytes, as the front end takes them."""
    if media is None or isinstance(media, (bytes, bytearray)):
        return media
    path = Path(media)
    if not path.is_file():
        raise FastAVError(f"{what} {path} is not a file")
    return path


def _check_new_tokens(max_new_tokens) -> None:
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
        raise FastAVError(f"max_new_tokens {max_new_tokens!r} must be a whole number >= 1")
