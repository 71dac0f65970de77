"""What the workflow does when it is read, before any job runs.

config      parse-time config checks: schema, NaN/inf, related keys, a feasible task, device, decoding menu, YAML position
grid        the training grid and its checks: buildable shapes, budgets, the IsoFLOP budget, minimum steps
presets     how a --configfile preset overlays config.yaml
lock        who holds the working directory; a killed run's lock is removed only when provably stale
resume      redoing what a kill -9 interrupted; damaged tables and leftover temporaries
divergence  a grid in which every run diverged stops with a summary (called by aggregate)
"""
