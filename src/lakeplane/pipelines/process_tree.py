"""A step's process tree: its resident memory and CPU time, a watchdog that bounds it, killing it whole.

A limit set inside a process (DuckDB's ``memory_limit``, an RLIMIT) bounds that process only; the
JVM that pyspark starts, or any program a Python step runs, is a child with memory of its own. The
watchdog samples the step process and all its descendants with psutil and kills the whole tree once
their summed RSS passes the limit, so no child escapes its step's budget.

The same samples measure what the step costs: its resident memory integrated over time (GB-seconds)
and the CPU time of every process of the tree, counted once each, a child that ended included.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

import psutil

#: How often the watchdog samples the tree: at a few hundred MB/s of allocation, the tree can overshoot
#: its limit by about that rate times this interval before it is stopped.
SAMPLE_S = 0.05
KILL_WAIT_S = 10.0


@dataclass
class _CpuSeen:
    """One member's CPU times when last seen: its own, and those of the children it waited for."""

    parent: int | None
    own: float = 0.0
    waited: float = 0.0
    #: Whether the latest sample read it (an ended member keeps its last times).
    alive: bool = True


class ProcessTree:
    """A process and every descendant it has been seen with (kept after they are re-parented).

    Besides listing its members, the tree keeps the CPU times each member was last seen with, so a
    member that ended still counts for what it used (:meth:`cpu_seconds`).

    Args:
        pid: the root process (a step).
    """

    def __init__(self, pid: int) -> None:
        self._seen: dict[int, psutil.Process] = {}
        self._cpu: dict[tuple[int, float], _CpuSeen] = {}
        try:
            self.root: psutil.Process | None = psutil.Process(pid)
        except psutil.NoSuchProcess:  # it ended already
            self.root = None

    def members(self) -> list[psutil.Process]:
        """The live processes of the tree: the root, its descendants now, and those seen earlier."""
        if self.root is not None:
            with contextlib.suppress(psutil.Error):  # the root is gone; its former children may run
                for child in self.root.children(recursive=True):
                    self._seen.setdefault(child.pid, child)
        known = [self.root, *self._seen.values()] if self.root is not None else list(self._seen.values())
        # ``is_running`` compares creation times, so a recycled pid is not mistaken for a member.
        return [p for p in known if p.is_running()]

    def rss_mb(self) -> float:
        """Summed resident memory of the live tree, in MiB (CPU times are read on the way)."""
        for seen in self._cpu.values():
            seen.alive = False
        total = 0
        for process in self.members():
            with contextlib.suppress(psutil.Error), process.oneshot():  # it ended while being read
                key = (process.pid, process.create_time())
                if key not in self._cpu:
                    self._cpu[key] = _CpuSeen(parent=process.ppid())
                seen = self._cpu[key]
                seen.alive = True  # a zombie too: its parent has not waited for it yet
                times = process.cpu_times()
                seen.own = times.user + times.system
                seen.waited = times.children_user + times.children_system
                total += process.memory_info().rss
        return total / 2**20

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the tree used, as of the last :meth:`rss_mb`, in seconds.

        Each member counts with the times it was last seen with, so one that ended still counts. A
        parent's times also hold those of the children it waited for (``children_user``,
        ``children_system``); of these only what its ended children's last-seen times do not account
        for is added (children too short-lived to be seen, the last moments of those that were), so
        no child is counted twice.
        """
        ended: dict[int, float] = {}
        for seen in self._cpu.values():
            if seen.parent is not None and not seen.alive:
                ended[seen.parent] = ended.get(seen.parent, 0.0) + seen.own + seen.waited
        return sum(
            seen.own + max(seen.waited - ended.get(pid, 0.0), 0.0) for (pid, _), seen in self._cpu.items()
        )

    def kill(self) -> None:
        """SIGKILL every process of the tree and wait for them to end."""
        processes = self.members()
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(processes, timeout=KILL_WAIT_S)


@dataclass(frozen=True)
class TreeUsage:
    """What a process tree used while it was watched.

    Attributes:
        seconds: how long it was watched (wall time).
        cpu_seconds: CPU time of all its processes, each counted once.
        memory_gb_seconds: its summed resident memory integrated over ``seconds`` (GiB x s).
        peak_mb: its summed resident memory at peak, in MiB.
    """

    seconds: float
    cpu_seconds: float
    memory_gb_seconds: float
    peak_mb: float


class MemoryWatchdog(threading.Thread):
    """Samples a process tree's RSS and CPU time, keeps its peak and integral, and kills the tree
    past ``limit_mb``.

    Args:
        pid: the root of the tree (a step process).
        limit_mb: the most the tree may hold resident; None only measures.
        sample_s: seconds between samples.
    """

    def __init__(self, pid: int, limit_mb: float | None, sample_s: float = SAMPLE_S) -> None:
        super().__init__(name=f"lakeplane-memory-{pid}", daemon=True)
        self.tree = ProcessTree(pid)
        self.limit_mb = limit_mb
        self.sample_s = sample_s
        self.peak_mb = 0.0
        #: The tree's RSS when it was killed for passing the limit; None while within it.
        self.exceeded_mb: float | None = None
        self._mb_seconds = 0.0
        self._since = self._last = time.monotonic()
        self._done = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._done.is_set():
            rss = self.sample()
            if self.limit_mb is not None and rss > self.limit_mb:
                self.exceeded_mb = rss
                self.tree.kill()
                return
            self._done.wait(self.sample_s)

    def sample(self) -> float:
        """Read the tree once (the thread does every ``sample_s``): its RSS in MiB, which is added to
        the peak and the integral."""
        with self._lock:
            rss = self.tree.rss_mb()
            now = time.monotonic()
            # Each sample stands for the time since the one before: the watched span is covered
            # whatever the delays between samples on a busy machine.
            self._mb_seconds += rss * (now - self._last)
            self._last = now
            self.peak_mb = max(self.peak_mb, rss)
            return rss

    def usage(self) -> TreeUsage:
        """What the tree used from the start of watching to the latest sample."""
        with self._lock:
            return TreeUsage(
                seconds=self._last - self._since,
                cpu_seconds=self.tree.cpu_seconds(),
                memory_gb_seconds=self._mb_seconds / 1024,
                peak_mb=self.peak_mb,
            )

    def stop(self) -> None:
        """Stop sampling (the tree is left alone)."""
        self._done.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join()
