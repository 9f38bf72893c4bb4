"""nasbench: a hardware-aware benchmarking and profiling suite for neural architecture search."""

__version__ = "0.1.0"
