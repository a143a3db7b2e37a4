"""Replay the reference's graph calls on an engine's graphs: where do the pipelines part?

Each recorded reference call (graph_data.py) is replayed on the engine's own graphs:
the engine graph gets exactly the reference's inputs, and its outputs are compared with
the reference's outputs. Because every graph sees the reference's inputs, an error that
a graph makes is not inherited by the graphs after it; the first failing call in
execution order is where the pipelines part (a linear replay: the calls are few).

Each call's outputs are compared by Polygraphy's own compare function, the one the
whole-pipeline comparison uses (tolerances.compare_func): an element fails when
|engine - reference| > atol and |engine - reference| / |reference| > rtol; integer
outputs (TopKGather's indices and positions) must match exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .graph_data import GraphCall
from .tolerances import compare_func


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


def check_outputs(got: dict[str, np.ndarray], expected: dict[str, np.ndarray], atol: float,
                  rtol: float) -> list[OutputCheck]:
    """Polygraphy's comparison of one call's outputs (floats within atol/rtol, the rest exact)."""
    from polygraphy.comparator import IterationResult
    from polygraphy.logger import G_LOGGER

    floats = [name for name, array in expected.items() if np.issubdtype(array.dtype, np.floating)]
    compare = compare_func(floats, atol, rtol)
    checks = []
    for name, want in expected.items():
        have = got[name]
        if have.shape != want.shape:  # Polygraphy would reshape equal volumes: a shape is part of the check
            checks.append(OutputCheck(name, False, float("inf")))
            continue
        # Quiet: one call among many (the report says what failed), and 0/0 relative errors of zeros.
        with G_LOGGER.verbosity(G_LOGGER.ERROR), np.errstate(divide="ignore", invalid="ignore"):
            result = compare(IterationResult({name: have}, runner_name="engine"),
                             IterationResult({name: want}, runner_name="reference"))[name]
        checks.append(OutputCheck(name, bool(result), float(result.max_absdiff) if want.size else 0.0))
    return checks


def replay(call: GraphCall, graphs) -> dict[str, np.ndarray]:
    """Run `call`'s graph on `graphs` (a GraphRunner) with the recorded inputs."""
    inputs = {name: torch.from_numpy(array).to(graphs.device) for name, array in call.inputs.items()}
    # Zeroed: a graph that writes a KV buffer in place leaves the slots past its entries untouched.
    outputs = {name: torch.zeros(array.shape, dtype=torch.from_numpy(array).dtype, device=graphs.device)
               for name, array in call.outputs.items()}
    graphs.run(call.graph, inputs, outputs)
    return {name: tensor.cpu().numpy() for name, tensor in outputs.items()}


def replay_calls(calls: list[GraphCall], graphs, atol: float, rtol: float) -> list[CallCheck]:
    """Replay every reference call on `graphs`, in execution order; see `first_divergence`."""
    return [CallCheck(call, check_outputs(replay(call, graphs), call.outputs, atol, rtol)) for call in calls]


def first_divergence(checks: list[CallCheck]) -> CallCheck | None:
    return next((check for check in checks if not check.passed), None)
