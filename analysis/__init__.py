"""Analysis of the scaling study: fits, figures, the findings page and the loss-surface CLI.

Map: each question the study asks, where it is answered. `fit:` the function that computes it,
and the kinds of rows it adds to results/tables/fits.parquet (rule fit, fits.compute_fits);
`figure:` the function that draws it, and its file in results/figures/ (rule plot_<file>,
workflow/rules/plot.smk); `page:` the functions of findings.py that state it on the findings
page (rule findings). tests/test_analysis_map.py checks that every name here exists and that
every figure is drawn by the function named.

Does each arm answer correctly, and how validly, at each budget?
    fit:    fits._summary_rows                   summary
    figure: -
    page:   findings.regime_table, findings.compact_table, findings.diagnostics_table
Is the EBT more creative than the Transformer++ at equal training compute, at matched
inference FLOPs, and does the gap grow with compute?
    fit:    paired.paired_rows                   paired_delta, paired_delta_change
    figure: plots.plot_paired_deltas             paired_deltas.png
    page:   findings.gap_sentences, findings.paired_table
Where would the EBT's scaling laws meet the Transformer++'s?
    fit:    crossover.crossover_row              crossover (called by loss and fits)
    figure: -
    page:   findings.crossover_sentence
How does validation loss fall towards the task's floor, and how fast for each arm?
    fit:    loss.floor_rows                      loss_floor
            loss.excess_loss_rows                excess_loss, power_law, scaling_rate, training
    figure: plots_raw.plot_loss_curves           loss_curves.png
    page:   findings.loss_sentence, findings.training_table
How do correct rate, validity and creativity scale with compute, parameters and tokens?
    fit:    scaling.power_law_rows               power_law, power_law_curve
    figure: plots.plot_compute_scaling           compute_scaling.png
    page:   findings.cannot_sentence
Which model shape is compute-optimal (IsoFLOP)?
    fit:    isoflop.isoflop_optima               isoflop_optimum, isoflop_power_law
    figure: plots.plot_isoflop                   isoflop.png
            plots.plot_isoflop_creativity        isoflop_creativity.png
    page:   findings.isoflop_sentences
Does the EBT move the novelty–utility Pareto frontier?
    fit:    pareto.pareto_rows                   pareto_front, pareto_hypervolume, pareto_hv_delta
    figure: plots.plot_pareto_fronts             pareto.png
    page:   findings.frontier
Does novelty fall as utility rises, net of a feasible-walk null?
    fit:    tradeoff.tradeoff_rows               tradeoff_slope, tradeoff_net, tradeoff_scaling
    figure: plots.plot_tradeoff                  tradeoff.png
    page:   findings.tradeoff
Does thinking longer help the EBT, and which errors does it trade?
    fit:    thinking.thinking_rows               thinking_effect, error_share, error_shift
    figure: plots_raw.plot_thinking_curves       thinking.png
            plots_raw.plot_energy_descent        energy_descent.png
            plots_raw.plot_error_shares          error_shares.png
    page:   findings.thinking
Do the models copy demonstrations, beside a length-matched null?
    fit:    fits._summary_rows                   summary (parameters null, minus_null)
    figure: -
    page:   findings.null_table
What do the answers look like?  samples_table.samples_html (report/samples.html, rule samples_table)
L(N, D) = E + A/N^alpha + B/D^beta?  fit_surface.main (a CLI, python -m analysis.fit_surface)

Shared pieces:

resample     per-prompt sums of every statistic; prompt resamples as weight vectors
intervals    seed-level intervals that keep coverage at 3 seeds, and their coverage simulation
powerlaw     one-variable power laws and batch GLM / OLS fits
labels       architecture labels and names (from models/architectures.py), default decodings
plotting     colours, axes and atomic PNG writes shared by plots (figures of fits) and plots_raw
tables       the per-run tables concatenated into results/tables/ (rule aggregate)
"""
