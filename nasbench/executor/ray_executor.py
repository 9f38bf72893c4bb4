"""The Ray executor: tasks in Ray workers, on a local instance this command starts
(``--workers N``: N tasks at once) or on a running cluster (``--address``), each task
asking for its :class:`~nasbench.executor.Resources`. Tasks send their messages to a
mailbox actor the driver empties while it waits; a task whose worker or node dies is
:class:`~nasbench.executor.TaskLost` to the driver, which resumes it from the store."""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from nasbench.errors import NasbenchError
from nasbench.executor import Executor, Resources, TaskLost

TASK_RETRIES = 3
"""Times Ray reruns a task a task started (a candidate) when its worker dies; it resumes
from the epoch checkpoint the mailbox kept. The driver's own tasks are retried by the driver."""


class Mailroom:
    """The mailbox actor: messages in arrival order until the driver takes them, and the
    latest message kept under each key."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.latest: dict[Hashable, Any] = {}

    def post(self, message: Any, keep_as: Hashable | None) -> None:
        self.messages.append(message)
        if keep_as is not None:
            self.latest[keep_as] = message

    def kept(self, key: Hashable) -> Any | None:
        return self.latest.get(key)

    def forget(self, key: Hashable) -> None:
        self.latest.pop(key, None)

    def take(self) -> list[Any]:
        taken, self.messages = self.messages, []
        return taken


class RayMailbox:
    """A task's handle on the mailbox actor. A post returns once the actor has the message,
    so that an epoch checkpoint is safe before the next epoch begins."""

    def __init__(self, actor: Any):
        self.actor = actor

    def post(self, message: Any, keep_as: Hashable | None = None) -> None:
        import ray

        ray.get(self.actor.post.remote(message, keep_as))

    def kept(self, key: Hashable) -> Any | None:
        import ray

        return ray.get(self.actor.kept.remote(key))


def _call(fn: Callable[..., Any], threads: int, *args: Any) -> Any:
    """Run ``fn`` in a worker with ``threads`` torch threads (the task's CPUs)."""
    import torch

    torch.set_num_threads(threads)
    return fn(*args)


class RayExecutor(Executor):
    name = "ray"
    remote = True

    def __init__(self, resources: Resources, mailbox: RayMailbox, capacity: int, retries: int,
                 handle: Callable[[Any], None] | None = None):
        self.resources, self.mailbox, self.capacity, self.retries = resources, mailbox, capacity, retries
        self.handle = handle
        """The driver's handler of messages (None in a task: tasks do not empty the mailbox)."""
        self.submitted: list[Any] = []

    @classmethod
    def start(cls, *, address: str | None, workers: int, resources: Resources | None,
              handle: Callable[[Any], None], cpu_count: int | None = None) -> "RayExecutor":
        """Connect to the cluster at ``address`` (``auto``: the one started on this machine
        with ``ray start``), or start a local instance sized for ``workers`` tasks at once;
        then check that some node can hold one task's resources (the options themselves are
        :func:`~nasbench.executor.check_executor`'s, which :func:`~nasbench.executor.make_executor` calls first)."""
        try:
            import ray
        except ImportError:
            raise NasbenchError("--executor ray needs Ray: pip install 'ray>=2.40'") from None
        cores = cpu_count or os.cpu_count() or 1
        resources = resources or Resources(cpus=1.0 if address else max(1, cores // workers))
        options = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            if address is None:
                ray.init(address="local", num_cpus=_local_cpus(workers, resources), **options)
            else:
                ray.init(address=address, **options)
        except (ConnectionError, RuntimeError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            if address is None:
                raise NasbenchError(f"cannot start a local Ray instance: {first}") from None
            raise NasbenchError(f"cannot join the Ray cluster at {address}: {first} (start one with "
                                "`ray start --head`, or drop --address for a local instance)") from None
        _messages_to_stderr()
        try:
            capacity = _capacity(ray.nodes(), resources)
        except NasbenchError:
            ray.shutdown()
            raise
        mailroom = ray.remote(num_cpus=0)(Mailroom).remote()
        return cls(resources, RayMailbox(mailroom), capacity, retries=0, handle=handle)

    def share(self, value: Any) -> Any:
        import ray

        return ray.put(value)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        import ray

        task = ray.remote(_call).options(num_cpus=self.resources.cpus, num_gpus=self.resources.gpus,
                                         max_retries=self.retries, name=getattr(fn, "__name__", "task"))
        ref = task.remote(fn, self.resources.threads(), *args)
        if self.handle is not None:
            self.submitted.append(ref)
        return ref

    def wait(self, pending: Sequence[Any], timeout: float) -> list[Any]:
        import ray

        ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
        self.deliver()
        return ready

    def deliver(self) -> None:
        """Hand the messages that arrived to the driver's handler, in order."""
        import ray

        if self.handle is not None:
            for message in ray.get(self.mailbox.actor.take.remote()):
                self.handle(message)

    def forget(self, key: Hashable) -> None:
        self.mailbox.actor.forget.remote(key)

    def result(self, pending: Any) -> Any:
        import ray
        from ray.exceptions import RayError, RayTaskError

        try:
            return ray.get(pending)
        except RayTaskError as err:
            cause = err.cause
            raise cause if isinstance(cause, Exception) else RuntimeError(str(err)) from None
        except RayError as err:  # the worker, its node or the object is gone: not the task's fault
            raise TaskLost(str(err).splitlines()[0]) from None

    def for_tasks(self) -> "RayExecutor":
        return RayExecutor(self.resources, self.mailbox, self.capacity, retries=TASK_RETRIES)

    def close(self) -> None:
        import ray

        if self.handle is None or not ray.is_initialized():
            return
        _, unfinished = ray.wait(self.submitted, num_returns=len(self.submitted), timeout=0) if self.submitted else ([], [])
        for ref in unfinished:  # force-cancelling a finished task aborts the driver ("complete task that was not pending")
            ray.cancel(ref, force=True)
        self.submitted = []
        ray.shutdown()

    def __getstate__(self) -> dict[str, Any]:  # a task's copy: no handler, no refs of the driver's
        return {**self.__dict__, "handle": None, "submitted": []}


def _messages_to_stderr() -> None:
    """Ray prints its raylet's messages (a worker died, and why) on the driver's stdout,
    where ``--json`` lines go: send them to stderr, with nasbench's own notes."""
    from ray._private import worker

    shown = getattr(worker, "print_to_stdstream", None)
    if shown is not None and not getattr(shown, "to_stderr", False):
        def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
            shown({**data, "is_err": True}, ignore_prefix)

        to_stderr.to_stderr = True
        worker.print_to_stdstream = to_stderr


def _local_cpus(workers: int, resources: Resources) -> int:
    """The CPUs of a local instance that runs ``workers`` tasks of ``resources`` at once
    (Ray counts whole CPUs: rounded up, never fewer tasks at once than asked)."""
    return max(1, math.ceil(workers * resources.cpus - 1e-9))


def _capacity(nodes: list[dict[str, Any]], resources: Resources) -> int:
    """How many tasks of ``resources`` the live nodes hold at once; an error where none holds one."""
    alive = [node["Resources"] for node in nodes if node.get("Alive")]
    if resources.gpus > 0 and not any(node.get("GPU", 0) > 0 for node in alive):
        raise NasbenchError(f"--gpus-per-task {resources.gpus:g}: the Ray cluster has no GPU "
                            "(use --gpus-per-task 0 and --device cpu)")
    most_gpus = max((node.get("GPU", 0) for node in alive), default=0)
    if resources.gpus > most_gpus:
        raise NasbenchError(f"--gpus-per-task {resources.gpus:g}: no node of the Ray cluster has that many GPUs "
                            f"(the most: {most_gpus:g})")
    most_cpus = max((node.get("CPU", 0) for node in alive), default=0)
    if resources.cpus > most_cpus:
        raise NasbenchError(f"--cpus-per-task {resources.cpus:g}: no node of the Ray cluster has that many CPUs "
                            f"(the most: {most_cpus:g})")
    return sum(min(int(node.get("CPU", 0) // resources.cpus) if resources.cpus else 1_000_000,
                   int(node.get("GPU", 0) // resources.gpus) if resources.gpus else 1_000_000) for node in alive)
