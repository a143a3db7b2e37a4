"""Render a Triton Inference Server model repository that serves ENGINE_DIR.

Writes two python-backend models into --out: NAME streams one response per generated
token (decoupled; gRPC streaming) and then a summary, NAME_oneshot answers with one
response (HTTP or gRPC). Inputs: input_ids INT64 [N] (the prompt, with the model's
placeholder id at every video/audio position of the layout), mm_embeds [M, D] (one
encoder output row per placeholder), and optionally layout (JSON string),
max_new_tokens, fine_ratio and pruning (JSON object of overrides). The models load
ENGINE_DIR from where it is now and validate it (sha256 of every file) on load.
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

from .arg_types import non_negative_int, positive_float, positive_int

EXAMPLES = """examples:
  fastav-export triton engines/videollama2-tiny-fp32 --out model_repository
  fastav-export triton engines/videollama2-fp16 --out model_repository --name videollama2 --kv-budget-mib 4096
  python -m fastav_export.serving.tritonserver --model-repository model_repository
"""

log = logging.getLogger("fastav_export")


def add_arguments(parser) -> None:
    parser.add_argument("engine", metavar="ENGINE_DIR", type=Path, help="engine directory from `fastav-export build`")
    parser.add_argument("--out", required=True, type=Path, metavar="REPO",
                        help="model repository to write (empty, new, or written by this command before)")
    parser.add_argument("--name", help="model name (default: the engine directory's name); "
                                       "NAME_oneshot is the non-streaming model")
    parser.add_argument("--instances", type=positive_int, default=1,
                        help="model instances, one process each (default 1)")
    parser.add_argument("--max-new-tokens", type=positive_int,
                        help="tokens generated when a request does not say (default 16, at most the engine's limit)")
    parser.add_argument("--placeholder-id", type=int,
                        help="id marking video/audio positions in input_ids (default: the model's, e.g. -201 "
                             "for VideoLLaMA2, else -200)")
    parser.add_argument("--mm-dtype", choices=("fp32", "fp16"),
                        help="type of mm_embeds requests send (default: fp16 for fp16/bf16 engines, else fp32)")
    parser.add_argument("--threads", type=non_negative_int, default=0,
                        help="ONNX Runtime intra-op threads per instance (default 0: the machine's cores divided "
                             "by --instances, so instances do not oversubscribe them)")
    parser.add_argument("--kv-budget-mib", type=positive_float, default=1024.0, metavar="MIB",
                        help="KV memory each instance's decode batch may hold (default 1024); a request that "
                             "cannot fit alone is refused, others wait for room")
    parser.add_argument("--max-queue", type=non_negative_int, default=64,
                        help="requests per instance that may wait for KV room; more are refused as server busy "
                             "(default 64)")
    parser.add_argument("--media-workers", type=positive_int, default=2,
                        help="threads per instance that decode and encode media requests while others decode "
                             "(default 2)")


def main(args) -> int:
    from ..engine.manifest import load_engine_dir
    from ..models import placeholder_id_for
    from ..serving.repository import RepositorySettings, render_repository
    from .output_checks import check_replaced_dir

    # Models in --out are replaced by name (the default name is the engine directory's own).
    check_replaced_dir(args, "--out", args.out)
    manifest = load_engine_dir(args.engine)
    # `is None`, not `or`: an explicit empty name or 0 must be refused, not replaced by the default.
    settings = RepositorySettings(
        name=args.engine.resolve().name if args.name is None else args.name,
        instances=args.instances,
        max_new_tokens=min(16, manifest.max_new_tokens) if args.max_new_tokens is None else args.max_new_tokens,
        placeholder_id=placeholder_id_for(manifest.model) if args.placeholder_id is None else args.placeholder_id,
        mm_dtype=args.mm_dtype or ("fp32" if manifest.precision == "fp32" else "fp16"),
        threads=args.threads,
        kv_budget_mib=args.kv_budget_mib,
        max_queue=args.max_queue,
        media_workers=args.media_workers,
    )
    models = render_repository(manifest, args.out, settings)
    print(f"wrote {args.out}: models {', '.join(models)} serving {manifest.model} ({manifest.numerics}) "
          f"from {manifest.path.resolve()}")
    print(f"placeholder id {settings.placeholder_id} at the {manifest.layout.n_tokens - manifest.layout.count('text')} "
          f"video/audio positions of the default layout ({manifest.layout.describe()})")
    print(f"start: python -m fastav_export.serving.tritonserver --model-repository {shlex.quote(str(args.out))}")
    return 0
