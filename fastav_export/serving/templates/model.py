"""Triton python-backend model for a fastav-export engine directory.

Rendered by `fastav-export triton` ${fastav_version}. Thin glue: the request handling
lives in `fastav_export.serving` (importable and tested without Triton). The engine
directory, streaming flag and defaults come from this model's config.pbtxt parameters.
"""

import json

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from torch.utils.dlpack import to_dlpack

try:
    from fastav_export.errors import FastAVError
    from fastav_export.serving.engine import ServedEngine
    from fastav_export.serving.request import INPUT_NAMES
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
    return np.from_dlpack(tensor)


def _new_text(now: str, sent: str, final: bool = False) -> tuple[str, str]:
    """(the piece to stream, the text sent after it) when the answer so far reads `now`.

    A byte-level token may end mid-character, which decodes to U+FFFD until its next bytes come:
    that tail is held back (streamed once it settles, or with the final response), so the pieces
    joined always equal the final text.
    """
    stable = now if final else now.rstrip("\ufffd")
    if not stable.startswith(sent):
        return "", sent
    return stable[len(sent):], stable


def _tensor(name, array):
    # Through torch's capsule: numpy's own capsule deleter raises (and logs a traceback)
    # after the stub has consumed it.
    return pb_utils.Tensor.from_dlpack(name, to_dlpack(torch.from_numpy(np.ascontiguousarray(array))))


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.name = config["name"]
        self.streaming = params["streaming"] == "true"
        try:
            if not params["engine_dir"].isascii():  # the stub's Python encodes file names as ASCII
                raise FastAVError(f"the engine path {params['engine_dir']} holds non-ASCII characters, which this "
                                  "python backend stub cannot open: move the engine and re-render")
            self.engine = ServedEngine.open(params["engine_dir"], placeholder_id=int(params["placeholder_id"]),
                                            default_max_new_tokens=int(params["max_new_tokens"]),
                                            threads=int(params["threads"]) or None)
        except FastAVError as exc:
            # One line in the server log; raising makes Triton mark the model UNAVAILABLE.
            reason = f"{self.name}: cannot load the engine directory: {exc}"
            pb_utils.Logger.log_error(reason)
            raise pb_utils.TritonModelException(reason) from None
        pb_utils.Logger.log_info(f"{self.name}: serving {params['engine_dir']} ({self.engine.manifest.model}, "
                                 f"{self.engine.backend_kind} backend, streaming {self.streaming})")

    def finalize(self):
        """Unloading: release the sessions or engines and the KV buffers now, not at interpreter exit."""
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()

    def execute(self, requests):
        responses = []
        for request in requests:
            sender = request.get_response_sender() if self.streaming else None
            try:
                response = self._serve(request, sender)
            except FastAVError as exc:  # the request is wrong: INVALID_ARG, which HTTP clients get as 400
                response = pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(str(exc), pb_utils.TritonError.INVALID_ARG))
            except Exception as exc:  # a bug: answer this request, keep serving the others
                pb_utils.Logger.log_error(f"{self.name}: internal error: {type(exc).__name__}: {exc}")
                response = pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(f"internal error ({type(exc).__name__}: {exc}): see the server log"))
            if sender is not None:
                sender.send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            else:
                responses.append(response)
        return None if self.streaming else responses

    def _serve(self, request, sender):
        inputs = {}
        for name in INPUT_NAMES:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is not None:
                inputs[name] = _array(tensor)
        parsed = self.engine.parse(inputs)
        # A client that cancelled (a closed gRPC stream) gets no more tokens: checked between tokens.
        cancelled = sender.is_cancelled if sender is not None else request.is_cancelled
        tokens, text = [], ""
        for token in self.engine.stream(parsed, cancelled=cancelled):
            tokens.append(token)
            if sender is not None:  # decoupled: one response per token as soon as it exists
                outputs = [_tensor("token_ids", np.array([token], np.int64))]
                if parsed.stop_ids:  # a media request: the new text too (UTF-8 bytes; empty mid-character)
                    piece, text = _new_text(self.engine.text(tokens, parsed), text)
                    outputs.append(_tensor("text", np.frombuffer(piece.encode("utf-8"), np.uint8)))
                sender.send(pb_utils.InferenceResponse(outputs))
        if cancelled():
            pb_utils.Logger.log_info(f"{self.name}: request cancelled after {len(tokens)} of "
                                     f"{parsed.max_new_tokens} tokens; generation stopped")
            return pb_utils.InferenceResponse(
                error=pb_utils.TritonError("the request was cancelled", pb_utils.TritonError.CANCELLED))
        summary = self.engine.summary(parsed)
        outputs = [_tensor("kept_tokens", summary.kept_tokens), _tensor("flops_ratio", summary.flops_ratio)]
        if sender is None:
            outputs.insert(0, _tensor("token_ids", np.array(tokens, np.int64)))
            if parsed.stop_ids:
                text = self.engine.text(tokens, parsed).encode("utf-8")
                outputs.append(_tensor("text", np.frombuffer(text, np.uint8)))
        elif parsed.stop_ids:  # the text held back at the end (an unfinished character), with the summary
            piece, _ = _new_text(self.engine.text(tokens, parsed), text, final=True)
            outputs.append(_tensor("text", np.frombuffer(piece.encode("utf-8"), np.uint8)))
        return pb_utils.InferenceResponse(outputs)
