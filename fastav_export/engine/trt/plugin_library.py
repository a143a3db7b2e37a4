"""Find, build on first use, and load `libfastav_plugins.so` (the TensorRT plugins).

Lookup order: the `FASTAV_PLUGIN_LIBRARY` environment variable (a path to the .so), then
`plugins/build/libfastav_plugins.so` in the source checkout. When neither exists,
`ensure_plugin_library()` builds it with the documented commands

    cmake -S plugins -B plugins/build -DCMAKE_BUILD_TYPE=Release && cmake --build plugins/build -j

capturing their output in `plugins/build/fastav-build.log`; any failure (no cmake, no
nvcc, no TensorRT headers or library, a compile error) is one `FastAVError` line that
names the cause and the log.

`load_plugin_library()` loads the file with `ctypes.CDLL(..., RTLD_GLOBAL)`; the library
registers its plugin creators with TensorRT's registry as it loads (as it does under
Polygraphy's `--plugins` and `trtexec --staticPlugins`), so importing `tensorrt` first is
all it needs.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from ...errors import FastAVError

log = logging.getLogger("fastav_export")

LIBRARY_NAME = "libfastav_plugins.so"
ENV_VAR = "FASTAV_PLUGIN_LIBRARY"
PLUGINS_DIR = Path(__file__).resolve().parents[3] / "plugins"  # the source checkout's plugins/
BUILD_DIR = PLUGINS_DIR / "build"
BUILD_LOG = "fastav-build.log"

# path -> CDLL of what this process loaded (ctypes keeps the library mapped while referenced).
_loaded: dict[Path, ctypes.CDLL] = {}


def plugin_library_path() -> Path:
    """Where the plugin library is, or would be after a build."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser().resolve()
    return BUILD_DIR / LIBRARY_NAME


def ensure_plugin_library(build: bool = True) -> Path:
    """The plugin library's path; builds it with CMake first when absent and `build` is set."""
    path = plugin_library_path()
    if path.is_file():
        return path
    if os.environ.get(ENV_VAR):
        raise FastAVError(f"{ENV_VAR}={os.environ[ENV_VAR]} does not exist: point it at a built "
                          f"{LIBRARY_NAME} or unset it to build the plugins from {PLUGINS_DIR}")
    if not build:
        raise FastAVError(f"TensorRT plugin library not built ({path}): run `cmake -S {PLUGINS_DIR} -B {BUILD_DIR} "
                          f"&& cmake --build {BUILD_DIR} -j` or set {ENV_VAR}")
    _build(path)
    return path


def load_plugin_library() -> Path:
    """Ensure the library exists, load it into the process and register its plugins (once)."""
    path = ensure_plugin_library()
    if path in _loaded:
        return path
    try:
        library = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    except OSError as error:
        raise FastAVError(f"cannot load the TensorRT plugin library {path} ({error}): rebuild it (delete it and run "
                          f"again) and check that TensorRT's libnvinfer and the CUDA runtime are on "
                          f"LD_LIBRARY_PATH") from error
    if not hasattr(library, "getCreators"):
        raise FastAVError(f"{path} is not a TensorRT plugin library (no getCreators entry point): "
                          f"point {ENV_VAR} at libfastav_plugins.so")
    _loaded[path] = library
    log.info("loaded TensorRT plugins from %s", path)
    return path


def _build(path: Path) -> None:
    """Configure and build `plugins/` with CMake; one FastAVError line on any failure."""
    if not (PLUGINS_DIR / "CMakeLists.txt").is_file():
        raise FastAVError(f"{LIBRARY_NAME} is not built and the plugin sources are not here ({PLUGINS_DIR}): "
                          f"build it from a source checkout and set {ENV_VAR} to its path")
    cmake = shutil.which("cmake")
    if cmake is None:
        raise FastAVError("building the TensorRT plugins needs CMake >= 3.24: install it (`pip install cmake` "
                          f"or your package manager) or set {ENV_VAR} to a built {LIBRARY_NAME}")
    if not (os.environ.get("CUDACXX") or shutil.which("nvcc") or Path("/usr/local/cuda/bin/nvcc").is_file()):
        raise FastAVError("building the TensorRT plugins needs the CUDA compiler nvcc: install the CUDA toolkit "
                          f"and put nvcc on PATH (or set CUDACXX), or set {ENV_VAR} to a built {LIBRARY_NAME}")
    build_dir = path.parent
    build_dir.mkdir(parents=True, exist_ok=True)
    log_path = build_dir / BUILD_LOG
    steps = [
        ("configure", [cmake, "-S", str(PLUGINS_DIR), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"]),
        ("compile", [cmake, "--build", str(build_dir), "-j"]),
    ]
    with open(log_path, "w") as log_file:
        for step, command in steps:
            log.info("TensorRT plugins: %s (%s), log in %s", step, " ".join(command), log_path)
            log_file.write(f"$ {' '.join(command)}\n")
            log_file.flush()
            result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            log_file.write(result.stdout)
            log_file.flush()
            if result.returncode != 0:
                raise FastAVError(_failure_message(step, command, result.stdout, log_path))
    if not path.is_file():
        raise FastAVError(f"the plugin build finished but {path} is missing: see {log_path}")
    log.info("TensorRT plugins built: %s", path)


def _failure_message(step: str, command: list[str], output: str, log_path: Path) -> str:
    """CMake's own error (the first `CMake Error` block: our CMakeLists states each missing piece
    and what to pass), the exact command to rerun by hand, and where the whole output is."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("CMake Error")), None)
    cause = f"cmake {step} failed"
    if start is not None:
        block = []
        for line in lines[start + 1:]:
            if line and not line.startswith(" "):
                break
            block.append(line.strip())
        cause = " ".join(" ".join(block).split()) or cause  # CMake wraps long messages over several lines
    return (f"cannot build the TensorRT plugins: {cause} (command: `{shlex.join(command)}`; "
            f"full output in {log_path})")
