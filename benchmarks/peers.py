"""fastav-export against the dense model run by the tools users already have, in one run.

    pip install -e ".[bench]"                       # onnxruntime-genai, for its model builder
    python benchmarks/peers.py                      # builds what it needs into engines/peers (once)
    python benchmarks/peers.py --rounds 7 --json peers.json

Model: a mid-size random-weight Qwen2 (hidden 512, 8 layers, FFN 1536, 8 query / 2 KV
heads, vocab 1024) saved with `save_pretrained`; input: the full 2,892-token VideoLLaMA2
layout as `inputs_embeds` (seeded synthetic embeddings, the same file for every
variant); batch 1; fp32 on the CPU. Variants, each in its own worker process (so each
has its own peak RSS), all using every core:

  fastav dense        fastav-export's ONNX Runtime engine (positional build) with pruning off
  fastav positional   the same engine with the paper-like positional preset
  fastav rollout      an engine built with rollout, rollout at run time (same budget)
  transformers        Qwen2ForCausalLM.from_pretrained(attn_implementation="sdpa"), dense,
                      prefill with a DynamicCache, then one token per step
  onnxruntime-genai   the graph onnxruntime-genai's model builder writes for the checkpoint
                      (fp32 CPU, exclude_embeds=true prune_lm_head=true: GroupQueryAttention,
                      packed QKV, rotary inside), dense, run by ONNX Runtime as genai runs it:
                      one session, past and present bound to one KV buffer per layer. (genai's
                      own Generator cannot take inputs_embeds for a plain qwen2 model.)
  fastav int4 ...     the dense, positional and rollout variants of engines built with
                      `--weights int4` (MatMulNBits, blocks of 32, int8 activations)
  onnxruntime-genai int4  the builder's `-p int4 -e cpu` graph (its CPU defaults: blocks of 32,
                      accuracy level 4), run like the fp32 one

Each round is one prefill and --decode-steps greedy decode steps per variant; the
variants take turns (in a rotating order) and a short pause separates them, so no
variant's idle threads spin while another is timed. Prints prefill ms, decode ms/token
and peak RSS (median [min-max] over the rounds; RSS per round, plus the peak while
loading), the greedy tokens' agreement, and whether each speed target is met. Then what the int4
targets are made of: each variant's peak RSS above its process after imports (torch and the
runtime, before any weights), and the int4 pruned engines teacher-forced along the int4 dense
engine's tokens (same argmax per step, and the logit gaps where they differ).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from fastav_export.cli.arg_types import non_negative_int, positive_int
from fastav_export.runtime.bench import Round, Series, format_stats
from fastav_export.testing.models import MID_SIZE
from mid_size import build_mid_engine, mid_size_layout, mid_size_model

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("fastav dense", "fastav positional", "fastav rollout", "transformers", "onnxruntime-genai",
            "fastav int4 dense", "fastav int4 positional", "fastav int4 rollout", "onnxruntime-genai int4")
DENSE_PEERS = ("transformers", "onnxruntime-genai")  # fp32
INT4_ENGINES = ("fastav int4 dense", "fastav int4 positional", "fastav int4 rollout")


# ---- setup (parent) -------------------------------------------------------------------

def prepare(work: Path, decode_steps: int, log) -> None:
    """The checkpoint, the inputs, the fastav engines and the genai graph, each built once."""
    import torch

    from fastav_export.contract.synthetic_inputs import synthetic_embeds

    work.mkdir(parents=True, exist_ok=True)
    checkpoint = work / "checkpoint"
    model = mid_size_model()
    if not (checkpoint / "config.json").is_file():
        log(f"writing the mid-size checkpoint to {checkpoint}")
        model.save_pretrained(checkpoint)
        _write_tokenizer(checkpoint)  # genai's builder reads one; its ids are never used here
    layout = mid_size_layout()
    embeds_path = work / "embeds.npy"
    if not embeds_path.is_file():
        with torch.no_grad():
            np.save(embeds_path, synthetic_embeds(model.model.embed_tokens.weight, layout, 1, seed=0).numpy())
    for policy in ("positional", "rollout"):
        for weights in (None, "int4"):
            build_mid_engine(model, layout, policy, _engine_dir(work, policy, weights), decode_steps + 1, log,
                             weights=weights)
    for precision in ("fp32", "int4"):
        genai = _genai_dir(work, precision)
        if (genai / "model.onnx").is_file():
            continue
        log(f"building the onnxruntime-genai {precision} graph into {genai}")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(checkpoint),
                        "-o", str(genai), "-p", precision, "-e", "cpu", "-c", str(work / "genai-cache"),
                        "--extra_options", "exclude_embeds=true", "prune_lm_head=true"],
                       check=True, stdout=subprocess.DEVNULL)
        log(f"  built in {time.perf_counter() - started:.1f} s")


def _engine_dir(work: Path, policy: str, weights: str | None) -> Path:
    return work / f"fastav-{policy}{f'-{weights}' if weights else ''}"


def _genai_dir(work: Path, precision: str) -> Path:
    return work / ("genai" if precision == "fp32" else f"genai-{precision}")


def _write_tokenizer(directory: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<|endoftext|>": 0, **{f"t{i}": i for i in range(1, MID_SIZE.vocab_size)}}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    special = "<|endoftext|>"
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=special, pad_token=special,
                            bos_token=special).save_pretrained(directory)


# ---- workers: one variant each, driven over stdin/stdout -------------------------------

class _GenaiGraph:
    """The onnxruntime-genai graph as genai runs it: one session, one shared KV buffer per layer."""

    def __init__(self, directory: Path, table: np.ndarray, threads: int):
        import onnxruntime as ort

        config = json.loads((directory / "genai_config.json").read_text())["model"]["decoder"]
        self.layers, self.kv_heads = config["num_hidden_layers"], config["num_key_value_heads"]
        self.head_size, self.table = config["head_size"], table
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(directory / config["filename"]), options,
                                            providers=["CPUExecutionProvider"])
        self.device = "cpu"

    def _run(self, embeds: np.ndarray):
        import torch

        binding = self.session.io_binding()
        total = self.length + embeds.shape[1]
        binding.bind_cpu_input("inputs_embeds", np.ascontiguousarray(embeds, np.float32))
        binding.bind_cpu_input("attention_mask", np.ones((embeds.shape[0], total), np.int64))
        for layer, buffers in enumerate(self.buffers):
            for kind, buffer in zip(("key", "value"), buffers):
                binding.bind_cpu_input(f"past_key_values.{layer}.{kind}", buffer)
                binding.bind_output(f"present.{layer}.{kind}", "cpu", 0, np.float32, list(buffer.shape),
                                    buffer.ctypes.data)
        logits = np.empty((embeds.shape[0], 1, self.table.shape[0]), np.float32)
        binding.bind_output("logits", "cpu", 0, np.float32, list(logits.shape), logits.ctypes.data)
        self.session.run_with_iobinding(binding)
        self.length = total
        return torch.from_numpy(logits[:, -1])

    def prefill(self, inputs_embeds, max_new_tokens: int):
        from fastav_export.contract.backend_protocol import PrefillOutput

        batch, n, _ = inputs_embeds.shape
        shape = (batch, self.kv_heads, n + max_new_tokens, self.head_size)
        self.buffers = [(np.zeros(shape, np.float32), np.zeros(shape, np.float32)) for _ in range(self.layers)]
        self.length = 0
        return PrefillOutput(logits=self._run(inputs_embeds.numpy()), kept={})

    def decode(self, ids):
        return self._run(self.table[ids.numpy()][:, None])


class _Transformers:
    """Qwen2ForCausalLM with SDPA and a DynamicCache, as users run it."""

    def __init__(self, checkpoint: Path):
        import torch
        from transformers import Qwen2ForCausalLM

        torch.set_grad_enabled(False)
        self.model = Qwen2ForCausalLM.from_pretrained(checkpoint, attn_implementation="sdpa", dtype=torch.float32)
        self.model.eval()
        self.device = "cpu"

    def prefill(self, inputs_embeds, max_new_tokens: int):
        from transformers import DynamicCache

        from fastav_export.contract.backend_protocol import PrefillOutput

        self.cache = DynamicCache()
        out = self.model(inputs_embeds=inputs_embeds, past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        return PrefillOutput(logits=out.logits[:, -1].float(), kept={})

    def decode(self, ids):
        out = self.model(input_ids=ids[:, None], past_key_values=self.cache, use_cache=True)
        return out.logits[:, -1].float()


def _open_variant(name: str, work: Path, threads: int):
    import torch

    torch.set_num_threads(threads)
    if name == "transformers":
        return _Transformers(work / "checkpoint")
    weights = "int4" if "int4" in name.split() else None
    if name.startswith("onnxruntime-genai"):
        from safetensors.numpy import load_file

        table = load_file(work / "checkpoint" / "model.safetensors")["model.embed_tokens.weight"]
        return _GenaiGraph(_genai_dir(work, weights or "fp32"), table, threads)
    from fastav_export.contract.pruning_config import PruningConfig
    from fastav_export.engine.manifest import load_engine_dir
    from fastav_export.runtime.backends import open_engine_backend

    policy = "rollout" if name.endswith("rollout") else "positional"
    manifest = load_engine_dir(_engine_dir(work, policy, weights))
    config = manifest.pruning
    if name.endswith("dense"):
        config = replace(PruningConfig.dense(), global_layer=manifest.global_layer)
    return open_engine_backend(manifest, manifest.layout, config, "ort", threads=threads)


def _import_variant(name: str) -> None:
    """Import what the variant runs on, so that the RSS read next is the process before any weights."""
    if name == "transformers":
        import transformers.models.qwen2.modeling_qwen2  # noqa: F401
    elif name.startswith("onnxruntime-genai"):
        import onnxruntime  # noqa: F401
    else:
        import fastav_export.engine.manifest  # noqa: F401
        import fastav_export.runtime.backends  # noqa: F401


def forced_steps(backend, embeds, tokens: list[int]) -> list[dict]:
    """Teacher forcing: the prefill, then each decode step fed `tokens[i]` (another run's greedy
    tokens) instead of this run's own choice. Per step: this run's argmax, its top-2 logit gap, and
    how far the forced run's token trails that argmax (0 where they agree).

    Unlike free-running agreement, one near-tie here costs one step, not every step after it."""
    import torch

    steps = []
    logits = backend.prefill(embeds, max_new_tokens=len(tokens)).logits[0]
    for index, wanted in enumerate(tokens):
        top2 = torch.topk(logits.float(), 2).values
        steps.append({"argmax": int(logits.argmax()), "gap": float(top2[0] - top2[1]),
                      "behind": float(logits.max() - logits[wanted])})
        if index + 1 < len(tokens):
            logits = backend.decode(torch.tensor([wanted]))[0]
    return steps


def worker(name: str, work: Path, threads: int, decode_steps: int) -> None:
    """Load the variant, then answer each line on stdin with one JSON line on stdout: `round` (a
    timed round) or `force [tokens]` (`forced_steps` along those tokens)."""
    import torch

    from fastav_export.runtime.bench import current_rss_mb, peak_rss_mb, run_round

    embeds = torch.from_numpy(np.load(work / "embeds.npy"))
    _import_variant(name)
    imported = current_rss_mb()
    backend = _open_variant(name, work, threads)
    print(json.dumps({"loaded": True, "load_peak_rss_mb": peak_rss_mb(), "imported_rss_mb": imported}), flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "round":
            print(json.dumps(run_round(backend, embeds, decode_steps).__dict__), flush=True)
        elif command == "force":
            print(json.dumps(forced_steps(backend, embeds, json.loads(argument))), flush=True)
        else:
            break


# ---- the run (parent) -----------------------------------------------------------------

class _Worker:
    def __init__(self, name: str, args):
        command = [sys.executable, __file__, "--worker", name, "--work", str(args.work),
                   "--threads", str(args.threads), "--decode-steps", str(args.decode_steps)]
        self.name = name
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        loaded = self._read()
        self.load_peak, self.imported = loaded["load_peak_rss_mb"], loaded["imported_rss_mb"]

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"error: the {self.name} worker died (see its output above)")
        return json.loads(line)

    def _ask(self, line: str):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self._read()

    def round(self) -> dict:
        return self._ask("round")

    def force(self, tokens: list[int]) -> list[dict]:
        return self._ask(f"force {json.dumps(tokens)}")

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def _versions() -> str:
    from importlib import metadata

    names = ("fastav-export", "onnxruntime", "onnxruntime-genai", "torch", "transformers")
    return ", ".join(f"{name} {metadata.version(name)}" for name in names)


def _targets(median: dict, peak: dict, tokens: dict, flops_early: float) -> list[tuple[str, float, str, float, bool]]:
    """(description, measured, "<=" or ">=", limit, met) for each target."""
    fastest = min(median[p]["prefill_ms"] for p in DENSE_PEERS)
    fastest_decode = min(median[p]["decode_ms_per_token"] for p in DENSE_PEERS)
    genai4 = median["onnxruntime-genai int4"]

    def prefill(variant):
        return median[variant]["prefill_ms"]

    def decode(variant):
        return median[variant]["decode_ms_per_token"]

    rows = [("fastav dense prefill / fastest dense peer's prefill (fp32)", prefill("fastav dense") / fastest, 1.00),
            ("positional pruned prefill / fastest dense peer's prefill", prefill("fastav positional") / fastest, 0.58),
            ("rollout pruned prefill / fastest dense peer's prefill", prefill("fastav rollout") / fastest, 0.72)]
    rows += [(f"{v} decode ms/token / fastest dense peer's", decode(v) / fastest_decode, 0.95)
             for v in ("fastav positional", "fastav rollout")]
    rows.append(("int4 positional prefill / onnxruntime-genai int4 prefill",
                 prefill("fastav int4 positional") / genai4["prefill_ms"], 0.60))
    rows += [(f"{v} decode ms/token / onnxruntime-genai int4's", decode(v) / genai4["decode_ms_per_token"], 0.95)
             for v in ("fastav int4 positional", "fastav int4 rollout")]
    rows += [(f"{v}: peak RSS / the fp32 engine's", peak[v] / peak[v.replace(" int4", "")], 0.5)
             for v in ("fastav int4 positional", "fastav int4 rollout")]
    rows += [(f"{v}: peak RSS of the process, GB (torch imported)", peak[v] / 1024, 1.0)
             for v in ("fastav positional", "fastav rollout")]
    rows.append(("`fastav-export flops --model videollama2`: exact MACs with early drop", flops_early, 0.53))
    targets = [(text, value, "<=", limit, value <= limit) for text, value, limit in rows]
    dense4 = tokens["fastav int4 dense"]
    for variant in ("fastav int4 positional", "fastav int4 rollout"):
        equal = sum(a == b for a, b in zip(tokens[variant], dense4, strict=True))
        needed = len(dense4) - 3
        targets.append((f"{variant}: greedy tokens equal to the int4 dense engine's, of {len(dense4)}", equal, ">=",
                        needed, equal >= needed))
    return targets


def _print_diagnostics(workers: dict, peak: dict, forced: dict) -> None:
    """What the int4 targets' figures are made of: memory above the imported process, and agreement
    step by step when both runs are fed the same tokens."""
    print("peak RSS above the process after its imports (weights, KV buffers, activations), MiB:")
    for name in ("fastav positional", "fastav rollout"):
        int4 = f"fastav int4 {name.split()[1]}"
        above = {v: peak[v] - workers[v].imported for v in (name, int4)}
        print(f"  {name.split()[1]:<10} fp32 {above[name]:.0f}, int4 {above[int4]:.0f} "
              f"(ratio {above[int4] / above[name]:.3f}); imported process {workers[name].imported:.0f}")
    dense = forced["fastav int4 dense"]
    print(f"teacher-forced along the int4 dense engine's {len(dense)} greedy tokens (one near-tie costs one step):")
    for name in INT4_ENGINES[1:]:
        differ = [i for i, (a, b) in enumerate(zip(forced[name], dense)) if a["argmax"] != b["argmax"]]
        detail = "; ".join(f"step {i}: dense top-2 gap {dense[i]['gap']:.4f}, this run picks its token by "
                           f"{forced[name][i]['behind']:.4f}" for i in differ[:3])
        print(f"  {name}: same argmax at {len(dense) - len(differ)} of {len(dense)} steps"
              + (f" ({detail})" if detail else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "engines" / "peers",
                        help="checkpoint, engines and genai graph, built on first use (default engines/peers)")
    parser.add_argument("--rounds", type=positive_int, default=5, help="timed rounds per variant (default 5)")
    parser.add_argument("--warmup", type=non_negative_int, default=1,
                        help="untimed rounds per variant first (default 1)")
    parser.add_argument("--decode-steps", type=positive_int, default=32,
                        help="greedy decode steps per round (default 32)")
    parser.add_argument("--threads", type=positive_int, default=os.cpu_count(),
                        help="threads per variant (default: all cores)")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between variants (default 0.3)")
    parser.add_argument("--json", type=Path, help="also write every round's figures as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.work, args.threads, args.decode_steps)

    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    prepare(args.work, args.decode_steps, log)
    from fastav_export.contract.flops import flops_report
    from fastav_export.contract.schedule import make_schedule
    from fastav_export.models import get_model_spec

    log("starting one worker per variant")
    workers = {name: _Worker(name, args) for name in VARIANTS}
    rounds = {name: Series() for name in VARIANTS}
    try:
        for index in range(args.warmup + args.rounds):
            order = VARIANTS[index % len(VARIANTS):] + VARIANTS[:index % len(VARIANTS)]
            for name in order:
                time.sleep(args.pause)  # the previous variant's threads stop spinning
                result = workers[name].round()
                if index >= args.warmup:
                    rounds[name].rounds.append(Round(**result))
            log(f"round {index + 1}/{args.warmup + args.rounds} done"
                + (" (warm-up)" if index < args.warmup else ""))
        dense4 = rounds["fastav int4 dense"].rounds[-1].tokens[0]
        forced = {name: workers[name].force(dense4) for name in INT4_ENGINES}
    finally:
        for w in workers.values():
            w.close()

    layout = mid_size_layout()
    print(f"model: mid-size random Qwen2 (hidden 512, 8 layers, FFN 1536, 8/2 heads), fp32, CPU, "
          f"{args.threads} threads per variant; input: {layout.describe()}, batch 1")
    print(f"rounds: {args.warmup} warm-up + {args.rounds} timed, {args.decode_steps} decode steps each, "
          "variants interleaved")
    print(f"versions: {_versions()}")
    print(f"{'variant':<23} {'prefill ms':>22} {'decode ms/token':>22} {'peak RSS MiB (round)':>22} "
          f"{'loading':>8}")
    median, peak = {}, {}
    for name in VARIANTS:
        series = rounds[name]
        median[name] = {key: series.stats(key)[0] for key in ("prefill_ms", "decode_ms_per_token")}
        peak[name] = max(workers[name].load_peak, *series.values("peak_rss_mb"))
        print(f"{name:<23} {format_stats(series, 'prefill_ms', 1):>22} "
              f"{format_stats(series, 'decode_ms_per_token', 2):>22} "
              f"{format_stats(series, 'peak_rss_mb', 0):>22} {workers[name].load_peak:>8.0f}")
    tokens = {name: rounds[name].rounds[-1].tokens[0] for name in VARIANTS}
    same = [name for name in VARIANTS if tokens[name] == tokens["transformers"]]
    print(f"greedy tokens equal to transformers' ({len(tokens['transformers'])} tokens): {', '.join(same)}")
    same = [name for name in VARIANTS if "int4" in name and tokens[name] == tokens["fastav int4 dense"]]
    print(f"greedy tokens equal to the fastav int4 dense engine's: {', '.join(same)}")

    _print_diagnostics(workers, peak, forced)

    spec = get_model_spec("videollama2")
    report_7b = flops_report(spec.dims, make_schedule(spec.default_layout(), spec.preset, spec.dims.num_layers))
    mid_report = flops_report(MID_SIZE, make_schedule(layout, spec.preset, MID_SIZE.num_layers))
    print(f"FLOPs ratio of the positional schedule, this model: {mid_report.describe()}")
    print(f"FLOPs ratio, VideoLLaMA2 7B dims: {report_7b.describe()}")
    targets = _targets(median, peak, tokens, report_7b.exact_ratio)
    print("targets:")
    for text, value, relation, limit, met in targets:
        shown = f"{value}" if isinstance(value, int) else f"{value:.3f}"
        print(f"  {'met' if met else 'NOT MET':>7}  {text}: {shown} ({relation} {limit})")
    print(f"{sum(met for *_, met in targets)} of {len(targets)} targets met")
    if args.json:
        report = {"rounds": {name: [vars(r) for r in series.rounds] for name, series in rounds.items()},
                  "load_peak_rss_mb": {name: w.load_peak for name, w in workers.items()},
                  "targets": [dict(zip(("target", "value", "relation", "limit", "met"), t)) for t in targets]}
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
