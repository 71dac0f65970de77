"""Run-level machinery of the workflow: parse-time config checks, the run lock, resuming after a kill."""
