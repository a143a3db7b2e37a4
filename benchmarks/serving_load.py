"""The served model under load: pruned against dense, with 1 to 64 concurrent streaming clients.

    python benchmarks/serving_load.py                         # builds the engine into engines/serving-load once
    python benchmarks/serving_load.py --concurrency 1,16 --json load.json
    python benchmarks/serving_load.py --concurrency 1,4 --requests-per-level 4 --new-tokens 8   # a quick check

Model: the mid-size random-weight Qwen2 of the other CPU figures (benchmarks/mid_size.py:
hidden 512, 8 layers, FFN 1536, 8 query / 2 KV heads) with the VideoLLaMA2 layout rules, one
fp32 ONNX Runtime engine (positional preset) for prompts of up to 2,892 tokens. The script
starts a real tritonserver on 127.0.0.1 (free ports; stopped at the end, also on Ctrl-C)
serving it with one model instance, which batches requests of different prompts together
(continuous batching, admission bounded by --kv-budget-mib).

Requests: decoder-only (input_ids with placeholders, mm_embeds, the layout as JSON) over a mix
of VideoLLaMA2-like layouts of different lengths (PROMPT_MIX: fewer or more frames, shorter
audio, longer questions), two seeded prompts per layout, each generating --new-tokens tokens
(no stop id: exactly that many). Variants: `pruned` (the engine's positional preset) and
`dense` (the same engine, pruning off per request: the `pruning` input set to
PruningConfig.dense()). For each concurrency level C and variant: a few untimed requests
(one per layout, one token each) open the pipelines, then C client threads, closed loop, each
over its own gRPC stream to the decoupled model, send their next request as soon as the
previous one ended, until --requests-per-level requests were sent; request i uses prompt
i mod 8, so every level sees the same mix.

Measured per variant and level: requests/s and generated tokens/s (completed requests over
the level's wall time), TTFT (send to the first token's response) and end-to-end latency
(send to the final response) p50/p99, the largest decode batch any request shared
(`batch_size` output), the peak RSS of the tritonserver process tree (server plus its python
backend stub, sampled from /proc every 0.25 s while the level runs; the one-shot model the
repository also holds is unloaded first), and failed (error, timeout) and mismatched requests:
every answer's tokens and kept-token counts must equal what `ServedEngine.generate` gives for
that prompt and variant alone, in this process (the code the served model runs, one request
at a time). Also printed: the concurrency the KV budget admits per variant (see `KvFootprint`).
"""

from __future__ import annotations

import argparse
import json
import math
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fastav_export.cli.arg_types import positive_float, positive_int, thread_count
from mid_size import build_mid_engine, mid_size_layout, mid_size_model
from process_rss import PeakRss

ROOT = Path(__file__).resolve().parent.parent
MODEL = "load"  # the served model's name in the rendered repository
VARIANTS = ("pruned", "dense")
DENSE_PRUNING = {"global_policy": "none", "fine_ratio": 0.0}  # PruningConfig.dense() as a request's `pruning`
DEFAULT_CONCURRENCY = (1, 4, 16, 64)
DEFAULT_NEW_TOKENS = 64
# videollama2_layout's arguments: the full 16-frame, 30 s clip (2,892 tokens, the engine's limit) and
# shorter ones (fewer frames, 15 s of audio, longer or shorter questions).
PROMPT_MIX = (
    {"frames": 16},                                             # 2,892 tokens
    {"frames": 8},                                              # 2,216
    {"frames": 16, "audio_tokens": 748, "suffix_tokens": 60},   # 2,174
    {"frames": 4, "audio_tokens": 748, "suffix_tokens": 20},    # 1,120
)
SEEDS_PER_LAYOUT = 2
RESPONSE_TIMEOUT_S = 300.0  # one response; a C=64 dense level queues about a minute of prefills
MIB = 1 << 20


# ---- arguments ------------------------------------------------------------------------

