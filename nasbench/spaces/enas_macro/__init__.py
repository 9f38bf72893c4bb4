"""ENAS' macro search space: whole networks of L layers with skip connections."""
