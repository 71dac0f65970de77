"""Analysis of the scaling study: fits, figures and the Chinchilla loss-surface CLI.

resample     per-prompt sums of every statistic; prompt resamples as weight vectors
intervals    seed-level intervals that keep coverage at 3 seeds, and their coverage simulation
paired       EBT − Transformer++ at each shared budget (default decoding, matched inference FLOPs)
loss         the task's loss floor, excess-loss laws and their EBT/TPP ratio
scaling      power laws of correct rate, validity and creativity; when an exponent is estimable
powerlaw     one-variable power laws and batch GLM / OLS fits
isoflop      IsoFLOP parabola optima over parameters and d/L
pareto       novelty–utility Pareto fronts per seed and hypervolume
tradeoff     slope of novelty against utility level, net of a null
thinking     thinking longer on the EBT, and the shift in error types
fits         compute_fits(): every fit in one long table (fits.parquet)
findings     the findings page, from fits.parquet
plots        the figures
fit_surface  CLI: L(N, D) = E + A/N^alpha + B/D^beta (Chinchilla Approach 3)
"""
