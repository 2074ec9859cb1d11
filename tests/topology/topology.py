"""The processes of a production topology on loopback: a Prefect server, process workers, a Dask scheduler and
workers — each a real process with its own working directory, ``PREFECT_HOME`` and environment, logs in its folder.

Waits are on conditions, never fixed sleeps, and their limits adapt to the machine: :class:`Patience` scales every
limit by how slow the Prefect server was to start here (a loaded machine is slow at everything alike), and a wait
that sees progress (:meth:`Patience.wait_for` with ``progress=``) keeps waiting while progress continues.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "project"  # the team's code: flows deployed from it, workers import it
SOAK = os.environ.get("SCOUT_PERSIST_SOAK") == "1"  # make soak: the long variants
NOMINAL_SERVER_START = 20.0  # seconds a fresh server takes on this machine class when it is not loaded
# variables every process of the topology gets from its own environment, never from the test's
OWN = ("PREFECT_", "SCOUT_PERSIST_", "FSSPEC_", "AWS_", "TOPO_", "DASK_")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS's choice for port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    """This machine's environment without any setting of the test process (Prefect's, the store's, the S3
    endpoint's), plus ``extra``: what a process on another host would start from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN)}
    env["PYTHONUNBUFFERED"] = "1"
    if os.environ.get("SCOUT_PERSIST_HMAC_KEY_FILE"):  # the session's pickle key (tests/conftest.py): one team key
        env["SCOUT_PERSIST_HMAC_KEY_FILE"] = os.environ["SCOUT_PERSIST_HMAC_KEY_FILE"]
    env.update(extra)
    return env


class Patience:
    """Limits for waits, scaled by how slow this machine is right now (measured by the server's start)."""

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor

    @classmethod
    def from_server_start(cls, seconds: float) -> Patience:
        return cls(min(8.0, max(1.0, seconds / NOMINAL_SERVER_START)))

    def seconds(self, nominal: float) -> float:
        return nominal * self.factor

    def wait_for(
        self,
        condition: Callable[[], Any],
        what: str,
        nominal: float = 60.0,
        progress: Callable[[], Any] | None = None,
        poll: float = 0.2,
        alive: Iterable[Service] = (),
    ) -> Any:
        """Poll ``condition`` until it returns a true value (returned).  Fails after ``nominal`` seconds scaled by
        the machine's slowness without the condition — counted from the last change of ``progress()`` when given —
        or as soon as a service in ``alive`` has exited."""
        limit = self.seconds(nominal)
        last = progress() if progress else None
        since = time.monotonic()
        while True:
            got = condition()
            if got:
                return got
            for service in alive:
                if service.exited():
                    raise AssertionError(f"{service.name} exited while waiting for {what}:\n{service.tail()}")
            if progress is not None:
                now = progress()
                if now != last:
                    last, since = now, time.monotonic()
            if time.monotonic() - since > limit:
                stalled = " with no progress" if progress is not None else ""
                raise AssertionError(f"{what}: not reached within {limit:.0f}s{stalled} (slowness x{self.factor:.1f})")
            time.sleep(poll)


class Service:
    """A long-running process of the topology: its own folder (working directory and log), session and env."""

    def __init__(self, name: str, folder: Path, argv: list[str], env: dict[str, str]) -> None:
        self.name, self.folder, self.argv, self.env = name, folder, argv, env
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.folder,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stopping it never signals the test
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was not started"
        return self.proc.pid

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill_tree(self) -> list[int]:
        """SIGKILL the process and every process it started (a host losing power): no handler runs anywhere.
        Returns the pids killed."""
        victims = [psutil.Process(self.pid), *self.descendants()]
        for p in victims:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(victims, timeout=30)
        assert self.proc is not None
        self.proc.wait(30)
        return [p.pid for p in victims]

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM its group and its descendants (flow runs start sessions of their own), then SIGKILL what is left."""
        if self.proc is None:
            return
        victims = self.descendants()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in victims:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, left = psutil.wait_procs(victims, timeout=grace)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        for p in left:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(30)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _get(url: str, timeout: float = 5.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return bytes(reply.read())
    except (urllib.error.URLError, OSError):
        return None


class PrefectServer(Service):
    """``prefect server start`` on 127.0.0.1 with its own PREFECT_HOME (SQLite there)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        home = folder / "home"
        env = base_env(
            PREFECT_HOME=str(home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_UI_ENABLED="false",
            PREFECT_SERVER_LOGGING_LEVEL="WARNING",
        )
        argv = [_exe("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port), "--no-ui"]
        super().__init__("prefect-server", folder, argv, env)
        self.started_in = 0.0

    def healthy(self) -> bool:
        return _get(self.url + "/health") == b"true"

    def start_and_wait(self, limit: float = 600.0) -> PrefectServer:
        began = time.monotonic()
        self.start()
        Patience(limit / 60).wait_for(self.healthy, "the Prefect server to answer /api/health", alive=[self])
        self.started_in = time.monotonic() - began
        return self


class ProcessWorker(Service):
    """``prefect worker start --type process`` polling ``pool``, in its own folder with its own PREFECT_HOME."""

    def __init__(self, name: str, folder: Path, api_url: str, pool: str, env: dict[str, str], limit: int = 4) -> None:
        full = base_env(
            PREFECT_API_URL=api_url,
            PREFECT_HOME=str(folder / "prefect-home"),
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_WORKER_PREFETCH_SECONDS="1",
            **env,
        )
        argv = [_exe("prefect"), "worker", "start", "--pool", pool, "--type", "process", "--name", name]
        argv += ["--limit", str(limit), "--install-policy", "never", "--no-create-pool-if-not-found"]
        super().__init__(name, folder, argv, full)


class DaskScheduler(Service):
    """``dask scheduler`` on 127.0.0.1 (port chosen by the OS); its address is read from its scheduler file.
    Dask deserialises task graphs on the scheduler too, so it needs the project importable (``env``'s PYTHONPATH)."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.scheduler_file = folder / "scheduler.json"
        argv = [_exe("dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
        argv += ["--scheduler-file", str(self.scheduler_file)]
        super().__init__("dask-scheduler", folder, argv, base_env(**env))

    @property
    def address(self) -> str | None:
        try:
            return str(json.loads(self.scheduler_file.read_text())["address"])
        except (OSError, ValueError, KeyError):
            return None


class DaskWorker(Service):
    """``dask worker`` (one process, no nanny: killing it kills the worker) connected to ``address``."""

    def __init__(self, name: str, folder: Path, address: str, env: dict[str, str], threads: int = 4) -> None:
        argv = [_exe("dask"), "worker", address, "--name", name, "--nworkers", "1", "--nthreads", str(threads)]
        argv += ["--no-nanny", "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(folder / "dask")]
        super().__init__(name, folder, argv, base_env(**env))


def _exe(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def run_python(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """A short-lived process (a deploy, a CLI call from an operator's shell): its output, never raising on its exit
    code (the caller asserts it, with the output in the message)."""
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