def concurrency_levels(text: str) -> tuple[int, ...]:
    """`--concurrency 1,4,16`: distinct client counts >= 1, in the order given."""
    levels = []
    for item in text.split(","):
        try:
            level = positive_int(item.strip())
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc} (give client counts like 1,4,16,64)") from None
        if level in levels:
            raise argparse.ArgumentTypeError(f"{text!r} names {level} twice: give each client count once")
        levels.append(level)
    return tuple(levels)


def default_requests(concurrency: int) -> int:
    """Requests per level unless --requests-per-level says: every client sends at least two, and at
    least 8 in all (enough for a p50, and the whole default run stays within minutes on 2 cores)."""
    return max(8, 2 * concurrency)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=concurrency_levels, default=DEFAULT_CONCURRENCY,
                        help="concurrent clients per level, comma-separated (default 1,4,16,64)")
    parser.add_argument("--requests-per-level", type=positive_int,
                        help="requests per variant and level (default max(8, 2 x concurrency))")
    parser.add_argument("--new-tokens", type=positive_int, default=DEFAULT_NEW_TOKENS,
                        help=f"tokens each request generates (default {DEFAULT_NEW_TOKENS})")
    parser.add_argument("--kv-budget-mib", type=positive_float, default=1024.0,
                        help="the served model's KV memory budget in MiB (default 1024, the server's default)")
    parser.add_argument("--threads", type=thread_count, default=0,
                        help="ONNX Runtime threads of the served model (default 0: every core)")
    parser.add_argument("--json", type=Path, help="also write every figure (and each request's latencies) as JSON")
    parser.add_argument("--work", type=Path, default=ROOT / "engines" / "serving-load",
                        help="engine, model repository and server log, kept between runs (default "
                             "engines/serving-load)")
    return parser


# ---- figures and targets ----------------------------------------------------------------

@dataclass
class LevelFigures:
    """One variant at one concurrency level. Latencies in seconds, one entry per completed request."""

    variant: str
    concurrency: int
    requests: int
    seconds: float = 0.0
    tokens: int = 0
    ttft: list[float] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)
    queue_seconds: list[float] = field(default_factory=list)
    failed: int = 0
    mismatched: int = 0
    max_batch: int = 0
    peak_rss_mib: float = 0.0
    errors: list[str] = field(default_factory=list)  # the first few failures' messages

    @property
    def completed(self) -> int:
        return len(self.end_to_end)

    @property
    def requests_per_s(self) -> float:
        return self.completed / self.seconds if self.seconds > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, name: str, q: float) -> float:
        """The q-th percentile of the latencies `name` (numpy's linear interpolation); NaN when none completed."""
        values = getattr(self, name)
        return float(np.percentile(values, q)) if values else math.nan

    def summary(self) -> dict:
        return {**asdict(self), "requests_per_s": self.requests_per_s, "tokens_per_s": self.tokens_per_s,
                **{f"{name}_p{q}": self.percentile(name, q) for name in ("ttft", "end_to_end") for q in (50, 99)}}


@dataclass(frozen=True)
class Target:
    """A target of one run: `value` against `limit` (at most, or at least); value None when the run
    did not measure it (a concurrency level it needs was not run)."""

    text: str
    value: float | None
    limit: float
    at_most: bool

    @property
    def met(self) -> bool:
        if self.value is None or math.isnan(self.value):
            return False
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def line(self) -> str:
        bound = f"{'<=' if self.at_most else '>='} {self.limit:g}"
        value = "not measured (that concurrency level was not run)" if self.value is None else f"{self.value:.3f}"
        return f"  {'met' if self.met else 'NOT MET':>7}  {self.text}: {value} ({bound})"


def load_targets(figures: dict[tuple[str, int], LevelFigures]) -> list[Target]:
    """The run's targets from its levels, keyed (variant, concurrency)."""
    def ratio(a, b, of):
        if a not in figures or b not in figures:
            return None
        denominator = of(figures[b])
        return of(figures[a]) / denominator if denominator > 0 else math.nan

    rate = lambda level: level.requests_per_s  # noqa: E731
    p16 = figures.get(("pruned", 16))
    bad = sum(level.failed + level.mismatched for level in figures.values())
    return [
        Target("pruned requests/s / dense requests/s at concurrency 16", ratio(("pruned", 16), ("dense", 16), rate),
               1.5, at_most=False),
        Target("pruned requests/s at concurrency 16 / at concurrency 1 (batching works)",
               ratio(("pruned", 16), ("pruned", 1), rate), 1.3, at_most=False),
        Target("failed or mismatched requests over every level", float(bad), 0, at_most=True),
        Target("pruned end-to-end p99 / p50 at concurrency 16",
               None if p16 is None else p16.percentile("end_to_end", 99) / p16.percentile("end_to_end", 50),
               3.0, at_most=True),
    ]


