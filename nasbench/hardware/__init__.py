"""Hardware cost: counting, profiling, cost tables and cost objectives."""
