"""Whether the python backend stub will load this Python's libpython: checked before the server starts.

The wheel's stub (`python_backend_stubs/3.X/triton_python_backend_stub`) names its libpython by
soname only (`libpython3.X.so.1.0`), so the dynamic loader takes the first file of that name on
LD_LIBRARY_PATH, else the system's (the ldconfig cache, e.g. /lib/x86_64-linux-gnu). The stub then
takes its standard library and site-packages from the first `python3` on PATH. Where the loaded
libpython is another build than that Python's (a pyenv or venv 3.11.7 beside the distribution's
3.11.2), the Python's own extension modules fail with undefined symbols (`_ssl`, which transformers
imports for the tokenizer), and the model never loads. The launcher puts this Python's LIBDIR
first on LD_LIBRARY_PATH (`tritonserver.server_env`); this module asks the loader (`ldd`) what the
stub gets under that environment and says in one line what to do when it is not this Python's.
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ..errors import FastAVError

LAUNCHER = "python -m fastav_export.serving.tritonserver"
SHARED_BUILD = ("use a Python built with a shared libpython (python.org and distribution builds have one; "
                "pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install)")
# ldd's line for the stub's libpython: "\tlibpython3.11.so.1.0 => /path/libpython3.11.so.1.0 (0x...)"
_LDD_LIBPYTHON = re.compile(r"^\s*(libpython\d+\.\d+\S*\.so\S*)\s+=>\s+(not found|\S+)", re.MULTILINE)


@dataclass(frozen=True)
class StubLibpython:
    needed: str  # the soname the stub links, e.g. libpython3.11.so.1.0
    resolved: Path | None  # the file the loader picks for it (None: not found)

    @property
    def version(self) -> str:
        """major.minor of the soname, e.g. "3.11"."""
        return re.match(r"libpython(\d+\.\d+)", self.needed).group(1)


def parse_ldd(text: str) -> StubLibpython | None:
    """The libpython line of `ldd`'s output; None when there is none (not a dynamic executable)."""
    match = _LDD_LIBPYTHON.search(text)
    if match is None:
        return None
    return StubLibpython(match.group(1), None if match.group(2) == "not found" else Path(match.group(2)))


def resolve_stub_libpython(stub: Path, env: dict) -> StubLibpython | None:
    """What the loader gives `stub` for its libpython under `env` (LD_LIBRARY_PATH decides); None when
    `ldd` is missing or cannot tell (then nothing is checked)."""
    try:
        done = subprocess.run(["ldd", str(stub)], env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_ldd(done.stdout)


def this_libpython() -> Path | None:
    """This interpreter's shared libpython (LIBDIR/INSTSONAME); None for a statically linked Python."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return None
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if not libdir or not soname or not (Path(libdir) / soname).exists():
        return None
    return Path(libdir) / soname


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def libpython_problem(found: StubLibpython, python: Path | None, version: str) -> str | None:
    """One line saying why the stub's libpython is not this Python's (`python`, of `version`), or None."""
    if found.version != version:
        return (f"the python backend stub links {found.needed} (Python {found.version}) but the server's Python "
                f"is Python {version} ({sys.executable}): start the server with `{LAUNCHER}`, which picks the stub "
                "of the Python that runs it")
    if python is None:
        return (f"this Python ({sys.executable}) has no shared libpython, so the python backend stub would load "
                f"{found.resolved or 'no libpython'} instead and fail in its extension modules: {SHARED_BUILD}")
    if found.resolved is None:
        return (f"the python backend stub finds no {found.needed} (this Python's is {python}): start the server "
                f"with `{LAUNCHER}`, or put {python.parent} first on LD_LIBRARY_PATH")
    if not _same_file(found.resolved, python):
        return (f"the python backend stub would load {found.resolved}, not this Python's {python}: its extension "
                "modules (_ssl, which the tokenizer's imports need) would fail with undefined symbols; start the "
                f"server with `{LAUNCHER}`, or put {python.parent} first on LD_LIBRARY_PATH and leave no other "
                f"libpython {version} before it")
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def check_stub_libpython(stub: Path, env: dict) -> None:
    """FastAVError (one line, what to do) unless `stub` under `env` loads this Python's libpython."""
    found = resolve_stub_libpython(stub, env)
    if found is None:
        return
    problem = libpython_problem(found, this_libpython(), python_version())
    if problem is not None:
        raise FastAVError(problem)
