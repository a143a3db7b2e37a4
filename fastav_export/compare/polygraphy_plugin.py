"""`polygraphy run ENGINE_DIR --fastav --fastav-torch`: our runners inside Polygraphy's own tool.

Registered in pyproject.toml under Polygraphy's `polygraphy.run.plugins` entry point
(Polygraphy's examples/dev/02_extending_polygraphy_run shows the mechanism): `polygraphy
run` calls `get_arg_groups()` and adds the returned argument groups to its parser.

    --fastav              the engine's runtime (--fastav-backend ort|trt, default as `fastav-export run`)
    --fastav-torch        the PyTorch reference of the engine's weights
    --fastav-max-new-tokens T

The model argument is the engine directory. Polygraphy's usual options then apply:
`--load-inputs` (e.g. from `fastav-export compare --save-inputs`), `--save-outputs`,
`--atol logits:1e-4 --rtol 0`, `--gen-script`.
"""

from __future__ import annotations

from polygraphy.tools.args import ModelArgs
from polygraphy.tools.args.base import BaseArgs, BaseRunnerArgs
from polygraphy.tools.script import make_invocable

from .runners import DEFAULT_NEW_TOKENS

RUNNERS_MODULE = "fastav_export.compare.runners"


class FastavPipelineArgs(BaseArgs):
    """
    FastAV pipeline: running a fastav-export engine directory (the model argument) with --fastav or --fastav-torch.
    """

    def add_parser_args_impl(self):
        self.group.add_argument("--fastav-backend", choices=("ort", "trt"), default=None,
                                help="engine runtime for --fastav (default: trt when built with TensorRT and a "
                                     "GPU is present, else ort)")
        self.group.add_argument("--fastav-max-new-tokens", type=int, default=DEFAULT_NEW_TOKENS,
                                help=f"greedy tokens generated per input (default {DEFAULT_NEW_TOKENS})")

    def parse_impl(self, args):
        self.backend = args.fastav_backend
        self.max_new_tokens = args.fastav_max_new_tokens


class FastavRunnerArgs(BaseRunnerArgs):
    """
    FastAV engine runner: running the whole pruned pipeline on the engine's own runtime.

    Depends on:

        - ModelArgs
        - FastavPipelineArgs
    """

    def get_name_opt_impl(self):
        return "FastAV engine", "fastav"

    def add_to_script_impl(self, script):
        pipeline = self.arg_groups[FastavPipelineArgs]
        script.add_import(imports=["EngineRunner"], frm=RUNNERS_MODULE)
        script.add_runner(make_invocable("EngineRunner", self.arg_groups[ModelArgs].path,
                                         backend=pipeline.backend, max_new_tokens=pipeline.max_new_tokens))


class FastavTorchRunnerArgs(BaseRunnerArgs):
    """
    FastAV torch reference: running the PyTorch reference of the engine's weights.

    Depends on:

        - ModelArgs
        - FastavPipelineArgs
    """

    def get_name_opt_impl(self):
        return "FastAV PyTorch reference", "fastav-torch"

    def add_to_script_impl(self, script):
        script.add_import(imports=["TorchRunner"], frm=RUNNERS_MODULE)
        script.add_runner(make_invocable("TorchRunner", self.arg_groups[ModelArgs].path,
                                         max_new_tokens=self.arg_groups[FastavPipelineArgs].max_new_tokens))


def get_arg_groups():
    """Polygraphy's plugin hook: the argument groups `polygraphy run` adds."""
    return [FastavPipelineArgs(), FastavRunnerArgs(), FastavTorchRunnerArgs()]
