"""Executors: where the work of a command runs, behind one small interface.

The driver (the ``nasbench`` process) owns the store; tasks (a whole (method, seed) run,
one candidate's training) run wherever the executor puts them and send what must be
stored back through a :class:`Mailbox`. Two executors: in-process (the default: the task
runs inline, its messages are handled at once) and Ray (tasks in Ray workers on this
machine or a cluster, each declaring the :class:`Resources` it needs). Nothing here
imports torch or Ray until a Ray executor is made.
"""
from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nasbench.errors import NasbenchError

EXECUTORS = ("inprocess", "ray")


class TaskLost(Exception):
    """A task's worker process or node died under it (not an error of the task's own):
    the driver retries it, resuming from what the store holds."""


@dataclass(frozen=True)
class Resources:
    """What each task asks for: CPUs (torch's threads in the task: the whole part, at
    least 1) and GPUs (fractions share a GPU among small tasks)."""

    cpus: float = 1.0
    gpus: float = 0.0

    def threads(self) -> int:
        return max(1, int(self.cpus))


class Mailbox(Protocol):
    """How a task sends the driver what must be stored (trials, checkpoints, outcomes) and
    progress; picklable, so that a task passes it on to the tasks it starts."""

    def post(self, message: Any, keep_as: Hashable | None = None) -> None:
        """Send ``message``; with ``keep_as``, also keep it as the latest under that key
        (an epoch checkpoint), for a retried task to resume from."""

    def kept(self, key: Hashable) -> Any | None:
        """The latest message kept under ``key`` in this command, or None."""


class Pending(Protocol):
    """A submitted task, to :meth:`Executor.wait` on and take the :meth:`Executor.result` of."""


class Executor(ABC):
    """Runs tasks: ``fn(*args)``, module-level functions of picklable arguments."""

    name: str
    resources: Resources
    remote: bool
    """Tasks run in other processes (their progress comes as messages, not bars)."""
    mailbox: Mailbox
    capacity: int
    """How many tasks run at once."""

    def share(self, value: Any) -> Any:
        """``value`` as an argument of many tasks (Ray: put once in the object store)."""
        return value

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any) -> Pending:
        """Start ``fn(*args)`` with :attr:`resources` (in-process: run it now)."""

    @abstractmethod
    def wait(self, pending: Sequence[Pending], timeout: float) -> list[Pending]:
        """Those of ``pending`` that are done, waiting up to ``timeout`` seconds for one;
        messages that arrived meanwhile are handed to the driver's handler."""

    @abstractmethod
    def result(self, pending: Pending) -> Any:
        """What the task returned; its exception if it raised; :class:`TaskLost` where
        its worker died."""

    def map(self, fn: Callable[..., Any], argsets: Sequence[tuple]) -> list[Any]:
        """``fn(*args)`` for each of ``argsets``, as many at once as the resources allow,
        in order."""
        pending = [self.submit(fn, *args) for args in argsets]
        return [self.result(p) for p in pending]

    def forget(self, key: Hashable) -> None:
        """Drop the message kept under ``key`` (its training is over)."""

    def for_tasks(self) -> "Executor":
        """The executor a task uses for the tasks it starts itself (picklable)."""
        return self

    def close(self) -> None:
        """Let go of workers and connections (idempotent)."""


def check_executor(name: str | None, *, workers: int = 1, address: str | None = None,
                   resources: Resources | None = None, cpu_count: int | None = None) -> str:
    """The executor a command asks for (without a name: in-process for one worker, Ray on a
    local instance for more), once every option that can be checked before anything starts
    is (bad input: a :class:`NasbenchError`). Imports neither torch nor Ray, so that a command
    checks its options first."""
    name = name or ("inprocess" if workers == 1 and address is None else "ray")
    if name not in EXECUTORS:
        raise NasbenchError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")
    if name == "inprocess":
        if workers != 1 or address is not None or resources is not None:
            raise NasbenchError("--workers, --address, --cpus-per-task and --gpus-per-task need --executor ray "
                                "(the in-process executor runs one task at a time in this process)")
        return name
    if address is not None and workers != 1:
        raise NasbenchError("--workers sizes a local Ray instance; on a cluster (--address) its resources "
                            "decide how many tasks run at once: drop --workers")
    if address is not None and address != "auto":
        _check_reachable(address)
    cores = cpu_count or os.cpu_count() or 1
    if address is None and resources is not None and resources.cpus > cores:  # a local instance runs here alone
        raise NasbenchError(f"--cpus-per-task {resources.cpus:g}: this machine has {cores} CPUs (a local Ray "
                            "instance runs on it alone; --address joins a cluster)")
    return name


def _check_reachable(address: str) -> None:
    """Fail at once on an address nothing listens at (``ray.init`` would retry for a minute)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise NasbenchError(f"--address {address!r}: give HOST:PORT of the cluster's head (or auto)")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as err:
        raise NasbenchError(f"no Ray cluster answers at {address} ({err.strerror or err}): start its head with "
                            f"`ray start --head --port {port}`, or drop --address for a local instance") from None


def make_executor(name: str | None, *, workers: int = 1, address: str | None = None,
                  resources: Resources | None = None, handle: Callable[[Any], None] = lambda message: None,
                  cpu_count: int | None = None) -> Executor:
    """The executor a command asked for (checked by :func:`check_executor`); ``handle`` is
    the driver's handler of tasks' messages."""
    name = check_executor(name, workers=workers, address=address, resources=resources, cpu_count=cpu_count)
    if name == "inprocess":
        from nasbench.executor.inprocess import InProcessExecutor

        return InProcessExecutor(handle)
    from nasbench.executor.ray_executor import RayExecutor

    return RayExecutor.start(address=address, workers=workers, resources=resources, handle=handle,
                             cpu_count=cpu_count)
