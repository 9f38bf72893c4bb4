"""Progress bars for long work (tqdm on stderr; silent when stderr is not a terminal
unless NASBENCH_PROGRESS=1, so logs and --json output stay clean)."""
from __future__ import annotations

import os

from tqdm.auto import tqdm


def progress_bar(total: int | None, desc: str, unit: str = "it", enabled: bool = True, initial: int = 0) -> tqdm:
    forced = os.environ.get("NASBENCH_PROGRESS")
    disable = not enabled or (None if forced is None else forced == "0")
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False, initial=initial, dynamic_ncols=True)
