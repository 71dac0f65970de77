import json

from analysis.tables import concat
from creativity.io import atomic_path, redirect_log, write_parquet
from models.tuning import select_best

with redirect_log(snakemake.log[0]):
    settings = snakemake.params.settings
    sweep = concat(snakemake.input.summaries).reset_index(drop=True)
    sweep = sweep.assign(**{name: [s[name] for s in settings] for name in settings[0]})
    sweep = select_best(sweep)
    write_parquet(sweep, snakemake.output.sweep)
    best = sweep[sweep["chosen"]].iloc[0]
    with atomic_path(snakemake.output.best) as tmp:
        with open(tmp, "w") as f:
            json.dump({"setting": json.loads(best["setting"]), "val_loss": float(best["val_loss"])}, f, indent=2)
    print(sweep[["run_id", "setting", "val_loss", "status", "chosen"]].to_string())
