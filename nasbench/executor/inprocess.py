"""The in-process executor: every task runs inline, now, in this process; its messages
reach the driver's handler at once (as if the task were the driver)."""
from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from nasbench.executor import Executor, Resources


class LocalMailbox:
    """Messages straight to the driver's handler."""

    def __init__(self, handle: Callable[[Any], None]):
        self.handle = handle

    def post(self, message: Any, keep_as: Hashable | None = None) -> None:
        self.handle(message)

    def kept(self, key: Hashable) -> Any | None:
        """None: a task lost in-process is this process lost; the store is what it resumes from."""
        return None


@dataclass
class Done:
    """A task that ran inline: its value, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None


class InProcessExecutor(Executor):
    name = "inprocess"
    remote = False
    capacity = 1

    def __init__(self, handle: Callable[[Any], None] = lambda message: None):
        self.resources = Resources()
        self.mailbox = LocalMailbox(handle)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Done:
        try:
            return Done(fn(*args))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:  # kept for result(), as a remote task's exception would be
            return Done(error=err)

    def wait(self, pending: Sequence[Done], timeout: float) -> list[Done]:
        return list(pending)

    def result(self, pending: Done) -> Any:
        if pending.error is not None:
            raise pending.error
        return pending.value
