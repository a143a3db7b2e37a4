"""Build every exported graph into a TensorRT engine with Polygraphy's loaders.

    ONNX graph --NetworkFromOnnxPath(strongly typed; the TopKGather plugin registered)-->
    network --CreateConfig(2 profiles, shared timing cache)--> EngineBytesFromNetwork
    --> SaveBytes("<graph>.engine" beside "<graph>.onnx")

Strongly typed networks take every tensor's precision from the exported ONNX types,
so `--fp16`/`--bf16` are decided at export time: TensorRT 11 removed the FP16/BF16
builder flags, and this works the same on 10.x. The timing cache is shared by all
graphs of a build (post layers have identical shapes) and across builds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...contract.dims import DecoderDims
from ...contract.schedule import PruningSchedule
from ...user_io.output_paths import cache_dir
from .profiles import PROFILE_NAMES, Limits, graph_profiles, profiles_to_json
from .tensorrt_env import gpu_info, import_polygraphy_trt, import_tensorrt

ENGINE_SUFFIX = ".engine"


def default_timing_cache() -> Path:
    """One cache per TensorRT version and GPU, in the user's cache directory."""
    root = cache_dir()
    gpu = gpu_info()["compute_capability"].replace(".", "")
    return root / f"trt-{import_tensorrt().__version__}-sm{gpu}.timing-cache"


def build_static_engines(directory: Path, onnx_paths: dict[str, Path], timing_cache: Path | None = None,
                         progress: Callable[[str], None] = lambda message: None) -> dict[str, str]:
    """Build graphs with fixed input shapes (the media encoders: one clip) into engines beside them.

    No optimisation profile is needed for static shapes. Returns graph -> engine file (relative).
    """
    from polygraphy.backend.common import SaveBytes

    ptrt = import_polygraphy_trt()
    timing_cache = Path(timing_cache) if timing_cache else default_timing_cache()
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    engines = {}
    for name, onnx_path in onnx_paths.items():
        progress(f"build TensorRT engine {name}{ENGINE_SUFFIX}")
        network = ptrt.NetworkFromOnnxPath(str(onnx_path), strongly_typed=True)
        config = ptrt.CreateConfig(load_timing_cache=str(timing_cache))
        target = onnx_path.with_suffix(ENGINE_SUFFIX)
        SaveBytes(ptrt.EngineBytesFromNetwork(network, config=config, save_timing_cache=str(timing_cache)),
                  path=str(target))()
        engines[name] = target.relative_to(directory).as_posix()
    return engines


def build_trt_engines(directory: Path, onnx_paths: dict[str, Path], dims: DecoderDims, schedule: PruningSchedule, limits: Limits,
                      rollout: bool, timing_cache: Path | None = None,
                      progress: Callable[[str], None] = lambda message: None) -> dict:
    """Build `{graph name: onnx path}` (inside the engine `directory`) into engines next to them.

    Returns the manifest's `trt` section (paths relative to `directory`).
    """
    from polygraphy.backend.common import SaveBytes

    from .plugin_library import load_plugin_library

    trt = import_tensorrt()
    ptrt = import_polygraphy_trt()
    load_plugin_library()  # built on first use; registers fastav::TopKGather as it loads
    timing_cache = Path(timing_cache) if timing_cache else default_timing_cache()
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    profiles = graph_profiles(dims, schedule, limits, rollout)
    engines = {}
    for name, onnx_path in onnx_paths.items():
        progress(f"build TensorRT engine {name}{ENGINE_SUFFIX}")
        trt_profiles = []
        for ranges in profiles[name]:
            profile = ptrt.Profile()
            for tensor, shape in ranges.items():
                if shape.max:  # scalars have no dimension to choose
                    profile.add(tensor, min=shape.min, opt=shape.opt, max=shape.max)
            trt_profiles.append(profile)
        network = ptrt.NetworkFromOnnxPath(str(onnx_path), strongly_typed=True)
        config = ptrt.CreateConfig(profiles=trt_profiles, load_timing_cache=str(timing_cache))
        target = onnx_path.with_suffix(ENGINE_SUFFIX)
        SaveBytes(ptrt.EngineBytesFromNetwork(network, config=config, save_timing_cache=str(timing_cache)),
                  path=str(target))()
        engines[name] = target.relative_to(directory).as_posix()
    return {
        "engines": engines,  # graph -> engine file, beside the graph's ONNX file
        "profiles": {"order": list(PROFILE_NAMES), "shapes": profiles_to_json(profiles)},
        "limits": {"max_batch": limits.max_batch, "max_tokens": limits.max_tokens,
                   "max_new_tokens": limits.max_new_tokens},
        "tensorrt": trt.__version__,
        **gpu_info(),
    }
