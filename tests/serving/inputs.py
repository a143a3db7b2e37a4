"""Seeded serving requests and their in-process expectation (shared by the serving tests)."""

from __future__ import annotations

import numpy as np

from fastav_export.cli import main as cli_main
from fastav_export.contract.layout import KIND_CODES


def make_request(manifest, placeholder_id: int, seed: int = 0, mm_dtype=np.float32):
    """(input_ids [N] int64, mm_embeds [M, D]) over the engine's default layout."""
    rng = np.random.default_rng(seed)
    multimodal = manifest.layout.kind_codes() != KIND_CODES["text"]
    # Text ids from the vocabulary without the placeholder (Qwen2.5-Omni's `<|VIDEO|>` is a real token id).
    text = rng.integers(0, manifest.dims.vocab_size - 1, multimodal.size)
    text = np.where((0 <= placeholder_id) & (text >= placeholder_id), text + 1, text)
    ids = np.where(multimodal, placeholder_id, text)
    embeds = rng.standard_normal((int(multimodal.sum()), manifest.dims.hidden_size)).astype(mm_dtype)
    return ids.astype(np.int64), embeds


def spliced_embeds(manifest, table, input_ids, mm_embeds) -> np.ndarray:
    """[N, D] float32 built independently of the serving code: table rows, then encoder rows."""
    multimodal = manifest.layout.kind_codes() != KIND_CODES["text"]
    embeds = np.asarray(table, np.float32)[np.where(multimodal, 0, input_ids)]
    embeds[multimodal] = mm_embeds.astype(np.float32)
    return embeds


def run_command_tokens(manifest, table, input_ids, mm_embeds, max_new_tokens, tmp_path, extra=()) -> list[int]:
    """The tokens `fastav-export run ENGINE_DIR --embeds ...` prints for the same request (in process)."""
    import json

    embeds_file, out = tmp_path / "embeds.npy", tmp_path / "run.json"
    np.save(embeds_file, spliced_embeds(manifest, table, input_ids, mm_embeds))
    argv = ["run", str(manifest.path), "--embeds", str(embeds_file), "--max-new-tokens", str(max_new_tokens),
            "--json", str(out), "-q", *extra]
    assert cli_main(argv) == 0
    return json.loads(out.read_text())["tokens"][0]


def stream_request(server, name: str, inputs, cancel_after: int | None = None):
    """(token ids, the final response's outputs, the text pieces joined) of one request over a gRPC stream
    to the decoupled model `name`; with `cancel_after`, the stream is cancelled after that many tokens
    and the outputs and text are None."""
    import queue

    import tritonclient.grpc as grpcclient

    from fastav_export.serving.client import answer_text

    responses = queue.Queue()
    client = grpcclient.InferenceServerClient(server.grpc_url)
    client.start_stream(callback=lambda result, error: responses.put((result, error)))
    try:
        client.async_stream_infer(name, inputs)
        tokens, text = [], b""
        while True:
            result, error = responses.get(timeout=120)
            if error is not None:
                raise error
            outputs = {o.name for o in result.get_response().outputs}
            if "text" in outputs:  # a piece, or with the summary a tail held back mid-character
                text += result.as_numpy("text").tobytes()
            if "kept_tokens" in outputs:  # the final response: the summary
                return (tokens, {n: result.as_numpy(n) for n in outputs},
                        answer_text(np.frombuffer(text, np.uint8)))
            tokens.append(int(result.as_numpy("token_ids")[0]))
            if cancel_after is not None and len(tokens) >= cancel_after:
                client.stop_stream(cancel_requests=True)
                return tokens, None, None
    finally:
        client.stop_stream()
        client.close()
