"""Restart a served model whose python-backend stub process died.

Triton 2.51's python backend never restarts a stub that dies (kill -9, the OOM killer,
a crash in native code): that instance answers its share of the model's requests with
"Stub process ... is not healthy" for ever, the model still reports ready, nothing is
logged, and the dead stub's shared-memory region stays in /dev/shm after shutdown. (The
backend has no per-instance readiness hook in 2.51, so nothing inside the stub can
report it either.) `StubWatchdog` runs beside the server process:

* it polls the server's child processes (/proc) and remembers, for each python-backend
  stub, its model (from the model.py path on its command line) and its shared-memory
  region;
* a stub that stays a zombie is dead (Triton reaps the stubs it stops itself at once):
  the watchdog logs one line and reloads the model through the repository API
  (`POST /v2/repository/models/<name>/load`; the server must run with
  `--model-control-mode=explicit`), which starts fresh stubs, so the model recovers;
* a model whose stubs die MAX_RESTARTS times within WINDOW_S (a crash loop), or whose
  reload fails, is unloaded instead: it then reports not ready, and the log says why;
* once the server has exited, `remove_shared_memory()` deletes the regions of its stubs
  that are still there.

What it cannot fix: Triton never finishes unloading the replaced instance whose stub
died, so the server's shutdown waits for its --exit-timeout-secs.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STUB = "triton_python_backend_stub"  # the python backend's per-model process (its executable's name)


POLL_S = 0.5
DEAD_POLLS = 2  # consecutive polls a stub must be a zombie: the reap of a normal exit is not a death
MAX_RESTARTS = 3
WINDOW_S = 600.0
RELOAD_TIMEOUT_S = 600.0
SHM_DIR = Path("/dev/shm")
SHM_PREFIX = "triton_python_backend_shm_region_"


@dataclass
class Stub:
    pid: int
    model: str  # <repository>/<model>/<version>/model.py -> <model>
    instance: str
    shm_region: str
    zombie_polls: int = 0


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of `pid`, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name in (...) may hold spaces
    return int(fields[1]), fields[0]


def _stub_of(pid: int) -> Stub | None:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    argv = [arg.decode(errors="replace") for arg in argv if arg]
    # argv: stub, model.py path, shm region, sizes, parent pid, backend dir, ipc handle, instance, ...
    if len(argv) < 3 or not argv[0].endswith(STUB):
        return None
    instance = argv[8] if len(argv) > 8 else "?"
    return Stub(pid, Path(argv[1]).parent.parent.name, instance, argv[2])


class StubWatchdog:
    """Watches the stubs of the tritonserver process `server_pid`; `http_url` ("host:port") reaches
    its HTTP endpoint (None: it cannot restart models, only report). `log` gets one line per event."""

    def __init__(self, server_pid: int, http_url: str | None, log: Callable[[str], None],
                 max_restarts: int = MAX_RESTARTS, window_s: float = WINDOW_S):
        self.server_pid, self.http_url, self.log = server_pid, http_url, log
        self.max_restarts, self.window_s = max_restarts, window_s
        self.stubs: dict[int, Stub] = {}
        self.retired: set[int] = set()  # stubs of a replaced generation: their fate is Triton's
        self.shm_regions: set[str] = set()
        self.restarts: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fastav-stub-watchdog", daemon=True)

    def start(self) -> "StubWatchdog":
        self._thread.start()
        return self

    def halt(self) -> None:
        """Stop acting, without waiting (safe in a signal handler): the server is shutting down,
        and the stubs it stops are no deaths."""
        self._stop.set()

    def stop(self) -> None:
        self.halt()
        if self._thread.is_alive():
            self._thread.join(timeout=RELOAD_TIMEOUT_S)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001  a watchdog must outlive its own bugs; say so
                self.log(f"fastav-export stub watchdog: internal error ({type(exc).__name__}: {exc})")

    # ---- one poll ----------------------------------------------------------------------
    def poll(self) -> None:
        """Record new stubs, then act on the ones that died."""
        for pid in self._children():
            if pid not in self.stubs and pid not in self.retired:
                stub = _stub_of(pid)
                if stub is not None:
                    self.stubs[pid] = stub
                    self.shm_regions.add(stub.shm_region)
        for pid, stub in list(self.stubs.items()):
            stat = _stat(pid)
            if stat is None or stat[0] != self.server_pid:  # reaped by Triton: it stopped the stub itself
                del self.stubs[pid]
            elif stat[1] == "Z":
                stub.zombie_polls += 1
                if stub.zombie_polls >= DEAD_POLLS:
                    self._died(stub)

    def _children(self) -> list[int]:
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = _stat(int(entry))
                if stat is not None and stat[0] == self.server_pid and stat[1] != "Z":
                    children.append(int(entry))
        return children

    def _died(self, stub: Stub) -> None:
        # The model's other stubs belong to the generation being replaced: forget them all,
        # so their exit when Triton replaces the instances is not taken for another death.
        for pid in [pid for pid, other in self.stubs.items() if other.model == stub.model]:
            del self.stubs[pid]
            self.retired.add(pid)
        now = time.monotonic()
        recent = [t for t in self.restarts.get(stub.model, []) if now - t < self.window_s]
        self.restarts[stub.model] = recent
        prefix = (f"fastav-export stub watchdog: the python backend stub of {stub.instance} (pid {stub.pid}) died; "
                  f"Triton 2.51 does not restart it, so model '{stub.model}'")
        if self.http_url is None:
            self.log(f"{prefix} keeps failing requests: the server's HTTP endpoint is off, so it cannot be reloaded")
            return
        if len(recent) >= self.max_restarts:
            self._unload(stub.model, f"{prefix} is unloaded and reports not ready: its stubs died "
                                     f"{len(recent) + 1} times within {self.window_s:.0f} s")
            return
        self.log(f"{prefix} is reloaded with new stubs (restart {len(recent) + 1} of {self.max_restarts} "
                 f"within {self.window_s:.0f} s)")
        recent.append(now)
        problem = self._repository_call(stub.model, "load")
        if problem is None:
            self.log(f"fastav-export stub watchdog: model '{stub.model}' is serving again")
        else:
            self._unload(stub.model, f"fastav-export stub watchdog: reloading model '{stub.model}' failed "
                                     f"({problem}); it is unloaded and reports not ready")

    def _unload(self, model: str, message: str) -> None:
        problem = self._repository_call(model, "unload")
        if problem is not None:
            message += f" (the unload failed too: {problem})"
        self.log(message)

    def _repository_call(self, model: str, action: str) -> str | None:
        """POST the repository API's load or unload; None on success, else what went wrong."""
        request = urllib.request.Request(f"http://{self.http_url}/v2/repository/models/{model}/{action}",
                                         data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=RELOAD_TIMEOUT_S):
                return None
        except urllib.error.HTTPError as exc:
            try:
                return json.loads(exc.read()).get("error", str(exc))
            except (ValueError, AttributeError):
                return str(exc)
        except OSError as exc:
            return str(exc)

    # ---- after the server ---------------------------------------------------------------
    def remove_shared_memory(self) -> list[str]:
        """Delete the /dev/shm regions of this server's stubs that outlived it (call after it exited)."""
        removed = []
        for name in sorted(self.shm_regions):
            path = SHM_DIR / name
            if name.startswith(SHM_PREFIX) and "/" not in name and path.exists():
                try:
                    path.unlink()
                    removed.append(name)
                except OSError:
                    pass
        return removed
