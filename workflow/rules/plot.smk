# One rule per figure, so `--forcerun plot_pareto` redraws one figure and nothing upstream.
# name: (plotting function in analysis.plots, the tables it reads)
FIGURES = {
    "compute_scaling": ("plot_compute_scaling", ["runs", "metrics"]),
    "isoflop": ("plot_isoflop", ["runs", "metrics"]),
    "isoflop_creativity": ("plot_isoflop_creativity", ["runs", "metrics"]),
    "pareto": ("plot_pareto_fronts", ["runs", "metrics"]),
    "novelty_by_level": ("plot_novelty_by_level", ["runs", "metrics"]),
    "error_shares": ("plot_error_shares", ["runs", "metrics"]),
    "thinking": ("plot_thinking_curves", ["runs", "metrics"]),
    "energy_descent": ("plot_energy_descent", ["runs", "samples"]),
    "loss_curves": ("plot_loss_curves", ["runs", "curves"]),
}

for figure, (function, tables) in FIGURES.items():

    rule:
        name:
            f"plot_{figure}"
        input:
            **{t: f"{RESULTS}/tables/{t}.parquet" for t in tables},
        output:
            report(
                f"{RESULTS}/figures/{figure}.png",
                caption=f"../report/{figure}.rst",
                category="Figures",
            ),
        params:
            function=function,
        log:
            f"{RESULTS}/logs/plot_{figure}.log",
        resources:
            mem_mb=2000,
            runtime=10,
        script:
            "../scripts/plot.py"


FIGURE_FILES = expand(f"{RESULTS}/figures/{{figure}}.png", figure=list(FIGURES))