# ---- prompts and what they need ------------------------------------------------------------

@dataclass(frozen=True)
class LoadPrompt:
    """One distinct prompt of the mix: its layout (as the `layout` input's JSON) and its tensors."""

    name: str
    layout: object  # TokenLayout
    input_ids: np.ndarray
    mm_embeds: np.ndarray


def prompt_mix(dims, placeholder_id: int) -> list[LoadPrompt]:
    """SEEDS_PER_LAYOUT seeded prompts for each layout of PROMPT_MIX: random text ids, the placeholder
    at every video/audio position, and encoder-like rows (the scale of the model's embeddings)."""
    from fastav_export.contract.layout import KIND_CODES
    from fastav_export.models.families.videollama2.spec import videollama2_layout

    prompts = []
    for sizes in PROMPT_MIX:
        layout = videollama2_layout(**sizes)
        multimodal = layout.kind_codes() != KIND_CODES["text"]
        for seed in range(SEEDS_PER_LAYOUT):
            rng = np.random.default_rng([layout.n_tokens, seed])
            ids = np.where(multimodal, placeholder_id, rng.integers(0, dims.vocab_size, multimodal.size))
            mm = 0.02 * rng.standard_normal((int(multimodal.sum()), dims.hidden_size))
            prompts.append(LoadPrompt(f"{layout.n_tokens} tokens, seed {seed}", layout, ids.astype(np.int64),
                                      mm.astype(np.float32)))
    return prompts


def request_arrays(prompt: LoadPrompt, variant: str, new_tokens: int) -> dict[str, np.ndarray]:
    """The request's input tensors by name, the ones `fastav_export.serving.client.request_inputs` builds
    (JSON inputs as `json_bytes`): the same arrays go over gRPC (`infer_input` each) and into the
    in-process `ServedEngine.parse`, so both sides answer exactly the same request."""
    from fastav_export.serving.client import json_bytes

    arrays = {"input_ids": prompt.input_ids, "mm_embeds": prompt.mm_embeds,
              "layout": json_bytes(prompt.layout.to_json()),
              "max_new_tokens": np.array([new_tokens], np.int32)}
    if variant == "dense":
        arrays["pruning"] = json_bytes(DENSE_PRUNING)
    return arrays


@dataclass(frozen=True)
class Expected:
    """A prompt's single-request answer for one variant: its tokens and each layer's kept-token count."""

    tokens: list[int]
    kept_tokens: list[int]


@dataclass(frozen=True)
class KvFootprint:
    """A request's KV cache as the batcher counts it (`ContinuousBatcher.kv_bytes`): per layer, the
    tokens the layer keeps plus the generation budget, x 2 (keys, values) x KV heads x head size x
    4 bytes (fp32). The batch stores every row at the longest row's length per layer, so a mix admits
    between `admitted_padded` (every row as long as the longest prompt) and `admitted_mean`
    (the budget over the mix's mean size, the figure asked for)."""

    mean_bytes: float
    longest_bytes: float
    admitted_mean: int
    admitted_padded: int


