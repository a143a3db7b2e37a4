"""Triton python-backend model for a fastav-export engine directory.

Rendered by `fastav-export triton` ${fastav_version}. Thin glue: the request handling
lives in `fastav_export.serving` (importable and tested without Triton). The engine
directory, streaming flag and defaults come from this model's config.pbtxt parameters.
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from torch.utils.dlpack import to_dlpack

try:
    from fastav_export.errors import FastAVError
    from fastav_export.serving.engine import ServedEngine
    from fastav_export.serving.request import INPUT_NAMES
    from fastav_export.serving.scheduler import Cancelled, ContinuousBatcher, ServerBusy
    from fastav_export.text.text_pieces import new_text
except ImportError as exc:  # the stub's Python lacks the package: say which one to fix
    if "undefined symbol" in str(exc):  # the stub embeds another build's libpython than that Python's
        raise ImportError(f"the python backend stub's libpython is not the one of the Python on the server's PATH "
                          f"({exc}): start the server with `python -m fastav_export.serving.tritonserver`, which "
                          "makes the stub load that Python's libpython (see docs/serving.md)") from None
    raise ImportError(f"fastav-export is not importable by the python backend stub ({exc}): install it into the "
                      "Python whose bin/ is first on the server's PATH (see docs/serving.md)") from None


# Tensors cross the stub through DLPack, never as_numpy() / pb_utils.Tensor(name, array):
# the 2.51 stub is built against numpy 1.x and, under numpy 2, reads inputs with wrong
# strides and writes outputs as empty. DLPack is right with either numpy.
def _array(tensor):
    # A copy: the stub's buffer is read-only, and torch warns about every non-writable array it wraps.
    return np.array(np.from_dlpack(tensor), copy=True)


def _tensor(name, array):
    # Through torch's capsule: numpy's own capsule deleter raises (and logs a traceback)
    # after the stub has consumed it.
    # Writable too: torch warns about every read-only array (text pieces come from np.frombuffer).
    return pb_utils.Tensor.from_dlpack(name, to_dlpack(torch.from_numpy(np.require(array, requirements="CW"))))


def _error(exc) -> "pb_utils.TritonError":
    """The request's error: CANCELLED, UNAVAILABLE (server busy: retry), INVALID_ARG (HTTP 400) or internal."""
    if isinstance(exc, Cancelled):
        return pb_utils.TritonError(str(exc), pb_utils.TritonError.CANCELLED)
    if isinstance(exc, ServerBusy):
        return pb_utils.TritonError(str(exc), pb_utils.TritonError.UNAVAILABLE)
    if isinstance(exc, FastAVError):
        return pb_utils.TritonError(str(exc), pb_utils.TritonError.INVALID_ARG)
    return pb_utils.TritonError(f"internal error ({type(exc).__name__}: {exc}): see the server log")


