"""The FBNet layer-wise search space."""
