"""The lifecycle a stored run or ranking shares around its work."""
from __future__ import annotations

import traceback
from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def failure_recorded(fail: Callable[[str, str], None]) -> Iterator[None]:
    """The lifecycle of a stored run or ranking around its work: an interruption is stored
    as ``interrupted`` and any other exception as ``failed`` with its one-line message
    (``fail(error, status)``), and then propagates; the same command resumes either."""
    try:
        yield
    except KeyboardInterrupt:
        fail("interrupted by the user", "interrupted")
        raise
    except Exception as err:
        fail(error_line(err), "failed")
        raise


def error_line(err: BaseException) -> str:
    """An exception as the one line a failed run, ranking or trial stores."""
    return "".join(traceback.format_exception_only(err)).strip()
