"""Find the first graph whose outputs diverge from the reference's.

Each recorded reference call (graph_data.py) is replayed on the engine's own graphs:
the engine graph gets exactly the reference's inputs, and its outputs are compared with
the reference's outputs. Because every graph sees the reference's inputs, an error that
a graph makes is not inherited by the graphs after it; the first failing call in
execution order is where the pipelines part.

The check per output is Polygraphy's elementwise rule: an element fails when
|engine - reference| > atol and |engine - reference| / |reference| > rtol. Integer
outputs (TopKGather's indices and positions) must match exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .graph_data import GraphCall


@dataclass
class OutputCheck:
    name: str
    passed: bool
    max_abs_diff: float  # inf when the shapes differ


@dataclass
class CallCheck:
    call: GraphCall
    outputs: list[OutputCheck]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.outputs)

    def failing(self) -> list[OutputCheck]:
        return [check for check in self.outputs if not check.passed]

    def to_json(self) -> dict:
        return {"graph": self.call.graph, "role": self.call.role, "step": self.call.step, "passed": self.passed,
                "outputs": {c.name: {"passed": c.passed, "max_abs_diff": c.max_abs_diff} for c in self.outputs}}


def check_output(name: str, got: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> OutputCheck:
    if got.shape != expected.shape:
        return OutputCheck(name, False, float("inf"))
    if not np.issubdtype(expected.dtype, np.floating):
        atol = rtol = 0.0
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = diff / np.abs(expected.astype(np.float64))
    failed = ((diff > atol) | np.isnan(diff)) & ((rel > rtol) | np.isnan(rel))
    return OutputCheck(name, not bool(failed.any()), float(diff.max()) if diff.size else 0.0)


def replay(call: GraphCall, graphs) -> dict[str, np.ndarray]:
    """Run `call`'s graph on `graphs` (a GraphRunner) with the recorded inputs."""
    inputs = {name: torch.from_numpy(array).to(graphs.device) for name, array in call.inputs.items()}
    # Zeroed: a graph that writes a KV buffer in place leaves the slots past its entries untouched.
    outputs = {name: torch.zeros(array.shape, dtype=torch.from_numpy(array).dtype, device=graphs.device)
               for name, array in call.outputs.items()}
    graphs.run(call.graph, inputs, outputs)
    return {name: tensor.cpu().numpy() for name, tensor in outputs.items()}


def bisect_graphs(calls: list[GraphCall], graphs, atol: float, rtol: float) -> list[CallCheck]:
    """Replay every reference call on `graphs`, in execution order; see `first_divergence`."""
    checks = []
    for call in calls:
        got = replay(call, graphs)
        checks.append(CallCheck(call, [check_output(name, got[name], expected, atol, rtol)
                                       for name, expected in call.outputs.items()]))
    return checks


def first_divergence(checks: list[CallCheck]) -> CallCheck | None:
    return next((check for check in checks if not check.passed), None)
