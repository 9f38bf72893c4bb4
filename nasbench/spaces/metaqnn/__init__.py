"""The MetaQNN space: plain layer sequences (Baker et al., ICLR 2017)."""
