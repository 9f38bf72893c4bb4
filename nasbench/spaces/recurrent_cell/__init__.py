"""ENAS' and DARTS' recurrent cell space for Penn Treebank."""
