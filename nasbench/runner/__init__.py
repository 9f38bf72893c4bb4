"""Running methods under a protocol: search, final training, storage.

:mod:`.driver` is the process that owns the store and hands each (method, seed) run to
an executor; :mod:`.task` is what a run does wherever it runs; :mod:`.request` names
what a command asks for and how its stored runs look.
"""
from nasbench.runner.driver import (
           ATTEMPTS,
           FINAL,
           SEARCH,
           Overall,
           Plan,
           Tally,
           execute,
)
from nasbench.runner.request import (
           RunRequest,
           check_method_section,
           run_record,
           run_variant,
)

__all__ = ["ATTEMPTS", "FINAL", "SEARCH", "Overall", "Plan", "RunRequest", "Tally", "check_method_section", "execute",
           "run_record", "run_variant"]
