"""A tritonserver process on loopback with free ports: started, waited for and stopped by tests and benchmarks."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from .stub_libpython import check_stub_libpython
from .stub_watchdog import MAX_RESTARTS, StubWatchdog
from .tritonserver import (
    check_stub_path,
    find_tritonserver,
    prepare_backend_dir,
    server_command,
    server_env,
)

READY_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TritonServer:
    """Serves `repositories`; waits until every model in `ready_models` is ready.

    The server log goes to `workdir/tritonserver.log`; `stop()` terminates the server
    (kills it after 20 s). Models that fail to load leave the server running
    (--exit-on-error=false), so their reason can be read from the log. As the launcher
    does, models are under explicit control and a stub watchdog reloads a model whose
    stub died (after `max_stub_restarts` restarts it unloads it), logging to the same file.
    """

    def __init__(self, repositories: list[Path], ready_models: list[str], workdir: Path,
                 max_stub_restarts: int = MAX_RESTARTS):
        install = find_tritonserver()
        self.http_port, self.grpc_port = free_port(), free_port()
        self._http_client = None
        self.log_path = workdir / "tritonserver.log"
        for repository in repositories:
            check_stub_path(Path(repository).resolve(), f"the model repository {repository}")
        args = [*(f"--model-repository={r}" for r in repositories),
                "--http-address=127.0.0.1", f"--http-port={self.http_port}",
                "--grpc-address=127.0.0.1", f"--grpc-port={self.grpc_port}",
                "--allow-metrics=false", "--exit-on-error=false", "--strict-readiness=false",
                "--exit-timeout-secs=5", "--model-control-mode=explicit", "--load-model=*"]
        command = server_command(args, prepare_backend_dir(workdir / "backends", install), install)
        env = server_env(install)
        check_stub_libpython(install.stub, env)  # else every python-backend model fails to load
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.watchdog = StubWatchdog(self.process.pid, self.http_url, self._write_log,
                                     max_restarts=max_stub_restarts).start()
        try:
            self._wait_ready(ready_models)
        except BaseException:
            self.stop()
            raise

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def _write_log(self, line: str) -> None:
        if not self._log.closed:
            self._log.write(line.encode() + b"\n")
            self._log.flush()

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def model_ready(self, name: str) -> bool:
        """The server's own answer (tritonclient's `is_model_ready`); False while it cannot answer."""
        from tritonclient.utils import InferenceServerException

        try:
            return self._client().is_model_ready(name)
        except (InferenceServerException, OSError):
            return False

    def _client(self):
        if self._http_client is None:
            import tritonclient.http as httpclient

            self._http_client = httpclient.InferenceServerClient(self.http_url, connection_timeout=2.0,
                                                                 network_timeout=2.0)
        return self._http_client

    def _wait_ready(self, models: list[str]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            if all(self.model_ready(m) for m in models):
                return
            time.sleep(0.5)
        raise TimeoutError(f"models {models} not ready after {READY_TIMEOUT_S} s:\n{self.log()[-4000:]}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def __enter__(self) -> "TritonServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.watchdog.stop()  # before the shutdown, whose stub exits are no deaths
        if self._http_client is not None:
            self._http_client.close()
            self._http_client = None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for name in self.watchdog.remove_shared_memory():
            self._write_log(f"fastav-export: removed the shared memory {name} a python backend stub left behind")
        self._log.close()
