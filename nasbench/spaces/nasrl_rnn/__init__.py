"""NAS-RL's recurrent cell space for Penn Treebank."""
