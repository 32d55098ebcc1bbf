"""The Python API as a notebook user calls it: import relu_denoise as rd, then the commands on a recipe; the
same results as the CLI, and the process left as it was."""

import json
import subprocess
import sys

import yaml
from typer.testing import CliRunner

from relu_denoise.cli import app

LINE = {"name": "line", "data": {"kind": "points", "points": [[0.0], [1.0], [2.5]]}, "model": {"width": 32},
        "noise": {"distribution": "sphere", "radius": 0.1, "samples": 10}, "train": {"steps": 3000},
        "compare": {"test_points": "training", "noise": [0.05], "n_test": 50}}

NOTEBOOK = """
import gc, json, signal, sys
import matplotlib, torch
import relu_denoise as rd

before = (torch.get_num_threads(), signal.getsignal(signal.SIGINT), matplotlib.get_backend(), gc.isenabled(),
          list(sys.argv))
recipe = rd.read_recipe(sys.argv[1], "seed=0")
form = rd.make_problem(recipe).reference.form                   # the closed form, in memory
fit = rd.fit_recipe(sys.argv[1], out=sys.argv[2] + "/fit", figures=False)
compared = rd.compare_recipe(sys.argv[1], out=sys.argv[2] + "/compare", figures=False)
aligned = rd.align_recipe(sys.argv[2] + "/fit", out=sys.argv[2] + "/align", figures=False)
bounds = rd.certify_recipe(sys.argv[2] + "/fit", out=sys.argv[2] + "/certify", time_limit=5)
after = (torch.get_num_threads(), signal.getsignal(signal.SIGINT), matplotlib.get_backend(), gc.isenabled(),
         list(sys.argv))
print(json.dumps({"same_process": before == after, "geometry": form.geometry, "formula_cost": form.cost_formula,
                  "fit": fit.result, "fit_cost": fit.summary.stats.cost, "net_width": fit.extra["fit"].net.width,
                  "compare_best": compared.summary.comparison.best(0), "aligned": aligned.summary.report.aligned_fraction,
                  "lower": bounds.summary.certificate.lower, "upper": bounds.summary.certificate.upper}))
"""


def test_the_commands_from_python_match_the_cli_and_leave_the_process_as_it_was(tmp_path):
    recipe = tmp_path / "line.yaml"
    recipe.write_text(yaml.safe_dump(LINE))
    done = subprocess.run([sys.executable, "-c", NOTEBOOK, str(recipe), str(tmp_path / "py")], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["same_process"] and got["geometry"] == "univariate"
    assert got["fit_cost"] == got["fit"]["cost"] and got["fit"]["status"] == "ok"
    assert got["fit"]["closed_form_cost"] == got["formula_cost"]
    assert got["lower"] <= got["fit_cost"] * (1 + 1e-6) and got["lower"] <= got["upper"]
    cli = CliRunner().invoke(app, ["fit", str(recipe), "--out", str(tmp_path / "cli"), "--json", "-q", "--no-figures"])
    assert cli.exit_code == 0, cli.output
    same = lambda r: {k: v for k, v in r.items() if k not in ("run_dir", "seconds", "threads")}  # noqa: E731
    assert same(json.loads(cli.stdout)) == same(got["fit"])                    # bit for bit: the same fit
    for name in ("fit", "compare", "align", "certify"):
        assert json.loads((tmp_path / "py" / name / "manifest.json").read_text())["status"] in ("ok", "not-converged")
