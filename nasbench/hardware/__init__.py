"""Hardware cost: counting, profiling, cost tables and cost objectives."""

LOSS_FORMS = ("per-edge-log", "hinge", "add-linear", "mul-log", "mul-log-hinge", "filter")
"""How a constraint's expected cost enters a loss (:meth:`~nasbench.hardware.constraint.Constraint.apply`),
or ``filter``: no loss, a hard filter on the candidates a search scores (SPOS' evolution)."""
WEIGHTLESS_FORMS = ("filter",)
"""Forms that take no weight: a candidate over the target is rejected, not penalised."""
CONSTRAINT_METRICS = {"latency": "latency_ms", "flops": "flops", "params": "params", "mac": "mac_elements",
                      "resources": "resources"}
"""Constraint names (``nasbench run --constraint``) and the cost-model metrics they mean
(MAC: memory accesses, in elements; ``resources``: SNAS' mean of parameters, FLOPs and MAC,
the official code's default ``--separation all``). Here, apart from the constraint's torch code, so that
the command line's help names them without importing torch."""
TARGETLESS_FORMS = ("per-edge-log",)
"""Loss forms that take no target: a Lagrangian penalty (SNAS' resource term)."""
RESOURCE_METRICS = ("params", "flops", "mac_elements")
"""The cost-model metrics the ``resources`` constraint averages (SNAS' ``--separation all``)."""
