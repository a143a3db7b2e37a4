"""The FastAV runtime on TensorRT: the shared graph pipeline over TensorRT engines.

`TrtGraphs` holds one engine and one execution context per graph. Every input and
output is a torch CUDA tensor whose address is handed to the context, so hidden
states, KV buffers and logits never leave the GPU; everything is enqueued on torch's
current stream (one stream per pipeline). Each engine has two optimisation profiles
(see `profiles.py`): a call with a non-empty past is a decode step, anything else
a prefill.

Decoding has fixed shapes (one token, each layer's whole KV buffer as the past), so
`TrtPipeline` captures the shared `DecodeStep` (embed, pre, post layers) in a CUDA graph
after the first step of each request and replays it: per step only the token ids,
the position, the past lengths and the slots where new keys/values go change, and
those live in static device tensors that are updated before each replay.
"""

from __future__ import annotations

import torch

from ...closing import Closing
from ...contract import graph_io
from ...contract.layout import TokenLayout
from ...contract.precision import TORCH_DTYPES
from ...contract.pruning_config import PruningConfig
from ...engine.manifest import EngineManifest
from ...engine.trt.profiles import DECODE, PREFILL
from ...engine.trt.tensorrt_env import (
    check_engine_compatible,
    import_polygraphy_trt,
    import_tensorrt,
)
from ...errors import FastAVError
from ..graph_pipeline import GraphPipeline


