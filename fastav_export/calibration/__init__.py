"""`fastav-export calibrate`: a positional pruning preset derived from attention rollout over sample inputs.

    rule.py       the keep-mass search: the fewest-candidates positional rule holding a share of the mass
    calibrate.py  rollout importance of every sample, the rule, its stability, held-out overlap
    samples.py    --samples: files, directories, globs (.npy embeddings or videos)
    figure.py     the paper's Figure 2 maps for one sample: head-mean attention A_l and rollout R_l
    plots.py      the PNG files (matplotlib, the optional `plots` extra)
"""
