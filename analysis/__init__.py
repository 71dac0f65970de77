"""Analysis of the scaling study: fits, figures and the Chinchilla loss-surface CLI.

powerlaw     one-variable power laws, bootstrap CIs, EBT scaling-rate ratio
isoflop      IsoFLOP parabola optima over model shape
pareto       novelty–utility Pareto fronts and hypervolume
tradeoff     slope of novelty against utility level
fits         compute_fits(): every fit in one long table (fits.parquet)
plots        the figures
fit_surface  CLI: L(N, D) = E + A/N^alpha + B/D^beta (Chinchilla Approach 3)
"""