class _Responses:
    """One request's answer through its response sender, called from the batching thread.

    Streaming: one response per token (its id, and the new text for media requests), then a
    final one with the summary. One-shot: a single final response with every token."""

    def __init__(self, model, request, parsed):
        self.model, self.parsed = model, parsed
        self.sender = request.get_response_sender()
        # A client that cancelled (a closed gRPC stream) gets no more tokens: asked after each token.
        self.cancelled = self.sender.is_cancelled if model.streaming else request.is_cancelled
        self.tokens, self.sent_text = [], ""

    def token(self, token_id):
        self.tokens.append(token_id)
        if not self.model.streaming:
            return
        outputs = [_tensor("token_ids", np.array([token_id], np.int64))]
        if self.parsed.stop_ids:  # a media request: the new text too (UTF-8 bytes; empty mid-character)
            piece, self.sent_text = new_text(self.model.engine.text(self.tokens, self.parsed), self.sent_text)
            outputs.append(_tensor("text", np.frombuffer(piece.encode("utf-8"), np.uint8)))
        self.sender.send(pb_utils.InferenceResponse(outputs))

    def finish(self, stats):
        engine, parsed = self.model.engine, self.parsed
        summary = engine.summary(parsed)
        outputs = [_tensor("kept_tokens", summary.kept_tokens), _tensor("flops_ratio", summary.flops_ratio),
                   _tensor("queue_seconds", np.array([stats.queue_seconds], np.float32)),
                   _tensor("batch_size", np.array([stats.batch_size], np.int32))]
        if not self.model.streaming:
            outputs.insert(0, _tensor("token_ids", np.array(self.tokens, np.int64)))
            if parsed.stop_ids:
                text = engine.text(self.tokens, parsed).encode("utf-8")
                outputs.append(_tensor("text", np.frombuffer(text, np.uint8)))
        elif parsed.stop_ids:  # the text held back at the end (an unfinished character), with the summary
            piece, _ = new_text(engine.text(self.tokens, parsed), self.sent_text, final=True)
            outputs.append(_tensor("text", np.frombuffer(piece.encode("utf-8"), np.uint8)))
        self.sender.send(pb_utils.InferenceResponse(outputs), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def fail(self, exc):
        if isinstance(exc, Cancelled):
            pb_utils.Logger.log_info(f"{self.model.name}: {exc}; generation stopped")
        elif not isinstance(exc, FastAVError):
            pb_utils.Logger.log_error(f"{self.model.name}: internal error: {type(exc).__name__}: {exc}")
        self.sender.send(pb_utils.InferenceResponse(error=_error(exc)),
                         flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.name = config["name"]
        self.streaming = params["streaming"] == "true"
        instances = sum(group.get("count", 1) for group in config.get("instance_group", [])) or 1
        # 0: the cores split between the instances (each instance is a process with its own sessions).
        threads = int(params["threads"]) or max(1, len(os.sched_getaffinity(0)) // instances)
        try:
            if not params["engine_dir"].isascii():  # the stub's Python encodes file names as ASCII
                raise FastAVError(f"the engine path {params['engine_dir']} holds non-ASCII characters, which this "
                                  "python backend stub cannot open: move the engine and re-render")
            self.engine = ServedEngine.open(params["engine_dir"], placeholder_id=int(params["placeholder_id"]),
                                            default_max_new_tokens=int(params["max_new_tokens"]), threads=threads)
            self.batcher = ContinuousBatcher(self.engine, float(params["kv_budget_mib"]), int(params["max_queue"]))
            self.media_workers = ThreadPoolExecutor(int(params["media_workers"]), thread_name_prefix="fastav-media")
        except FastAVError as exc:
            # One line in the server log; raising makes Triton mark the model UNAVAILABLE.
            reason = f"{self.name}: cannot load the engine directory: {exc}"
            pb_utils.Logger.log_error(reason)
            raise pb_utils.TritonModelException(reason) from None
        pb_utils.Logger.log_info(f"{self.name}: serving {params['engine_dir']} ({self.engine.manifest.model}, "
                                 f"{self.engine.manifest.numerics}, "
                                 f"{self.engine.backend_kind} backend, streaming {self.streaming}, "
                                 f"{threads} threads, KV budget {params['kv_budget_mib']} MiB)")

    def finalize(self):
        """Unloading: stop the batching thread (its requests are told), then release the sessions or engines."""
        workers = getattr(self, "media_workers", None)
        if workers is not None:
            workers.shutdown(wait=True)  # requests being parsed reach the batcher, which tells them
        batcher = getattr(self, "batcher", None)
        if batcher is not None:
            batcher.close()
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()

    def execute(self, requests):
        """Read each request's inputs, then return at once: a media worker parses it (decodes and encodes
        the media, outside the batching loop) and hands it to the batcher, which answers through the
        request's response sender. So the next requests arrive while these decode."""
        for request in requests:
            inputs = {}
            for name in INPUT_NAMES:
                tensor = pb_utils.get_input_tensor_by_name(request, name)
                if tensor is not None:
                    inputs[name] = _array(tensor)
            self.media_workers.submit(self._admit, request, inputs)
        return None

    def _admit(self, request, inputs):
        sender = None
        try:
            parsed = self.engine.parse(inputs)
            responses = _Responses(self, request, parsed)
            sender = responses.sender
            self.batcher.submit(parsed, responses)
        except Exception as exc:  # noqa: BLE001  a wrong request (or a bug) is answered, the others served
            if not isinstance(exc, FastAVError):
                pb_utils.Logger.log_error(f"{self.name}: internal error: {type(exc).__name__}: {exc}")
            sender = sender or request.get_response_sender()
            sender.send(pb_utils.InferenceResponse(error=_error(exc)),
                        flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
