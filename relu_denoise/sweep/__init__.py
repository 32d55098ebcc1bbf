"""Sweeps: a grid of runs of one command, cached by content, resumable, on local processes or Dask.

    name: rays-noise
    command: fit                  # closed-form | fit | compare | align | certify
    recipe: ../rays.yaml          # relative to the sweep file
    grid:                         # cartesian product of recipe keys (last key varies fastest)
      noise.sigma: [0.01, 0.02, 0.05]
      seed: "0:3"                 # a range: 0, 1, 2
    set: {train.steps: 5000}      # fixed overrides (nested mappings are merged key by key)
    device: cpu                   # and the command's options: compare noise, repeats, n_test, nn;
                                  # align tolerance; certify time_limit, tol (as on its command line)

Each point is an ordinary run directory `<sweep dir>/<command>-<hash>/`, the hash taken over the
command, its options and the resolved recipe, so a point's directory (like its random streams,
relu_denoise.problem) depends on its content, never on its position in the grid. Beside the run's
own files, `sweep_point.json` records the swept values and the wall seconds of the point.

Running a sweep again skips points whose run finished (ok, not-converged, no-closed-form),
resumes interrupted fits from their checkpoint, reruns failed and unfinished ones; `force`
reruns all. A failing point never stops the others; an interrupted one (Ctrl-C, SIGTERM) stops
the sweep after the running points have recorded their state.

`sweep.csv` and `sweep.json` in the sweep directory hold one tidy row per point (one per
noise level and estimator for compare), rewritten atomically after every finished point;
`sweep.png` plots the main metric against the first swept key. `collect(paths)` builds the same
rows from any run directories under the paths.

Executors call the same `run_task(points) -> rows of each point`. A task is one point, or fits to run
from the start that share their data shape (seeds and noise levels of one geometry; `tasks`), trained
together as one network with stacked weights, which ends every fit with the same weights, bit for bit,
as alone (`batch: false` or --no-batch: one fit at a time):

- `local`: `jobs` long-lived worker processes (spawn), torch threads per worker = cores // jobs;
  with one job, the points run in this process.
- `dask`: a `distributed.Client` on a scheduler address, or on a LocalCluster of `jobs` single-
  threaded worker processes. On a batch system, start the cluster with dask-jobqueue and pass its
  address (workers need relu_denoise installed and the sweep directory on a shared file system):

      from dask_jobqueue import SLURMCluster
      cluster = SLURMCluster(cores=1, processes=1, memory="4GB", walltime="02:00:00")
      cluster.scale(jobs=20)
      print(cluster.scheduler_address)     # reluden sweep S.yaml --executor dask --scheduler <address>

The package, one concept per module:

    spec        the sweep file, its grid and its points (each with its resolved recipe and content hash)
    plan        what each point needs this time: cached, resume or run
    execute     one point, or a task of fits trained together (run_point, run_task, tasks)
    records     what the sweep writes into a point's run directory (sweep_point.json, failure records)
    executors   this process, local worker processes, Dask; signals
    runner      run_sweep: the directory's lock, progress, the table kept current
    table       rows, CSV and JSON, collect
"""

from .execute import run_point, run_task, tasks
from .executors import guarded_task
from .plan import FINISHED, SUCCESS, plan, plan_points, point_action
from .records import POINT_FILE
from .runner import Counts, SweepEvents, SweepResult, available_cores, run_sweep
from .spec import COMMANDS, Point, Sweep, SweepFile, load_sweep, parse_grid_option, parse_values, point_hash
from .table import (by_command, collect, collect_frame, columns, find_runs, run_rows, shown_columns, to_csv,
                    varying_keys, write_table)

__all__ = ["COMMANDS", "FINISHED", "POINT_FILE", "SUCCESS", "Counts", "Point", "Sweep", "SweepEvents", "SweepFile",
           "SweepResult", "available_cores", "by_command", "collect", "collect_frame", "columns", "find_runs",
           "guarded_task", "load_sweep", "parse_grid_option", "parse_values", "plan", "plan_points", "point_action", "point_hash", "run_point",
           "run_rows", "run_sweep", "run_task", "shown_columns", "tasks", "to_csv", "varying_keys", "write_table"]
