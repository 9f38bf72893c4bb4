"""EAS' plain CNN space and its function-preserving transformations (Cai et al., AAAI 2018)."""
