"""An engine directory opened for serving: requests in, greedy tokens out.

`ServedEngine` validates the engine directory once (format and the sha256 of every
file), then answers requests. It opens the engine as the Python API does
(`api.runners.EngineDirRunner`: the graphs once, TensorRT on a GPU or ONNX Runtime on CPU,
the front end, and one pipeline per (layout, pruning config), which is cheap, cached), so a
served answer is built as `run` and `eval` build theirs. `stream` and `generate`
run one request at a time; the Triton model batches requests of different prompts
together through `scheduler.ContinuousBatcher`, which prefills each request with
`pipeline` and decodes the rows together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from ..api.runners import EngineDirRunner
from ..closing import Closing
from ..contract.flops import flops_report
from ..engine.manifest import EngineManifest, load_engine_dir
from ..errors import FastAVError
from ..media.decode import NoAudioTrack
from ..models import placeholder_id_for
from ..runtime.answer import stream_answer
from .request import AUDIO, MEDIA, QUESTION, SILENT_AUDIO, ServingRequest, parse_media_request, parse_request

log = logging.getLogger("fastav_export")


@dataclass(frozen=True)
class Summary:
    """What the final response reports.

    kept_tokens: [L] int64, tokens each decoder layer processed (N before K, then shrinking).
    flops_ratio: [2] float32, pruned / dense FLOPs: the paper formula and exact MACs.
    """

    kept_tokens: np.ndarray
    flops_ratio: np.ndarray


class ServedEngine(Closing):
    def __init__(self, manifest: EngineManifest, placeholder_id: int | None = None,
                 default_max_new_tokens: int | None = None, backend: str | None = None,
                 threads: int | None = None):
        self.manifest = manifest
        self.placeholder_id = placeholder_id_for(manifest.model) if placeholder_id is None else placeholder_id
        self.default_max_new_tokens = min(16, manifest.max_new_tokens) if default_max_new_tokens is None \
            else default_max_new_tokens
        self.backend_name, self.threads = backend, threads
        self._runner = EngineDirRunner(manifest, backend, threads, for_client=True)
        self.front_end = self._runner.front  # encoders + tokenizer: media requests (question + video bytes)
        self.default_backend = self.pipeline(manifest.layout, manifest.pruning, self.default_max_new_tokens)

    def close(self) -> None:
        """Release every cached pipeline (their KV buffers), the front end, then the shared sessions or engines."""
        self._runner.close()

    @classmethod
    def open(cls, engine_dir, **kwargs) -> "ServedEngine":
        """Validate `engine_dir` (one-line FastAVError if missing, modified or another format) and open it."""
        return cls(load_engine_dir(engine_dir, verify=True), **kwargs)

    @property
    def graphs(self):
        """The engine's graphs (sessions or engines), shared by every pipeline of this engine."""
        return self._runner.graphs

    def pipeline(self, layout, config, max_new_tokens: int | None = None):
        """The pipeline for one (layout, config) over the shared graphs, cached; its `hand_over` gives a
        prefilled request's KV buffers away (the batcher)."""
        return self._runner.pipeline(layout, config, max_new_tokens)

    @property
    def backend_kind(self) -> str:
        return self.default_backend.name

    def parse(self, inputs: dict) -> ServingRequest:
        """inputs: input name -> numpy array (absent optional inputs left out).

        A media request (question + media bytes) is decoded and encoded here: what comes back is
        the decoder's request, with the end-of-turn ids to stop at."""
        if QUESTION in inputs or MEDIA in inputs:
            return self._media_request(inputs)
        return parse_request(inputs, self.manifest, self.placeholder_id, self.default_max_new_tokens)

    def _media_request(self, inputs: dict) -> ServingRequest:
        from ..engine.requests import check_request
        from .request import request_field

        media = parse_media_request(inputs, self.manifest, self.default_max_new_tokens)
        try:
            prompt, _ = self.front_end.prompt(media.question, media.video, media.audio, media.silent_audio)
        except NoAudioTrack as exc:  # the request's fields that fix it, not the CLI's flags
            advice = (f"send an audio file (or a video with sound) as `{AUDIO}`" if media.audio is not None
                      else f"send an audio file as `{AUDIO}`, or set `{SILENT_AUDIO}` to true to answer with silence")
            raise FastAVError(f"{exc}: {advice}") from None
        check_request(self.manifest, prompt.layout, media.config, media.max_new_tokens, name=request_field,
                      for_client=True)
        return ServingRequest(prompt.input_ids, prompt.mm_embeds, prompt.layout, media.config,
                              media.max_new_tokens, tuple(self.front_end.stop_ids()), positions=prompt.positions)

    def text(self, tokens: list[int], request: ServingRequest) -> str:
        """The answer's text so far (media requests; cut at the end of the turn, special tokens skipped)."""
        from ..text.tokenizer import decode_text

        return decode_text(self.front_end.tokenizer, tokens, request.stop_ids)

    def inputs_embeds(self, request: ServingRequest, backend=None) -> np.ndarray:
        """[1, N, D] float32: text rows from the engine's embed graph, mm_embeds at the placeholders."""
        backend = backend or self.pipeline(request.layout, request.config)
        text = backend.embed(request.text_ids()[None])
        if hasattr(text, "cpu"):  # a torch tensor, possibly on the GPU (TensorRT backend)
            text = text.float().cpu().numpy()
        return request.splice(np.asarray(text)[0]).numpy()

    def stream(self, request: ServingRequest, cancelled: Callable[[], bool] = lambda: False) -> Iterator[int]:
        """Greedy decoding, one token id at a time (`runtime.answer.stream_answer`, as `run` decodes),
        ending at a stop id of the request.

        cancelled: asked before prefill and after each token; when it says True the
        stream ends early, so a cancelled request stops costing compute.
        """
        import torch

        if cancelled():
            return
        backend = self.pipeline(request.layout, request.config)
        embeds = torch.from_numpy(self.inputs_embeds(request, backend))
        yield from stream_answer(backend, embeds, request.max_new_tokens, request.stop_ids, cancelled=cancelled,
                                 positions=request.positions)

    def summary(self, request: ServingRequest) -> Summary:
        backend = self.pipeline(request.layout, request.config)
        report = flops_report(self.manifest.dims, backend.schedule)
        return Summary(np.array(backend.schedule.tokens, np.int64),
                       np.array([report.paper_ratio, report.exact_ratio], np.float32))

    def generate(self, request: ServingRequest) -> tuple[list[int], Summary]:
        """The one-shot form: every token, then the summary."""
        return list(self.stream(request)), self.summary(request)
