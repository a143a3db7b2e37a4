"""Run the `tritonserver` binary of the nvidia-pytriton wheel with this Python as the model's Python.

The wheel ships Triton 2.51's `tritonserver`, its python backend and one backend stub
per Python version (`python_backend_stubs/3.X/triton_python_backend_stub`). The stub is
the process that runs a python-backend `model.py`: it embeds the libpython it was
linked against and finds its standard library and site-packages from the first
`python3` on PATH. So, like pytriton itself, we:

* make a backend directory whose `python/` holds the wheel's python backend and the stub
  built for *this* interpreter's version (3.8 to 3.13);
* put this interpreter's `bin/` first on PATH (its venv and packages, fastav_export
  included, are what model.py imports) and its shared libpython plus the wheel's
  bundled libraries on LD_LIBRARY_PATH.

Usage (every argument goes to tritonserver unchanged):

    python -m fastav_export.serving.tritonserver --model-repository model_repository
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ..errors import FastAVError

PIP_INSTALL = "pip install --no-deps nvidia-pytriton==0.7.0"
STUB = "triton_python_backend_stub"
PYTHON_BACKEND_FILES = ("libtriton_python.so", "triton_python_backend_utils.py")


@dataclass(frozen=True)
class TritonInstall:
    binary: Path  # tritonserver
    python_backend: Path  # the wheel's backends/python
    stub: Path  # the stub for this interpreter
    libs: Path  # the wheel's bundled shared libraries (nvidia_pytriton.libs)


def find_tritonserver() -> TritonInstall:
    """The wheel's server, or a one-line error naming what to install."""
    # Located, not imported: importing pytriton needs its own dependencies, which the
    # server binary does not (its numpy<2 pin is why we install the wheel with --no-deps).
    spec = importlib.util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        raise FastAVError("running tritonserver needs the nvidia-pytriton wheel (its server binary only): "
                          f"install it with `{PIP_INSTALL}`")
    root = Path(spec.origin).parent
    dist = root / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = dist / "python_backend_stubs" / version / STUB
    if not (dist / "bin" / "tritonserver").is_file():
        raise FastAVError(f"{dist} has no bin/tritonserver: reinstall with `{PIP_INSTALL}`")
    if not stub.is_file():
        have = sorted(p.name for p in (dist / "python_backend_stubs").iterdir())
        raise FastAVError(f"nvidia-pytriton has no python backend stub for Python {version} (it has {', '.join(have)}): "
                          "use one of those Python versions for the server")
    return TritonInstall(dist / "bin" / "tritonserver", dist / "backends" / "python", stub,
                         root.parent / "nvidia_pytriton.libs")


def prepare_backend_dir(directory: Path, install: TritonInstall | None = None) -> Path:
    """`directory/python/` = the wheel's python backend + this Python's stub (symlinks); returns `directory`."""
    install = install or find_tritonserver()
    python = Path(directory) / "python"
    python.mkdir(parents=True, exist_ok=True)
    links = {name: install.python_backend / name for name in PYTHON_BACKEND_FILES}
    links[STUB] = install.stub
    for name, target in links.items():
        link = python / name
        if link.is_symlink() or link.exists():
            if link.resolve() == target.resolve():
                continue
            link.unlink()
        link.symlink_to(target)
    return Path(directory)


def server_env(install: TritonInstall | None = None, base: dict | None = None) -> dict:
    """Environment for tritonserver: this Python first on PATH, libpython and the wheel's libs findable."""
    install = install or find_tritonserver()
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    libs = [str(install.libs)]
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        # The stub links libpython3.X.so.1.0: take this interpreter's, not another of the same version.
        libs.insert(0, sysconfig.get_config_var("LIBDIR"))
    if env.get("LD_LIBRARY_PATH"):
        libs.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
    return env


def default_backend_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "fastav-export" / f"triton-backends-py{sys.version_info.major}.{sys.version_info.minor}"


def server_command(args: list[str], backend_dir: Path, install: TritonInstall | None = None) -> list[str]:
    install = install or find_tritonserver()
    return [str(install.binary), f"--backend-directory={backend_dir}", *args]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        install = find_tritonserver()
        backend_dir = prepare_backend_dir(default_backend_dir(), install)
    except FastAVError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    command = server_command(argv, backend_dir, install)
    # exec: the server is this process, so signals and the exit code are its own.
    os.execve(command[0], command, server_env(install))


if __name__ == "__main__":
    sys.exit(main())
