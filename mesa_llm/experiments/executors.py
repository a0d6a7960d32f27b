"""Where runs execute: local worker processes, or a Ray cluster. Both run the same
:func:`~mesa_llm.experiments.worker.execute_run` on the same plain-dict tasks, so results do not
depend on the executor.

The sweep drives an executor with :meth:`Executor.submit` (never more than ``capacity`` in flight,
so the budget can stop dispatch at any point) and :meth:`Executor.wait` (finished rows, as they come).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from mesa_llm.experiments.worker import FAILED, execute_run


class ExecutorError(RuntimeError):
    """An executor that cannot start (Ray missing, cluster unreachable); one line."""


class Executor(Protocol):
    """Runs tasks: ``capacity`` at once; up to ``prefetch`` handed over, so a worker finishing a run
    finds the next one waiting instead of idling while the sweep records the last row."""

    capacity: int
    prefetch: int
    #: one line for the user about how the executor was set up (e.g. workers capped), or None
    note: str | None

    def submit(self, tag: str, task: dict[str, Any]) -> None:
        """Start one task; its row comes back from :meth:`wait` under ``tag``."""

    def wait(self) -> list[tuple[str, dict[str, Any]]]:
        """Block until at least one task finishes; (tag, row) of every finished task."""

    def pending(self) -> int:
        """Tasks in flight."""

    def close(self) -> None:
        """Stop the workers (tasks in flight are abandoned)."""


def default_workers() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _warm_up() -> None:
    # import the model once per worker, before the first task, so no run pays for it
    import mesa_llm.simulation  # noqa: F401


def _crashed(exc: BaseException) -> dict[str, Any]:
    return {
        "status": FAILED, "error": f"the worker process died ({type(exc).__name__}: {exc})"[:500], "metrics": {},
        "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "recording": None, "wall_s": 0.0,
    }  # fmt: skip


class ProcessExecutor:
    """Worker processes on this machine (``concurrent.futures``; forkserver on Linux, else spawn —
    never fork: a forked copy of a process with threads, e.g. a Ray or litellm client, can deadlock)."""

    def __init__(self, workers: int | None = None) -> None:
        self.capacity = workers or default_workers()
        self.prefetch = 2 * self.capacity
        self.note: str | None = None  # run_sweep caps workers at the cores before building it
        method = "forkserver" if sys.platform.startswith("linux") else "spawn"
        self._context = multiprocessing.get_context(method)
        if method == "forkserver":
            # the fork server imports the model once; every worker forks from it already warm
            self._context.set_forkserver_preload(["mesa_llm.experiments.worker", "mesa_llm.simulation"])
            from multiprocessing import forkserver

            forkserver.ensure_running()  # starts now, preloading while the sweep plans its runs
        self._pool = self._new_pool()
        self._futures: dict[Future[dict[str, Any]], str] = {}

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.capacity, mp_context=self._context, initializer=_warm_up)

    def submit(self, tag: str, task: dict[str, Any]) -> None:
        """Start one task in a worker process."""
        try:
            future = self._pool.submit(execute_run, task)
        except BrokenProcessPool:
            self._pool = self._new_pool()  # a worker died earlier: a fresh pool for the rest
            future = self._pool.submit(execute_run, task)
        self._futures[future] = tag

    def wait(self) -> list[tuple[str, dict[str, Any]]]:
        """Rows of the tasks that finished (at least one)."""
        if not self._futures:
            return []
        done, _ = wait_futures(list(self._futures), return_when=FIRST_COMPLETED)
        out = []
        for future in done:
            tag = self._futures.pop(future)
            try:
                out.append((tag, future.result()))
            except Exception as exc:  # a worker killed or out of memory: that run is a failed row
                out.append((tag, _crashed(exc)))
        return out

    def pending(self) -> int:
        """Tasks in flight."""
        return len(self._futures)

    def close(self) -> None:
        """Stop the pool; runs still in flight (an interrupt) are abandoned, not waited for: their
        workers are terminated, and the runs have no row, so the next invocation runs them."""
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._futures:
            for process in processes:  # otherwise the interpreter's exit would wait for them
                with contextlib.suppress(Exception):
                    process.terminate()
            self._futures.clear()


class RayExecutor:
    """Tasks on a Ray cluster: ``address`` (``ray://`` or ``auto``) or, without one, a local cluster
    of ``workers`` CPUs started for this sweep. Needs ``pip install "mesa_llm[ray]"``."""

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorError('the ray executor needs Ray: pip install "mesa_llm[ray]"') from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, include_dashboard=False, log_to_driver=False)
                else:
                    ray.init(num_cpus=workers or default_workers(), include_dashboard=False, log_to_driver=False)
            except Exception as exc:  # unreachable address, port clash, ...
                raise ExecutorError(f"cannot start Ray ({' '.join(str(exc).split())[:300]})") from None
            self._started = True
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.note: str | None = None  # set when ``workers`` is capped at the cluster's CPUs
        if workers is not None and workers > cpus:
            self.note = f"--workers {workers} is more than the {cpus} CPUs of the Ray cluster: using {cpus}"
            workers = cpus
        self.capacity = workers or cpus
        self.prefetch = 2 * self.capacity
        self._remote = ray.remote(num_cpus=1, max_retries=0)(execute_run)
        self._refs: dict[Any, str] = {}

    def submit(self, tag: str, task: dict[str, Any]) -> None:
        """Start one task on the cluster."""
        self._refs[self._remote.remote(task)] = tag

    def wait(self) -> list[tuple[str, dict[str, Any]]]:
        """Rows of the tasks that finished (at least one)."""
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        out = []
        for ref in ready:
            tag = self._refs.pop(ref)
            try:
                out.append((tag, self._ray.get(ref)))
            except Exception as exc:  # the worker died
                out.append((tag, _crashed(exc)))
        return out

    def pending(self) -> int:
        """Tasks in flight."""
        return len(self._refs)

    def close(self) -> None:
        """Cancel what is in flight; shut down the cluster if this executor started it."""
        for ref in list(self._refs):
            with contextlib.suppress(Exception):  # already finished or gone
                self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._started:
            self._ray.shutdown()


def make_executor(kind: str, workers: int | None = None, address: str | None = None) -> Executor:
    """``process`` or ``ray``; ExecutorError (one line) if it cannot start."""
    if kind == "process":
        if address:
            raise ExecutorError("--ray-address needs --executor ray")
        return ProcessExecutor(workers)
    if kind == "ray":
        return RayExecutor(workers, address)
    raise ExecutorError(f"unknown executor {kind!r}: use process or ray")
