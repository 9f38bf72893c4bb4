"""Published reference data shipped with nasbench (installed as ``nasbench.baselines``)."""
