"""Serving overhead of Triton against in-process generation, and throughput under concurrency.

    python benchmarks/triton_serving.py [--engine engines/videollama2-tiny-fp32] [--requests 32]

Same requests (seeded prompts over the engine's default layout) three ways:
  in-process   ServedEngine.generate: the code the served model runs, no server
  HTTP         the one-shot model, one response per request
  gRPC stream  the decoupled model, one response per token (latency = until the summary)
Prints median end-to-end latency per request and the overhead against in-process, then
requests/s and tokens/s with 1, 4 and 16 concurrent HTTP clients.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fastav_export.contract.layout import KIND_CODES
from fastav_export.engine.manifest import load_engine_dir
from fastav_export.models import placeholder_id_for
from fastav_export.serving.client import request_inputs
from fastav_export.serving.engine import ServedEngine
from fastav_export.serving.repository import RepositorySettings, render_repository
from fastav_export.serving.server_process import TritonServer


def make_requests(manifest, count: int):
    placeholder = placeholder_id_for(manifest.model)
    multimodal = manifest.layout.kind_codes() != KIND_CODES["text"]
    requests = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        ids = np.where(multimodal, placeholder, rng.integers(0, manifest.dims.vocab_size, multimodal.size))
        mm = rng.standard_normal((int(multimodal.sum()), manifest.dims.hidden_size)).astype(np.float32)
        requests.append((ids.astype(np.int64), mm))
    return requests


def timed(call, requests):
    times, outputs = [], []
    for ids, mm in requests:
        started = time.perf_counter()
        outputs.append(call(ids, mm))
        times.append(time.perf_counter() - started)
    return statistics.median(times), outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", type=Path, default=Path("engines/videollama2-tiny-fp32"))
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--instances", type=int, default=2, help="model instances on the server (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per instance (default 1)")
    args = parser.parse_args()
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    manifest = load_engine_dir(args.engine)
    requests = make_requests(manifest, args.requests)
    tokens = args.max_new_tokens
    engine = ServedEngine(manifest, default_max_new_tokens=tokens, threads=args.threads)

    def in_process(ids, mm):
        return engine.generate(engine.parse({"input_ids": ids, "mm_embeds": mm}))[0]

    in_process(*requests[0])  # warm-up
    local, expected = timed(in_process, requests)

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        render_repository(manifest, work / "repo", RepositorySettings(
            "bench", instances=args.instances, max_new_tokens=tokens,
            placeholder_id=placeholder_id_for(manifest.model), threads=args.threads))
        with TritonServer([work / "repo"], ["bench", "bench_oneshot"], work) as server:
            local_clients = threading.local()  # an HTTP client belongs to the thread that made it (gevent)

            def oneshot(ids, mm):
                if not hasattr(local_clients, "http"):
                    local_clients.http = httpclient.InferenceServerClient(server.http_url)
                result = local_clients.http.infer("bench_oneshot", request_inputs(httpclient, ids, mm))
                return result.as_numpy("token_ids").tolist()

            import queue

            grpc = grpcclient.InferenceServerClient(server.grpc_url)
            responses = queue.Queue()
            grpc.start_stream(callback=lambda result, error: responses.put((result, error)))

            def stream(ids, mm):
                grpc.async_stream_infer("bench", request_inputs(grpcclient, ids, mm))
                out = []
                while True:
                    result, error = responses.get(timeout=60)
                    if error is not None:
                        raise error
                    if "kept_tokens" in {o.name for o in result.get_response().outputs}:
                        return out
                    out.append(int(result.as_numpy("token_ids")[0]))

            oneshot(*requests[0]), stream(*requests[0])  # warm-up
            http_median, http_out = timed(oneshot, requests)
            grpc_median, grpc_out = timed(stream, requests)
            grpc.stop_stream()
            assert http_out == expected and grpc_out == expected, "served tokens differ from in-process ones"

            print(f"engine {args.engine} ({manifest.model}, {manifest.precision}), layout "
                  f"{manifest.layout.describe()}, {tokens} new tokens, {args.requests} requests, "
                  f"server: {args.instances} instances x {args.threads} ORT threads")
            print(f"median latency: in-process {local * 1e3:.1f} ms, HTTP one-shot {http_median * 1e3:.1f} ms "
                  f"(+{(http_median - local) * 1e3:.1f} ms), gRPC stream {grpc_median * 1e3:.1f} ms "
                  f"(+{(grpc_median - local) * 1e3:.1f} ms)")
            for clients in (1, 4, 16):
                work_items = requests * max(1, 64 // len(requests))
                started = time.perf_counter()
                with ThreadPoolExecutor(clients) as pool:
                    outputs = list(pool.map(lambda r: oneshot(*r), work_items))
                elapsed = time.perf_counter() - started
                assert outputs == expected * (len(work_items) // len(requests))
                print(f"{clients:>2} concurrent HTTP clients: {len(work_items) / elapsed:6.1f} requests/s, "
                      f"{len(work_items) * tokens / elapsed:7.1f} tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
