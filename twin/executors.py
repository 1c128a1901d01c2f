"""Where replications run: in this process, on a local process pool, or on a Dask cluster.

A :class:`Task` is one replication of one scenario with its seed; :func:`run_tasks` runs a list of them
and returns the KPIs by ``task.key``. The engine draws every random number from streams named by
(seed, replication, station/purpose names) -- see :mod:`twin.rng` -- so a task's result does not depend
on which process runs it, in what order, or next to which other tasks: the three executors give
bit-identical :class:`~twin.kpi.ReplicationKpis` (``tests/test_executors.py`` checks this).

Ctrl-C (``KeyboardInterrupt`` in the calling process) stops the run: pending tasks are cancelled, a
local pool is shut down at once (tasks still running in it are abandoned), and the tasks that finished
are returned with ``interrupted=True``.

Scripts that use ``workers > 1`` or a ``LocalCluster`` need an ``if __name__ == "__main__":`` guard:
the worker processes start from a fresh interpreter that imports the main module again.
"""

from __future__ import annotations

import math
import multiprocessing
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional, Union

from twin.config.scenario import Scenario
from twin.engine import simulate
from twin.kpi import ReplicationKpis, replication_kpis

OnResult = Callable[["Task", ReplicationKpis], None]

DEFAULT_CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a Dask scheduler (and for its first worker) before giving up."""


@dataclass(frozen=True)
class Task:
    """One replication of one scenario. ``key`` names the task in the results (for instance
    ``(level_name, replication)``); the executors never look inside it, but it must be hashable and
    unique within one :func:`run_tasks` call."""

    key: tuple
    scenario: Scenario
    replication: int
    seed: int


class ClusterError(RuntimeError):
    """A Dask cluster cannot be used: unreachable scheduler, no workers, or workers whose software
    differs from this process (their results would not be comparable)."""


class ClusterUnreachableError(ClusterError):
    """The Dask scheduler at the given address did not answer within the connect timeout."""

    def __init__(self, address: str, timeout: float, cause: BaseException):
        self.address = address
        self.timeout = timeout
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        super().__init__(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({reason}). "
            f"Start one there with `dask scheduler --port <PORT>` and attach workers with "
            f"`dask worker {address}` (YueTwin installed, same version), check the host, port and "
            f"firewall, or run on local processes instead (workers=N, no cluster address)."
        )


def run_one(task: Task) -> ReplicationKpis:
    """Simulate one task and compute its KPIs (top level, so process pools and Dask can pickle it)."""
    return replication_kpis(simulate(task.scenario, task.replication, task.seed), task.replication)


def run_tasks(tasks: list[Task], workers: int = 1, cluster: Union[str, Any, None] = None,
              on_result: Optional[OnResult] = None,
              connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> tuple[dict[tuple, ReplicationKpis], bool]:
    """Run ``tasks``; return ``(results by task.key, interrupted)``.

    * ``cluster=None, workers=1``: one after the other in this process.
    * ``cluster=None, workers>1``: a pool of ``min(workers, len(tasks))`` local processes (a single
      task runs in this process).
    * ``cluster="tcp://HOST:PORT"``: the Dask scheduler at that address (``workers`` is ignored: the
      cluster's workers set the parallelism). A ``distributed.Client`` (left open) or a cluster object
      such as ``LocalCluster`` (a client is opened and closed here) is accepted too. An unreachable
      address raises :class:`ClusterUnreachableError` after ``connect_timeout`` seconds.

    ``on_result(task, kpis)`` is called in this process as each task finishes, in completion order. The
    returned dict follows the order of ``tasks`` whatever the completion order. If a task raises, the
    remaining work is cancelled and the exception propagates (with a note naming the task key). On
    Ctrl-C the finished tasks are returned with ``interrupted=True``.
    """
    tasks = list(tasks)
    seen: set = set()
    for task in tasks:
        if task.key in seen:
            raise ValueError(f"task keys must be unique; {task.key!r} appears more than once")
        seen.add(task.key)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    done: dict[tuple, ReplicationKpis] = {}
    if not tasks:
        return done, False
    if cluster is not None:
        interrupted = _run_dask(tasks, cluster, on_result, done, connect_timeout)
    elif workers == 1 or len(tasks) == 1:
        interrupted = _run_inline(tasks, on_result, done)
    else:
        interrupted = _run_pool(tasks, min(workers, len(tasks)), on_result, done)
    return {t.key: done[t.key] for t in tasks if t.key in done}, interrupted


def _finished(task: Task, kpis: ReplicationKpis, done: dict, on_result: Optional[OnResult]) -> None:
    done[task.key] = kpis
    if on_result is not None:
        on_result(task, kpis)


def _collect(fut: Any, task: Task, done: dict, on_result: Optional[OnResult]) -> None:
    """Take a finished future's KPIs (a pool's or Dask's); a task's error propagates naming the task."""
    try:
        kpis = fut.result()
    except Exception as exc:
        _note(exc, task)
        raise
    _finished(task, kpis, done, on_result)


def _note(exc: BaseException, task: Task) -> None:
    if hasattr(exc, "add_note"):
        exc.add_note(f"while running task {task.key!r} (replication {task.replication}, seed {task.seed})")


# ------------------------------------------------------------------------------------- in process
def _run_inline(tasks: list[Task], on_result: Optional[OnResult], done: dict) -> bool:
    try:
        for task in tasks:
            try:
                kpis = run_one(task)
            except Exception as exc:
                _note(exc, task)
                raise
            _finished(task, kpis, done, on_result)
    except KeyboardInterrupt:
        return True
    return False


# ------------------------------------------------------------------------------------- local pool
def _init_worker() -> None:
    """Pool workers ignore SIGINT: a terminal Ctrl-C reaches the whole process group, and the parent
    alone decides what happens (it stops the pool). Without this every worker would print a
    KeyboardInterrupt traceback and the pool would break mid-result."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _mp_context() -> multiprocessing.context.BaseContext:
    """The start method of pool workers, chosen deliberately: "forkserver" (POSIX), else "spawn".

    Not Linux's default "fork": fork copies the parent at an arbitrary moment, and the parent is often
    multi-threaded (the rich progress bar, a Dash server, a Dask client, the pool's own manager thread);
    forking a threaded process can deadlock on a lock another thread held, and a forked worker inherits
    whatever state the parent holds (monkeypatches, caches, an open event-log file) -- results must depend
    on the task alone. Python 3.12 warns about fork with threads, and 3.14 no longer defaults to it.

    "forkserver" starts one clean, single-threaded server process that imports the engine once (the
    preload) and forks each worker from it: workers start in milliseconds instead of re-importing numpy,
    scipy and the engine (~1.3 s each with "spawn", measured here), and later pools in the same process
    reuse the server. Where it does not exist (Windows), "spawn" gives the same isolation, slower. Either
    way scripts need an ``if __name__ == "__main__":`` guard, and a long-lived process keeps the engine
    code its server imported (restart it after editing the engine).
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["twin.executors"])  # takes effect when the server first starts
        return ctx
    return multiprocessing.get_context("spawn")


def _run_pool(tasks: list[Task], workers: int, on_result: Optional[OnResult], done: dict) -> bool:
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(), initializer=_init_worker)
    pending: dict[Future, Task] = {}
    order: dict[Future, int] = {}
    try:
        for index, task in enumerate(tasks):
            fut = pool.submit(run_one, task)
            pending[fut] = task
            order[fut] = index
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            # Completion order; futures found finished together are taken in submission order.
            for fut in sorted(finished, key=order.__getitem__):
                _collect(fut, pending.pop(fut), done, on_result)
    except KeyboardInterrupt:
        _stop_pool(pool)
        return True
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    return False


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """End the workers now and drop what has not started: a replication cannot be interrupted from
    outside, and waiting for the running ones could take minutes. The futures are left to the pool's
    manager thread (cancelling them from here races with it on Python 3.11: InvalidStateError)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
    else:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        for proc in processes:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------------- Dask
def _worker_software() -> dict[str, str]:
    """Versions that decide a replication's numbers (runs on each Dask worker)."""
    import numpy
    import simpy

    import twin

    return {"twin": twin.__version__, "numpy": numpy.__version__, "simpy": simpy.__version__}


def _connect(cluster: Union[str, Any], timeout: float) -> tuple[Any, bool, str]:
    """A Dask client for ``cluster``; returns (client, whether we own it, address for messages)."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - dask is a declared dependency
        raise ClusterError("running on a Dask cluster needs dask.distributed: "
                           "pip install 'dask[distributed]'") from exc
    if isinstance(cluster, Client):
        return cluster, False, str(getattr(cluster.scheduler, "address", cluster))
    if isinstance(cluster, str):
        address = cluster.strip()
        try:
            return Client(address, timeout=timeout, set_as_default=False), True, address
        except Exception as exc:  # OSError / TimeoutError from the comm layer, ValueError for bad addresses
            raise ClusterUnreachableError(address, timeout, exc) from exc
    address = str(getattr(cluster, "scheduler_address", cluster))
    return Client(cluster, timeout=timeout, set_as_default=False), True, address


def _check_cluster(client: Any, address: str, timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=timeout)
    except Exception as exc:
        raise ClusterError(f"the Dask scheduler at {address} has no workers after {timeout:g} s; attach "
                           f"some with `dask worker {address}` (YueTwin installed, same version)") from exc
    here = _worker_software()
    try:
        remote = client.run(_worker_software)
    except Exception as exc:
        raise ClusterError(f"the workers of the Dask cluster at {address} cannot run YueTwin tasks ({exc}); "
                           f"install YueTwin {here['twin']} in their environment") from exc
    odd = {w: v for w, v in remote.items() if v != here}
    if odd:
        lines = "; ".join(f"{w}: {v}" for w, v in sorted(odd.items()))
        raise ClusterError(f"workers of the Dask cluster at {address} run different software than this "
                           f"process ({here}): {lines}. Results would not be comparable; install the same "
                           f"versions on every worker")


def _run_dask(tasks: list[Task], cluster: Union[str, Any], on_result: Optional[OnResult], done: dict,
              timeout: float) -> bool:
    from distributed import as_completed

    try:
        client, owned, address = _connect(cluster, timeout)
    except KeyboardInterrupt:
        return True
    futures: list = []
    try:
        _check_cluster(client, address, timeout)
        by_key: dict[str, Task] = {}
        for task in tasks:
            # pure=False: never deduplicate or reuse results across calls by argument hash.
            fut = client.submit(run_one, task, pure=False)
            by_key[fut.key] = task
            futures.append(fut)
        for fut in as_completed(futures, loop=client.loop):
            _collect(fut, by_key[fut.key], done, on_result)
    except KeyboardInterrupt:
        _cancel(client, futures)
        return True
    except BaseException:
        _cancel(client, futures)
        raise
    finally:
        if owned:
            try:
                client.close(timeout=timeout)
            except Exception:
                pass
    return False


def _cancel(client: Any, futures: list) -> None:
    if futures:
        try:
            client.cancel(futures, force=True)
        except Exception:
            pass


# ------------------------------------------------------------------------------------- checking
def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return type(a) is type(b) and a == b


def _diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            out.append(f"{path}: keys differ ({sorted(set(a) ^ set(b))})")
        for k in a:
            if k in b:
                _diff(a[k], b[k], f"{path}.{k}", out)
    elif not _same(a, b):
        out.append(f"{path}: {a!r} != {b!r}")


def result_differences(a: dict[tuple, ReplicationKpis], b: dict[tuple, ReplicationKpis]) -> list[str]:
    """Where two result sets differ, value by value; empty when they are bit-identical (NaN equals NaN,
    0.0 differs from -0.0)."""
    out: list[str] = []
    if set(a) != set(b):
        out.append(f"task keys differ: only in first {[k for k in a if k not in b]}, "
                   f"only in second {[k for k in b if k not in a]}")
    elif list(a) != list(b):
        out.append("same task keys in a different order")
    for key in a:
        if key in b:
            _diff(asdict(a[key]), asdict(b[key]), repr(key), out)
    return out
