# One rule per figure, so `--forcerun plot_pareto` redraws one figure and nothing upstream.
# Figures of fits read fits.parquet (analysis.plots); descriptive ones only the raw tables
# (analysis.plots_raw). The report groups them by the question they answer.
# name: (module.function, tables read, report category, subcategory)
Q1 = "2. Does the EBT move the frontier?"
Q2 = "3. Scaling with compute"
Q3 = "4. Scaling with shape"
Q4 = "5. Novelty–utility trade-off"
Q5 = "6. EBT inference-time compute, errors, training"
FIGURES = {
    "paired_deltas": ("plots.plot_paired_deltas", ["fits"], Q1, "Paired differences"),
    "pareto": ("plots.plot_pareto_fronts", ["fits", "runs", "metrics"], Q1, "Pareto fronts per level"),
    "compute_scaling": ("plots.plot_compute_scaling", ["fits", "runs", "metrics"], Q2, "Power laws"),
    "isoflop": ("plots.plot_isoflop", ["fits", "runs", "metrics"], Q3, "IsoFLOP: loss"),
    "isoflop_creativity": ("plots.plot_isoflop_creativity", ["fits", "runs", "metrics"], Q3, "IsoFLOP: creativity"),
    "tradeoff": ("plots.plot_tradeoff", ["fits", "runs"], Q4, "Net trade-off slope"),
    "thinking": ("plots_raw.plot_thinking_curves", ["runs", "metrics"], Q5, "Thinking and verification"),
    "energy_descent": ("plots_raw.plot_energy_descent", ["runs", "samples"], Q5, "Thinking and verification"),
    "error_shares": ("plots_raw.plot_error_shares", ["runs", "metrics"], Q5, "Errors"),
    "loss_curves": ("plots_raw.plot_loss_curves", ["runs", "curves"], Q5, "Training"),
}

for figure, (function, tables, category, subcategory) in FIGURES.items():

    rule:
        name:
            f"plot_{figure}"
        input:
            **{t: f"{RESULTS}/tables/{t}.parquet" for t in tables},
        output:
            report(
                f"{RESULTS}/figures/{figure}.png",
                caption=f"../report/{figure}.rst",
                category=category,
                subcategory=subcategory,
                labels={"figure": figure.replace("_", " ")},
            ),
        params:
            function=function,
            code=fingerprint.code_version("workflow/scripts/plot.py", "analysis." + function.split(".")[0]),
        log:
            f"{RESULTS}/logs/plot_{figure}.log",
        resources:
            mem_mb=2000,
            runtime=10,
        script:
            "../scripts/plot.py"


FIGURE_FILES = expand(f"{RESULTS}/figures/{{figure}}.png", figure=list(FIGURES))
REPORT_PAGES = [rules.findings.output[0], rules.samples_table.output[0]]
