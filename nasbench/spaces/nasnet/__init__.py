"""The NASNet search space (Zoph et al., CVPR 2018): architectures, operations, networks."""
