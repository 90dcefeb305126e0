"""A transient Spark standalone cluster on loopback: born for a job, gone after it.

The master and each worker are JVMs started from the pyspark package's own ``spark-class``, each in
a process group of its own; a worker's executors are its children and share its group. Stopping
the cluster ends every group (TERM, then KILL after a grace period) and checks that no process of
them is left. Killing one worker's group is what losing a Spot node does to an EMR task node.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import psutil

from lakeplane.engines.spark.runtime import java_options, spark_home
from lakeplane.errors import EngineError

GRACE_S = 3.0
#: The master and workers only schedule: a quick-starting JVM (client compiler, serial GC) leaves
#: the cores to the driver and executors starting next to them.
DAEMON_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TransientCluster:
    """A master and ``workers`` workers on 127.0.0.1; use as a context manager.

    Args:
        workers: how many workers to start.
        cores: cores each worker offers.
        memory: memory each worker offers (``2g``).
        work_dir: a folder for logs and executor work dirs; created, kept for inspection.
        start_timeout_s: how long the master and every worker may take to come up.
    """

    def __init__(
        self, workers: int, cores: int, memory: str, work_dir: Path, start_timeout_s: float = 60.0
    ) -> None:
        self.workers = workers
        self.cores = cores
        self.memory = memory
        self.work_dir = work_dir
        self.start_timeout_s = start_timeout_s
        self.port = 0
        self.ui_port = 0
        self.master_process: subprocess.Popen[bytes] | None = None
        self.worker_processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []
        self.started_in_s = 0.0

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the master and the workers; return the master URL once every worker is alive.

        Raises:
            EngineError: a daemon exited or did not come up in time (the cluster is stopped).
        """
        master = self.launch()
        self.wait_alive()
        return master

    def launch(self) -> str:
        """Start the master and, without waiting for them, the workers; return the master URL as soon
        as the master listens, so a driver can start while the workers come up."""
        started = time.perf_counter()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port, self.ui_port = free_port(), free_port()
        try:
            self.master_process = self._launch(
                "master",
                [
                    "org.apache.spark.deploy.master.Master",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--webui-port",
                    str(self.ui_port),
                ],
            )
            self._wait(lambda: _listens(self.port), "the master to listen")
            for index in range(self.workers):
                folder = self.work_dir / f"worker-{index}"
                folder.mkdir(exist_ok=True)
                self.worker_processes.append(
                    self._launch(
                        f"worker-{index}",
                        [
                            "org.apache.spark.deploy.worker.Worker",
                            self.master_url,
                            "--host",
                            "127.0.0.1",
                            "--cores",
                            str(self.cores),
                            "--memory",
                            self.memory,
                            "--work-dir",
                            str(folder),
                            "--webui-port",
                            str(free_port()),
                        ],
                    )
                )
        except BaseException:
            self.stop()
            raise
        self.started_in_s = round(time.perf_counter() - started, 2)
        return self.master_url

    def wait_alive(self) -> None:
        """Wait until every worker has registered with the master (the cluster is stopped if not)."""
        started = time.perf_counter() - self.started_in_s
        try:
            self._wait(lambda: self.alive_workers() >= self.workers, f"{self.workers} workers")
        except BaseException:
            self.stop()
            raise
        self.started_in_s = round(time.perf_counter() - started, 2)

    def _launch(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.work_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        env = {
            **os.environ,
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(self.work_dir),
            "SPARK_NO_DAEMONIZE": "1",
            "SPARK_DAEMON_JAVA_OPTS": f"{java_options()} {DAEMON_JVM}",
            "SPARK_DAEMON_MEMORY": "512m",
        }
        return subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=self.work_dir,
        )

    def alive_workers(self) -> int:
        """Workers the master counts as alive (0 when the master does not answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=2) as reply:
                state = json.load(reply)
        except (OSError, ValueError):
            return 0
        return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            for process in [self.master_process, *self.worker_processes]:
                if process is not None and process.poll() is not None:
                    raise EngineError(
                        f"Spark cluster: a daemon exited with code {process.returncode} "
                        f"while starting (logs in {self.work_dir})",
                        retryable=True,
                    )
            if ready():
                return
            time.sleep(0.1)
        raise EngineError(
            f"Spark cluster: no {what} within {self.start_timeout_s:.0f} s (logs in {self.work_dir})",
            retryable=True,
        )

    def kill_worker(self, index: int) -> None:
        """End worker ``index`` and its executors at once (SIGKILL), as losing the node would."""
        process = self.worker_processes[index]
        _signal_group(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def process_ids(self) -> list[int]:
        """Every live process of this cluster: the daemons and the executors they started."""
        groups = {p.pid for p in [self.master_process, *self.worker_processes] if p is not None}
        return [pid for pid, group in process_groups() if group in groups]

    def stop(self) -> None:
        """End every daemon and executor: TERM, then KILL what is left after a grace period."""
        processes = [p for p in [*self.worker_processes, self.master_process] if p is not None]
        for process in processes:
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        while self.process_ids() and time.monotonic() < deadline:
            time.sleep(0.1)
        for process in processes:
            _signal_group(process.pid, signal.SIGKILL)
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while self.process_ids() and time.monotonic() < deadline:  # executors reparented to init
            time.sleep(0.1)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _listens(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def process_groups() -> list[tuple[int, int]]:
    """(pid, process group) of every process on the machine that is not a zombie."""
    found = []
    for process in psutil.process_iter(["status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):  # ended since it was listed
            found.append((process.pid, os.getpgid(process.pid)))
    return found
