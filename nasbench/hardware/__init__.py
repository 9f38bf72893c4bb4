"""Hardware cost: counting, profiling, cost tables and cost objectives."""

LOSS_FORMS = ("hinge", "add-linear", "mul-log", "mul-log-hinge")
"""How a constraint's expected cost enters a loss (:meth:`~nasbench.hardware.constraint.Constraint.apply`)."""
CONSTRAINT_METRICS = {"latency": "latency_ms", "flops": "flops", "params": "params", "mac": "mac_elements"}
"""Constraint names (``nasbench run --constraint``) and the cost-model metrics they mean
(MAC: memory accesses, in elements). Here, apart from the constraint's torch code, so that
the command line's help names them without importing torch."""
