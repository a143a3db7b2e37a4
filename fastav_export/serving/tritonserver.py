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
  bundled libraries on LD_LIBRARY_PATH;
* check, before starting, that the stub then loads this interpreter's libpython and not
  another build's of the same version (stub_libpython.py): a bare `tritonserver` gets the
  system's, whose mismatch with the venv's extension modules stops the model loading.

Usage (every argument goes to tritonserver):

    python -m fastav_export.serving.tritonserver --model-repository model_repository

The launcher stays the server's parent: it adds `--model-control-mode=explicit
--load-model=*` (every model loads at start, as by default, and can be reloaded),
forwards SIGINT/SIGTERM, and runs the stub watchdog (stub_watchdog.py), which reloads a
model whose stub process died and removes the stubs' leftover shared memory at exit.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ..errors import FastAVError
from ..user_io.output_paths import cache_dir
from .stub_libpython import check_stub_libpython
from .stub_watchdog import STUB, StubWatchdog

PIP_INSTALL = "pip install --no-deps nvidia-pytriton==0.7.0"
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


def check_stub_path(path: Path, what: str) -> None:
    """Refuse a path that the 2.51 python backend's stub process cannot use.

    * whitespace: the backend starts each stub through a command line split at spaces,
      so a model path with one shifts the stub's arguments (it dies with
      `std::invalid_argument stol`) and the model never loads;
    * non-ASCII characters: the stub's embedded Python encodes file names as ASCII
      whatever the locale (PYTHONUTF8 and LC_ALL do not reach it), so it can neither
      import a model.py below such a path nor open an engine file there.
    """
    text = str(path)
    if any(c.isspace() for c in text):
        raise FastAVError(f"{what} ({text}) holds whitespace, which Triton 2.51's python backend cannot pass to "
                          "its stub process (it splits the stub's command line at spaces): use a path without")
    if not text.isascii():
        raise FastAVError(f"{what} ({text}) holds non-ASCII characters, which the Python inside Triton 2.51's "
                          "python backend stub cannot use in file names: use an ASCII path")


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
    return cache_dir() / f"triton-backends-py{sys.version_info.major}.{sys.version_info.minor}"


def server_command(args: list[str], backend_dir: Path, install: TritonInstall | None = None) -> list[str]:
    install = install or find_tritonserver()
    return [str(install.binary), f"--backend-directory={backend_dir}", *args]


def _option(argv: list[str], *names: str) -> list[str]:
    """Every value given to one of `names` (`--name=value` or `--name value`)."""
    values = []
    for index, arg in enumerate(argv):
        for name in names:
            if arg.startswith(name + "="):
                values.append(arg.split("=", 1)[1])
            elif arg == name and index + 1 < len(argv):
                values.append(argv[index + 1])
    return values


def launch_arguments(argv: list[str]) -> tuple[list[str], str | None]:
    """(tritonserver's arguments, "host:port" of its HTTP endpoint for the watchdog, or None).

    Explicit model control (every model loaded at start) is added unless the user chose a
    mode: it is what lets the watchdog reload a model whose stub died.
    """
    for repository in _option(argv, "--model-repository", "--model-store"):
        check_stub_path(Path(repository).resolve(), f"--model-repository {repository}")
    args = list(argv)
    mode = _option(argv, "--model-control-mode")
    if not mode:
        args += ["--model-control-mode=explicit", "--load-model=*"]
    if (mode and mode[-1] != "explicit") or _option(argv, "--allow-http")[-1:] == ["false"]:
        return args, None
    port = (_option(argv, "--http-port") or ["8000"])[-1]
    address = (_option(argv, "--http-address") or ["127.0.0.1"])[-1]
    return args, f"{'127.0.0.1' if address in ('0.0.0.0', '') else address}:{port}"


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM when the launcher dies (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        install = find_tritonserver()
        backend_dir = prepare_backend_dir(default_backend_dir(), install)
        check_stub_path(backend_dir.resolve(), "the python backend directory")
        args, http_url = launch_arguments(argv)
        env = server_env(install)
        check_stub_libpython(install.stub, env)
    except FastAVError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    def log(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    if http_url is None:
        log("fastav-export: without explicit model control over HTTP, a model whose python backend stub dies "
            "cannot be reloaded; its requests fail until the server restarts")
    # Its own process group, so a terminal's Ctrl-C reaches the server once (forwarded), not
    # twice; and it gets SIGTERM should the launcher itself be killed.
    server = subprocess.Popen(server_command(args, backend_dir, install), env=env,
                              start_new_session=True, preexec_fn=_terminate_with_parent)
    watchdog = StubWatchdog(server.pid, http_url, log)

    def forward(signum, frame):
        watchdog.halt()  # the stubs a shutdown stops must not be reloaded
        server.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    watchdog.start()
    try:
        code = server.wait()
    finally:
        watchdog.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for name in watchdog.remove_shared_memory():
        log(f"fastav-export: removed the shared memory {name} a python backend stub left behind")
    return 128 - code if code < 0 else code  # killed by signal N: the shell's 128 + N


if __name__ == "__main__":
    sys.exit(main())