class TrtGraphs(Closing):
    """One deserialised engine and execution context per graph of the engine directory."""

    name = "trt"

    def __init__(self, manifest: EngineManifest):
        section = manifest.backends["trt"]
        check_engine_compatible(section, manifest.path)
        ptrt = import_polygraphy_trt()
        trt = import_tensorrt()

        from ...engine.trt.plugin_library import load_plugin_library

        load_plugin_library()  # registers TopKGather before the engines that use it are deserialised
        self.device = torch.device("cuda", torch.cuda.current_device())
        self.dtype = TORCH_DTYPES[manifest.precision]
        self.engines = {name: ptrt.engine_from_bytes(manifest.file(path).read_bytes())
                        for name, path in section.engines.items()}
        self.contexts = {name: engine.create_execution_context() for name, engine in self.engines.items()}
        self._profile = dict.fromkeys(self.contexts, PREFILL)
        self._outputs = {name: [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)
                                if engine.get_tensor_mode(engine.get_tensor_name(i)) == trt.TensorIOMode.OUTPUT]
                         for name, engine in self.engines.items()}
        self._torch_dtypes = {trt.float32: torch.float32, trt.float16: torch.float16, trt.bfloat16: torch.bfloat16,
                              trt.int64: torch.int64, trt.int32: torch.int32, trt.bool: torch.bool}
        self._unused: dict[tuple, torch.Tensor] = {}
        # TensorRT wants a valid address even for an empty tensor (the prefill's empty past).
        self._scratch = torch.empty(256, dtype=torch.uint8, device=self.device)

    def close(self) -> None:
        """Release the execution contexts, then the engines (TensorRT's order), and the scratch buffers."""
        self.contexts.clear()
        self.engines.clear()
        self._unused.clear()


    @staticmethod
    def _phase(graph: str, inputs: dict[str, torch.Tensor]) -> int:
        if graph == graph_io.EMBED:
            return DECODE if inputs["input_ids"].shape[1] == 1 else PREFILL
        past = next((t for name, t in inputs.items() if name.startswith("past_key_values.")), None)
        return DECODE if past is not None and past.shape[2] > 0 else PREFILL

    def _address(self, tensor: torch.Tensor) -> int:
        if tensor.device != self.device:
            raise ValueError(f"a {tensor.device} tensor was passed to a TensorRT engine on {self.device}")
        return tensor.data_ptr() if tensor.numel() else self._scratch.data_ptr()

    def _unused_output(self, graph: str, name: str, shape: tuple) -> torch.Tensor:
        """A buffer for an output nobody reads (decode's rollout importance), reused across steps.

        Allocated on the eager decode step, so a CUDA-graph capture finds it cached.
        """
        key = (graph, name, shape)
        if key not in self._unused:
            dtype = self._torch_dtypes[self.engines[graph].get_tensor_dtype(name)]
            self._unused[key] = torch.empty(shape, dtype=dtype, device=self.device)
        return self._unused[key]

    def prepare(self, graph: str, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]):
        # A context serves prefill and decode calls, so each call sets its shapes and addresses
        # again (host-side only: a CUDA-graph replay of the step never calls this).
        return lambda: self.run(graph, inputs, outputs)

    def run(self, graph: str, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> None:
        context = self.contexts[graph]
        stream = torch.cuda.current_stream(self.device).cuda_stream
        phase = self._phase(graph, inputs)
        if phase != self._profile[graph]:
            context.set_optimization_profile_async(phase, stream)
            self._profile[graph] = phase
        for name, tensor in inputs.items():
            if not tensor.is_contiguous():
                raise ValueError(f"{graph}: input {name} is not contiguous")
            context.set_input_shape(name, tuple(tensor.shape))
            context.set_tensor_address(name, self._address(tensor))
        for name in self._outputs[graph]:
            expected = tuple(context.get_tensor_shape(name))
            tensor = outputs.get(name)
            if tensor is None:  # TensorRT writes every output: the caller does not need this one
                tensor = self._unused_output(graph, name, expected)
            elif expected != tuple(tensor.shape):  # the runtime and the engine disagree on a count
                raise RuntimeError(f"{graph}: output {name} is {expected} in the engine, {tuple(tensor.shape)} here")
            context.set_tensor_address(name, self._address(tensor))
        if not context.execute_async_v3(stream):
            raise RuntimeError(f"TensorRT failed to run {graph} (see the TensorRT log above)")


class TrtPipeline(GraphPipeline):
    """The `trt` backend: same interface as `TorchReference` and `OrtPipeline`.

    Decoding replays the shared `DecodeStep` as a CUDA graph: its first step runs
    eagerly (TensorRT finishes its lazy set-up for the decode shapes there, as it must
    before capture), then the step's graph calls and KV writes are captured once.
    """

    name = "trt"

    def __init__(self, manifest: EngineManifest, layout: TokenLayout, config: PruningConfig,
                 graphs: TrtGraphs | None = None):
        super().__init__(manifest, layout, config, graphs or TrtGraphs(manifest))
        self.owns_graphs = graphs is None
        self._cuda_graph: torch.cuda.CUDAGraph | None = None

    def close(self) -> None:
        self._cuda_graph = None  # before the buffers and contexts it replays into
        super().close()

    def prefill(self, inputs_embeds, max_new_tokens: int = 0, position_ids=None):
        max_batch = self.manifest.backends["trt"].max_batch
        if len(inputs_embeds) > max_batch:
            raise FastAVError(f"{len(inputs_embeds)} rows exceed the TensorRT engines' limit of {max_batch}: "
                              f"rebuild with --max-batch {len(inputs_embeds)}")
        self._cuda_graph = None  # new buffers: a captured step would write into the old ones
        return super().prefill(inputs_embeds, max_new_tokens, position_ids)

    def decode(self, token_ids) -> torch.Tensor:
        self.check_decode()
        ids = torch.as_tensor(token_ids).reshape(-1, 1)
        if self._decode_step is None:
            self._decode_step = self._new_decode_step(ids.shape[0])
            logits = self._decode_step(ids, self._next_position, self._past_lengths())  # eager
            self._account_step()
            self._cuda_graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self._cuda_graph):
                self._decode_step.run_graphs()  # recorded only: capture runs nothing
            return logits
        step = self._decode_step
        step.update(ids, self._next_position, self._past_lengths())
        self._cuda_graph.replay()
        self._account_step()
        return step.logits.clone()