def kv_footprint(requests, dims, budget_mib: float) -> KvFootprint:
    """requests: parsed `ServingRequest`s of one variant, one per prompt of the mix."""
    from fastav_export.contract.kv_buffers import kv_entry_bytes, request_kv_capacities
    from fastav_export.contract.schedule import make_schedule

    entry = kv_entry_bytes(dims.num_kv_heads, dims.head_size, np.dtype(np.float32).itemsize)
    per_layer = [request_kv_capacities(make_schedule(r.layout, r.config, dims.num_layers).tokens, r.max_new_tokens)
                 for r in requests]
    sizes = [sum(layers) * entry for layers in per_layer]
    longest = sum(max(column) for column in zip(*per_layer)) * entry
    budget = budget_mib * MIB
    mean = float(np.mean(sizes))
    return KvFootprint(mean, float(longest), int(budget // mean), int(budget // longest))


def expected_answers(manifest, prompts, new_tokens: int, threads: int):
    """{(prompt index, variant): Expected} from `ServedEngine.generate`, one request at a time, and
    {variant: the parsed requests} (for the KV arithmetic)."""
    from fastav_export.serving.engine import ServedEngine

    expected, parsed = {}, {variant: [] for variant in VARIANTS}
    with ServedEngine(manifest, default_max_new_tokens=new_tokens, threads=threads) as engine:
        for index, prompt in enumerate(prompts):
            for variant in VARIANTS:
                request = engine.parse(request_arrays(prompt, variant, new_tokens))
                tokens, summary = engine.generate(request)
                expected[index, variant] = Expected(tokens, summary.kept_tokens.tolist())
                parsed[variant].append(request)
    return expected, parsed


# ---- clients --------------------------------------------------------------------------------

@dataclass
class Answer:
    tokens: list[int]
    kept_tokens: list[int]
    batch_size: int
    queue_seconds: float
    ttft: float
    end_to_end: float


class StreamClient:
    """One client: its own gRPC stream to the decoupled model, one request in flight at a time."""

    def __init__(self, url: str):
        import tritonclient.grpc as grpcclient

        self._module, self._url = grpcclient, url
        self._open()

    def _open(self) -> None:
        self._responses: queue.Queue = queue.Queue()
        self._client = self._module.InferenceServerClient(self._url)
        # Arrival times are taken in the callback: TTFT excludes the wait until this client's thread reads them.
        self._client.start_stream(callback=lambda result, error: self._responses.put(
            (time.perf_counter(), result, error)))

    def ask(self, arrays: dict[str, np.ndarray]) -> Answer:
        """Send one request and read its responses; raises the request's error, or TimeoutError."""
        from fastav_export.serving.client import infer_input

        inputs = [infer_input(self._module, name, array) for name, array in arrays.items()]
        sent = time.perf_counter()
        self._client.async_stream_infer(MODEL, inputs)
        tokens, first = [], None
        while True:
            try:
                arrived, result, error = self._responses.get(timeout=RESPONSE_TIMEOUT_S)
            except queue.Empty:
                self.reopen()  # a late answer must not be read as the next request's
                raise TimeoutError(f"no response for {RESPONSE_TIMEOUT_S:.0f} s") from None
            if error is not None:
                raise error
            names = {output.name for output in result.get_response().outputs}
            if "kept_tokens" in names:  # the final response: the summary
                return Answer(tokens, result.as_numpy("kept_tokens").tolist(), int(result.as_numpy("batch_size")[0]),
                              float(result.as_numpy("queue_seconds")[0]),
                              (first if first is not None else arrived) - sent, arrived - sent)
            tokens.append(int(result.as_numpy("token_ids")[0]))
            first = arrived if first is None else first

    def reopen(self) -> None:
        self.close()
        self._open()

    def close(self) -> None:
        try:
            self._client.stop_stream(cancel_requests=True)
            self._client.close()
        except Exception:  # noqa: BLE001  closing a client of a server that went away
            pass


def run_level(server, variant: str, concurrency: int, requests: int, prompts, expected, new_tokens: int,
              log) -> LevelFigures:
    """C closed-loop clients send `requests` requests (request i: prompt i mod len(prompts))."""
    figures = LevelFigures(variant, concurrency, requests)
    clients = [StreamClient(server.grpc_url) for _ in range(concurrency)]
    warm = clients[0]
    for layout in dict.fromkeys(prompt.layout for prompt in prompts):  # open each (layout, pruning) pipeline
        prompt = next(p for p in prompts if p.layout == layout)
        try:
            warm.ask(request_arrays(prompt, variant, 1))
        except Exception as exc:  # noqa: BLE001  reported with the level's failures
            figures.errors.append(f"warm-up: {exc}")
    lock, issued = threading.Lock(), iter(range(requests))

    def client_loop(client: StreamClient) -> None:
        while True:
            with lock:
                index = next(issued, None)
            if index is None:
                return
            number = index % len(prompts)
            try:
                answer = client.ask(request_arrays(prompts[number], variant, new_tokens))
            except Exception as exc:  # noqa: BLE001  an error or a timeout is one failed request
                with lock:
                    figures.failed += 1
                    if len(figures.errors) < 5:
                        figures.errors.append(f"request {index}: {exc}")
                continue
            want = expected[number, variant]
            with lock:
                if answer.tokens != want.tokens or answer.kept_tokens != want.kept_tokens:
                    figures.mismatched += 1
                    if len(figures.errors) < 5:
                        figures.errors.append(f"request {index} ({prompts[number].name}): tokens {answer.tokens} "
                                              f"kept {answer.kept_tokens}, alone {want.tokens} kept {want.kept_tokens}")
                figures.tokens += len(answer.tokens)
                figures.ttft.append(answer.ttft)
                figures.end_to_end.append(answer.end_to_end)
                figures.queue_seconds.append(answer.queue_seconds)
                figures.max_batch = max(figures.max_batch, answer.batch_size)

    threads = [threading.Thread(target=client_loop, args=(client,), daemon=True) for client in clients]
    try:
        with PeakRss(server.process.pid) as rss:
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():  # a timed join, so Ctrl-C reaches this thread
                    thread.join(0.5)
            figures.seconds = time.perf_counter() - started
        figures.peak_rss_mib = rss.peak_mib
    finally:
        for client in clients:
            client.close()
    log(f"{variant} x {concurrency}: {figures.completed}/{requests} requests in {figures.seconds:.1f} s")
    return figures


# ---- the run ----------------------------------------------------------------------------------

def prepare_engine(work: Path, new_tokens: int, log):
    """The mid-size positional engine for prompts up to the full layout and `new_tokens` (at least 64) new
    tokens, built once into WORK/fastav-positional; its validated manifest."""
    from fastav_export.engine.manifest import load_engine_dir

    out = work / "fastav-positional"
    build_mid_engine(mid_size_model(), mid_size_layout(), "positional", out, max(new_tokens, DEFAULT_NEW_TOKENS), log)
    return load_engine_dir(out, verify=True)


def start_server(manifest, work: Path, args, log):
    """Render the repository into WORK/repository and start tritonserver with the streaming model only."""
    import tritonclient.http as httpclient

    from fastav_export.models import placeholder_id_for
    from fastav_export.serving.repository import ONESHOT_SUFFIX, RepositorySettings, render_repository
    from fastav_export.serving.server_process import TritonServer

    settings = RepositorySettings(MODEL, max_new_tokens=args.new_tokens,
                                  placeholder_id=placeholder_id_for(manifest.model), threads=args.threads,
                                  kv_budget_mib=args.kv_budget_mib, max_queue=max(64, *args.concurrency))
    render_repository(manifest, work / "repository", settings)
    (work / "server").mkdir(exist_ok=True)
    log(f"starting tritonserver (log: {work / 'server' / 'tritonserver.log'})")
    server = TritonServer([work / "repository"], [MODEL], work / "server")
    try:  # the repository holds the one-shot form too: unloaded, so the RSS is the streaming model's alone
        client = httpclient.InferenceServerClient(server.http_url)
        client.unload_model(MODEL + ONESHOT_SUFFIX)
        client.close()
    except BaseException:
        server.stop()
        raise
    return server


def print_report(manifest, args, prompts, footprints, figures, targets) -> None:
    dims = manifest.dims
    print(f"model: mid-size random Qwen2 (hidden {dims.hidden_size}, {dims.num_layers} layers, "
          f"{dims.num_heads}/{dims.num_kv_heads} heads), fp32, ONNX Runtime on the CPU, "
          f"{manifest.pruning.global_policy} preset (K = {manifest.global_layer}, fine ratio "
          f"{manifest.pruning.fine_ratio:g})")
    print(f"server: tritonserver, 1 instance, {args.threads or 'all'} ORT threads, continuous batching, KV budget "
          f"{args.kv_budget_mib:g} MiB; {args.new_tokens} new tokens per request; gRPC streaming, closed loop")
    lengths = sorted({prompt.layout.n_tokens for prompt in prompts}, reverse=True)
    print(f"prompt mix: {len(prompts)} prompts, layouts of {', '.join(map(str, lengths))} tokens")
    print("KV per request (per layer: kept tokens + new tokens, x 2 x KV heads x head size x 4 B), and the "
          "concurrency the budget admits (budget / mean; every row padded to the longest prompt):")
    for variant, kv in footprints.items():
        print(f"  {variant:<6} mean {kv.mean_bytes / MIB:6.2f} MiB, longest {kv.longest_bytes / MIB:6.2f} MiB "
              f"-> {kv.admitted_mean} ({kv.admitted_padded} padded)")
    print(f"{'variant':<7} {'C':>3} {'done':>7} {'req/s':>7} {'tok/s':>7} {'TTFT p50':>9} {'p99':>7} "
          f"{'e2e p50':>8} {'p99':>7} {'batch':>5} {'RSS MiB':>8} {'failed':>6} {'wrong':>5}")
    for level in figures.values():
        print(f"{level.variant:<7} {level.concurrency:>3} {level.completed:>3}/{level.requests:<3} "
              f"{level.requests_per_s:>7.2f} {level.tokens_per_s:>7.1f} {level.percentile('ttft', 50):>8.2f}s "
              f"{level.percentile('ttft', 99):>6.2f}s {level.percentile('end_to_end', 50):>7.2f}s "
              f"{level.percentile('end_to_end', 99):>6.2f}s {level.max_batch:>5} {level.peak_rss_mib:>8.0f} "
              f"{level.failed:>6} {level.mismatched:>5}")
        for error in level.errors:
            print(f"    {error}")
    print("targets:")
    for target in targets:
        print(target.line())
    print(f"{sum(target.met for target in targets)} of {len(targets)} targets met")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    try:
        footprints, figures, manifest, prompts = measure(args, log)
    except KeyboardInterrupt:  # the server (if started) is stopped on the way out; an engine build leaves nothing
        log("interrupted")
        return 130
    targets = load_targets(figures)
    print_report(manifest, args, prompts, footprints, figures, targets)
    if args.json:
        report = {"settings": {key: (str(value) if isinstance(value, Path) else value)
                               for key, value in vars(args).items()},
                  "kv": {variant: asdict(kv) for variant, kv in footprints.items()},
                  "levels": [level.summary() for level in figures.values()],
                  "targets": [{**asdict(t), "met": t.met} for t in targets]}
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


def measure(args, log):
    """Build (once) and check the engine, compute the expected answers, then run every level on a fresh
    server. Returns (KV footprints per variant, figures per (variant, level), manifest, prompts)."""
    from fastav_export.cli.arg_types import cpu_cores
    from fastav_export.models import placeholder_id_for

    args.work.mkdir(parents=True, exist_ok=True)
    manifest = prepare_engine(args.work, args.new_tokens, log)
    prompts = prompt_mix(manifest.dims, placeholder_id_for(manifest.model))
    log(f"computing the expected answers of {len(prompts)} prompts x {len(VARIANTS)} variants in process")
    expected, parsed = expected_answers(manifest, prompts, args.new_tokens, args.threads or cpu_cores())
    footprints = {variant: kv_footprint(parsed[variant], manifest.dims, args.kv_budget_mib) for variant in VARIANTS}
    figures: dict[tuple[str, int], LevelFigures] = {}
    with start_server(manifest, args.work, args, log) as server:
        for concurrency in args.concurrency:
            requests = args.requests_per_level or default_requests(concurrency)
            for variant in VARIANTS:  # interleaved, so both variants of a level see the same machine
                figures[variant, concurrency] = run_level(server, variant, concurrency, requests, prompts,
                                                          expected, args.new_tokens, log)
    return footprints, figures, manifest, prompts


if __name__ == "__main__":
    sys.exit(main())
