"""Progress for long work: tqdm bars on stderr, and durations as people read them.

Bars are off where stderr is not a terminal or reports no width (logs and --json output
stay clean) unless NASBENCH_PROGRESS=1; there the first bar that stays off says so, once
per stderr stream, so that a user does not wait before a blank screen wondering."""
from __future__ import annotations

import os
import sys
import weakref

from tqdm.auto import tqdm

FORCE = "NASBENCH_PROGRESS"
_told: weakref.WeakSet = weakref.WeakSet()
"""The stderr streams already told why there are no bars (one per process, one per
in-process CLI call with its own captured stderr)."""


def progress_bar(total: int | None, desc: str, unit: str = "it", enabled: bool = True, initial: int = 0,
                 bar_format: str | None = None) -> tqdm:
    """A bar, unless ``enabled`` is False (``--no-progress``: silently none), stderr cannot
    show one (said once) or NASBENCH_PROGRESS says otherwise (1 forces bars, 0 hides them)."""
    forced = os.environ.get(FORCE)
    if not enabled or forced is not None:
        disable = not enabled or forced == "0"
    else:
        reason = _why_no_bars()
        disable = reason is not None
        if disable and sys.stderr not in _told:
            _told.add(sys.stderr)
            print(f"nasbench: no progress bars: {reason} ({FORCE}=1 forces them, --no-progress silences this)",
                  file=sys.stderr, flush=True)
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False, initial=initial, dynamic_ncols=True,
                bar_format=bar_format)


def _why_no_bars() -> str | None:
    """Why stderr cannot show bars, or None where it can."""
    try:
        if not sys.stderr.isatty():
            return "stderr is not a terminal"
        columns = os.get_terminal_size(sys.stderr.fileno()).columns
    except (AttributeError, OSError, ValueError):  # closed, replaced by an object without a descriptor
        return "stderr is not a terminal"
    return None if columns > 0 else "the terminal reports no width"


def duration(seconds: float) -> str:
    """``42s``, ``4m12s``, ``2h05m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
