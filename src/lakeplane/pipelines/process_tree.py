"""A step's process tree: its resident memory, a watchdog that bounds it, and killing it whole.

A limit set inside a process (DuckDB's ``memory_limit``, an RLIMIT) bounds that process only; the
JVM that pyspark starts, or any program a Python step runs, is a child with memory of its own. The
watchdog samples the step process and all its descendants with psutil and kills the whole tree once
their summed RSS passes the limit, so no child escapes its step's budget.
"""

from __future__ import annotations

import contextlib
import threading

import psutil

#: How often the watchdog samples the tree: at a few hundred MB/s of allocation, the tree can overshoot
#: its limit by about that rate times this interval before it is stopped.
SAMPLE_S = 0.05
KILL_WAIT_S = 10.0


class ProcessTree:
    """A process and every descendant it has been seen with (kept after they are re-parented).

    Args:
        pid: the root process (a step).
    """

    def __init__(self, pid: int) -> None:
        self._seen: dict[int, psutil.Process] = {}
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
        """Summed resident memory of the live tree, in MiB."""
        total = 0
        for process in self.members():
            with contextlib.suppress(psutil.Error):  # ended between listing and reading
                total += process.memory_info().rss
        return total / 2**20

    def kill(self) -> None:
        """SIGKILL every process of the tree and wait for them to end."""
        processes = self.members()
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(processes, timeout=KILL_WAIT_S)


class MemoryWatchdog(threading.Thread):
    """Samples a process tree's RSS, keeps its peak, and kills the tree past ``limit_mb``.

    Args:
        pid: the root of the tree (a step process).
        limit_mb: the most the tree may hold resident; None only records the peak.
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
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            rss = self.tree.rss_mb()
            self.peak_mb = max(self.peak_mb, rss)
            if self.limit_mb is not None and rss > self.limit_mb:
                self.exceeded_mb = rss
                self.tree.kill()
                return
            self._done.wait(self.sample_s)

    def stop(self) -> None:
        """Stop sampling (the tree is left alone)."""
        self._done.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join()
