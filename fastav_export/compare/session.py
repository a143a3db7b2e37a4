"""One comparison of an engine against a reference: whole pipeline through Polygraphy, then per graph.

    Comparison(engine_dir, against="torch").run(feeds, graph_data=DIR) -> report dict

1. Polygraphy's `Comparator.run` runs the engine's runner and the reference runner on
   every feed dict; `Comparator.compare_accuracy` checks `logits` within (atol, rtol) and
   every `kept.<l>` and `tokens` exactly, printing Polygraphy's usual summary.
2. On failure (or with `graph_data`), the reference's graph-level run of the first failing
   input is recorded (graph_data.py) and replayed on the engine's graphs (graph_replay.py): the
   report names the first graph whose outputs diverge.
3. Every file a compared backend builds from or loads is checked: when a backend loads
   artifacts derived from the ONNX graphs (ONNX Runtime's optimised copies, TensorRT
   engines), step 1 ran only those, so the ONNX graphs themselves (what TensorRT builds
   from, what the saved `polygraphy run` commands check) are replayed too
   (source_graphs.py), and a difference there fails the comparison.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..engine.manifest import backend_files, load_engine_dir, source_graphs
from ..engine.requests import check_request
from ..errors import FastAVError
from ..runtime.backends import default_backend, open_graphs
from ..user_io.memory import check_fits
from . import tolerances
from .feeds import INPUT, load_feeds, synthetic_feeds
from .graph_data import record_calls, save_graph_data
from .graph_replay import first_divergence, replay_calls
from .runners import EngineRunner, TorchRunner

log = logging.getLogger("fastav_export")


class Comparison:
    """engine_dir compared with `against` ("torch", "ort" or "trt"); `backend` is the engine side."""

    def __init__(self, engine_dir, against: str = "torch", backend: str | None = None, threads: int | None = None,
                 max_new_tokens: int = 8, atol: float | None = None, rtol: float | None = None):
        for name, value in (("--atol", atol), ("--rtol", rtol)):
            if value is not None:
                tolerances.check_tolerance(name, value)
        self.engine_dir = Path(engine_dir)
        self.manifest = load_engine_dir(self.engine_dir)
        if self.manifest.weights is not None and (atol is not None or rtol is not None):
            raise FastAVError(f"{engine_dir} has {self.manifest.weights.kind} weights, which are measured against "
                              "stated limits rather than a tolerance (docs/compare.md): drop --atol/--rtol")
        self.layout, self.config = self.manifest.layout, self.manifest.pruning
        check_request(self.manifest, self.layout, self.config, max_new_tokens)
        self.against, self.backend = against, backend or default_backend(self.manifest)
        self.threads, self.max_new_tokens = threads, max_new_tokens
        precision = self.manifest.precision
        self.atol = atol if atol is not None else tolerances.logits_atol(precision)
        self.rtol = rtol if rtol is not None else tolerances.DEFAULT_RTOL
        graph_atol, graph_rtol = tolerances.GRAPH_TOLERANCES[precision]
        # An explicit --atol/--rtol applies to the per-graph checks too.
        self.graph_atol = atol if atol is not None else graph_atol
        self.graph_rtol = rtol if rtol is not None else graph_rtol

    # ---- inputs -------------------------------------------------------------------
    def synthetic_inputs(self, iterations: int, batch: int, seed: int) -> list:
        dims, n = self.manifest.dims, self.layout.n_tokens
        # Every feed is held for the whole comparison, and both runners' logits with it.
        check_fits(iterations * batch * (n * dims.hidden_size + 2 * dims.vocab_size) * 4,
                   f"--inputs {iterations} x --batch {batch} synthetic inputs of {n} tokens",
                   "use fewer --inputs or a smaller --batch")
        return synthetic_feeds(self.manifest, self.layout, iterations, batch, seed)

    def load_inputs(self, path: Path) -> list:
        return load_feeds(path, self.layout, self.manifest.dims.hidden_size)

    # ---- runners ------------------------------------------------------------------
    def engine_runner(self) -> EngineRunner:
        return EngineRunner(self.engine_dir, backend=self.backend, threads=self.threads,
                            max_new_tokens=self.max_new_tokens, name=f"engine-{self.backend}")

    def reference_runner(self):
        name = f"reference-{self.against}"
        if self.against == "torch":
            return TorchRunner(self.engine_dir, max_new_tokens=self.max_new_tokens, name=name)
        return EngineRunner(self.engine_dir, backend=self.against, threads=self.threads,
                            max_new_tokens=self.max_new_tokens, name=name)

    def reference_graphs(self):
        """The reference as a GraphRunner: torch graph modules, or the other backend's graphs."""
        if self.against == "torch":
            from .reference_model import reference_model
            from .torch_graphs import TorchGraphs

            return TorchGraphs(reference_model(self.manifest), self.manifest)
        return self._graphs(self.against)

    def _graphs(self, backend: str):
        return open_graphs(self.manifest, backend, threads=self.threads)

    # ---- the comparison -----------------------------------------------------------
    def run(self, feeds: list, save_inputs: Path | None = None, graph_data: Path | None = None) -> dict:
        """Compare on `feeds` (a list of {inputs_embeds: [B, N, D] float32}); returns the report (docs/compare.md)."""
        from polygraphy.comparator import Comparator

        engine, reference = self.engine_runner(), self.reference_runner()
        results = _polygraphy(lambda: Comparator.run(
            [engine, reference], data_loader=feeds, save_inputs_path=None if save_inputs is None else str(save_inputs)))
        if self.manifest.weights is not None:
            return self._quantized_report(results[engine.name], results[reference.name])
        float_outputs = ["logits"]
        with np.errstate(divide="ignore", invalid="ignore"):  # relative error of equal zeros: 0 / 0
            accuracy = Comparator.compare_accuracy(
                results, compare_func=tolerances.compare_func(float_outputs, self.atol, self.rtol))
        iterations = _iteration_outputs(accuracy, (engine.name, reference.name))
        passed = bool(accuracy)
        report = {"engine": str(self.engine_dir), "backend": self.backend, "against": self.against,
                  "precision": self.manifest.precision, "passed": passed,
                  "tolerances": {"logits": {"atol": self.atol, "rtol": self.rtol}, "kept.*": "exact",
                                 "tokens": "exact",
                                 "graphs": {"atol": self.graph_atol, "rtol": self.graph_rtol}},
                  "iterations": iterations}
        failing = next((i for i, outputs in enumerate(iterations) if not all(o["passed"] for o in outputs.values())),
                       None)
        sources = self.unchecked_sources()
        if failing is not None or graph_data is not None or sources:
            report.update(self._per_graph(feeds[failing or 0], failing is not None, graph_data, sources))
        report["passed"] = passed and report.get("sources", {}).get("passed", True)
        report["summary"] = self._summary(report, failing)
        return report

    def _quantized_report(self, engine_results, reference_results) -> dict:
        """Quantized weights: the agreement figures against the stated limits (compare/quantized.py)."""
        from .quantized import QUANTIZED_LIMITS, judge, measure

        weights = self.manifest.weights
        limits = QUANTIZED_LIMITS[weights.kind]
        iterations = [measure(ours, theirs) for ours, theirs in zip(engine_results, reference_results, strict=True)]
        overall = judge(iterations, limits)
        summary = (f"{'PASSED' if overall['passed'] else 'FAILED'} | {self.engine_dir} ({self.backend}, "
                   f"{self.manifest.precision}, {weights.kind} weights) vs {self.against}: {len(iterations)} input(s)"
                   f" | kept Jaccard {overall['kept_jaccard']:.3f} (>= {limits.kept_jaccard}), tokens equal "
                   f"{overall['tokens_equal']}/{overall['tokens']} (>= {limits.token_agreement:.0%}), logits error "
                   f"{overall['logits_error']:.3g} (<= {limits.logits_error})")
        return {"engine": str(self.engine_dir), "backend": self.backend, "against": self.against,
                "precision": self.manifest.precision, "weights": weights.to_json(), "passed": overall["passed"],
                "limits": limits.to_json(), "overall": overall, "iterations": iterations, "summary": summary}

    def unchecked_sources(self) -> dict[str, str]:
        """graph -> ONNX file, for the graphs the pipeline comparison did not run: the ONNX files the
        engine is built from, unless every compared backend loads exactly those (then they ran)."""
        sources = source_graphs(self.manifest)
        backends = [self.backend] + ([self.against] if self.against != "torch" else [])
        if all(backend_files(self.manifest, backend) == sources for backend in backends):
            return {}
        return sources

    def _per_graph(self, feed: dict, replay: bool, graph_data: Path | None, sources: dict[str, str]) -> dict:
        embeds = torch.from_numpy(feed[INPUT])
        calls = record_calls(self.manifest, self.layout, self.config, self.reference_graphs(), embeds)
        section = {}
        if sources:
            section["sources"] = self._check_sources(calls, sources)
        if graph_data is not None:
            commands = save_graph_data(calls, graph_data, self.manifest, f"reference-{self.against}",
                                       self.graph_atol, self.graph_rtol)
            section["graph_data"] = {"directory": str(graph_data), "commands": commands}
            log.info(f"wrote the inputs and reference outputs of {len(calls)} graph calls to {graph_data}; "
                     f"check one with: {commands[0]}")
        if replay:
            checks = replay_calls(calls, self._graphs(self.backend), self.graph_atol, self.graph_rtol)
            first = first_divergence(checks)
            section["graphs"] = [check.to_json() for check in checks]
            section["first_divergence"] = None if first is None else {
                "graph": first.call.graph, "role": first.call.role, "step": first.call.step,
                "outputs": {c.name: c.max_abs_diff for c in first.failing()}}
        return section

    def _check_sources(self, calls, sources: dict[str, str]) -> dict:
        """Replay the reference's graph calls on the ONNX files themselves (see source_graphs.py)."""
        from ..contract.precision import ORT_CPU_PRECISIONS
        from .source_graphs import SourceGraphs

        files = sorted(set(sources.values()))
        if self.manifest.precision not in ORT_CPU_PRECISIONS:
            log.warning(f"the {self.manifest.precision} ONNX graphs were not checked: ONNX Runtime's CPU provider "
                        "cannot run them")
            return {"files": files, "checked": False, "passed": True,
                    "reason": f"ONNX Runtime cannot run {self.manifest.precision} graphs on the CPU"}
        graphs = SourceGraphs(self.manifest, sources)
        try:
            checks = replay_calls(calls, graphs, self.graph_atol, self.graph_rtol)
        finally:
            graphs.close()
        first = first_divergence(checks)
        section = {"files": files, "checked": True, "passed": first is None}
        if first is not None:
            section["first_divergence"] = {
                "graph": first.call.graph, "file": sources[first.call.graph], "role": first.call.role,
                "step": first.call.step, "outputs": {c.name: c.max_abs_diff for c in first.failing()}}
        return section

    def _summary(self, report: dict, failing: int | None) -> str:
        what = (f"{self.engine_dir} ({self.backend}, {self.manifest.precision}) vs {self.against}: "
                f"{len(report['iterations'])} input(s), logits atol {self.atol:g} rtol {self.rtol:g}, "
                "kept tokens and generated tokens exact")
        sources = report.get("sources", {})
        if failing is None and not sources.get("passed", True):
            first = sources["first_divergence"]
            diffs = ", ".join(f"{name} (max |diff| {value:.3g})" for name, value in first["outputs"].items())
            return (f"FAILED | {what} | the pipeline matches, but the ONNX graph it is built from differs: "
                    f"{first['file']} ({first['role']}, {first['step']}): {diffs}")
        if failing is None:
            return f"PASSED | {what}"
        outputs = [name for name, o in report["iterations"][failing].items() if not o["passed"]]
        line = f"FAILED | {what} | input {failing}: {', '.join(outputs)} differ"
        first = report.get("first_divergence")
        if first is not None:
            diffs = ", ".join(f"{name} (max |diff| {value:.3g})" for name, value in first["outputs"].items())
            return f"{line} | first diverging graph: {first['graph']} ({first['role']}, {first['step']}): {diffs}"
        return (f"{line} | every graph matches on the reference's inputs (graph atol {self.graph_atol:g}, "
                f"rtol {self.graph_rtol:g}): the difference accumulates across graphs")


def _iteration_outputs(accuracy, pair) -> list[dict]:
    """Per iteration: output -> {passed, max_abs_diff} from Polygraphy's AccuracyResults."""
    iterations = []
    for result in accuracy:  # one AccuracyResult per compare function (we pass one)
        for index, outputs in enumerate(result[pair]):
            while len(iterations) <= index:
                iterations.append({})
            for name, compared in outputs.items():
                diff = getattr(compared, "max_absdiff", None)
                iterations[index][name] = {"passed": bool(compared),
                                           "max_abs_diff": None if diff is None else float(diff)}
    return iterations


def _polygraphy(call):
    """Polygraphy reports errors (bad input shapes, a runner that failed) as PolygraphyException: one line."""
    from polygraphy.exception import PolygraphyException

    try:
        return call()
    except PolygraphyException as exc:
        raise FastAVError(f"Polygraphy: {str(exc).strip().splitlines()[0]}") from None
