"""reluden reproduce: claims as measured rows, verdicts, caching, interruption, exit status."""

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import relu_denoise.reproduce as rp
from relu_denoise.cli import app
from relu_denoise.errors import RecipeError
from relu_denoise.reproduce import engine, measures
from relu_denoise.reproduce.spec import Check, Claim, Measurement, RunResult, at_most, within

runner = CliRunner()
FAST = ("right-triangle-virtual", "obtuse-triangle-no-virtual")        # closed-form flows: about a second each


def _claim(claim_id: str) -> Claim:
    return next(c for c in rp.CLAIMS if c.id == claim_id)


def _fast_claims() -> tuple:
    return tuple(_claim(i) for i in FAST)


def _mtimes(out: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in sorted((out / "runs").glob("*/result.json"))}


# ---------------------------------------------------------------- the claim table


def test_claim_ids_are_unique_and_every_paper_claim_is_listed():
    ids = [c.id for c in rp.CLAIMS]
    assert len(ids) == len(set(ids))
    assert {c.paper for c in rp.CLAIMS} == {"NeurIPS 2023", "ICML 2025"}
    for c in rp.CLAIMS:
        assert c.checks and all(ch.why for ch in c.checks), c.id
        assert "docs/theory.md" in c.source, c.id
        assert c.not_built is None, c.id                # every claim of the issue is built


@pytest.mark.parametrize("quick", [True, False])
def test_every_claim_run_is_a_valid_recipe(tmp_path, quick):
    points = engine.claim_points(rp.CLAIMS, tmp_path, quick=quick, device="cpu")
    assert {(c.id, name) for c in rp.CLAIMS for s in c.runs for name, _ in s.variants(quick)} == set(points)
    assert all(p.run_dir.startswith(str(tmp_path)) for p in points.values())


def test_claims_that_need_the_same_run_share_one_point(tmp_path):
    a = _claim("1d-closed-form")
    b = dataclasses.replace(a, id="same-fit")
    points = engine.claim_points((a, b), tmp_path, quick=False, device="cpu")
    assert points["1d-closed-form", "fit"] is points["same-fit", "fit"]


def test_quick_runs_differ_from_full_ones_only_where_a_claim_says_so(tmp_path):
    quick = engine.claim_points(rp.CLAIMS, tmp_path, quick=True, device="cpu")
    full = engine.claim_points(rp.CLAIMS, tmp_path, quick=False, device="cpu")
    for c in rp.CLAIMS:
        for s in c.runs:
            assert (quick[c.id, s.name].digest == full[c.id, s.name].digest) == (not s.quick), (c.id, s.name)
            assert len([k for k in full if k[0] == c.id and k[1].split("@")[0] == s.name]) == max(1, len(s.seeds))
    assert len(full) > len(quick)                             # the full size runs more seeds


def test_seeds_are_measured_by_their_worst():
    fit = {"function_gap": 0.001, "cost": 1.0, "closed_form_cost": 1.0, "max_residual_rel": 1e-9, "tol": 1e-3}
    runs = {"fit": _run(fit | {"cost_ratio": 1.001}), "fit@seed=1": _run(fit | {"cost_ratio": 0.97}),
            "fit@seed=2": _run(fit | {"cost_ratio": 1.02, "function_gap": 0.004})}
    m = measures.fit_matches_closed_form(runs)
    assert m.values == {"cost ratio": 0.97, "function gap": 0.004} and "over 3 seeds" in m.text


def test_select_names_an_unknown_claim():
    assert engine.select(rp.CLAIMS, ["1d-closed-form"])[0].id == "1d-closed-form"
    with pytest.raises(RecipeError, match="unknown claim 'nope'; known: 1d-closed-form"):
        engine.select(rp.CLAIMS, ["nope"])


# ---------------------------------------------------------------- verdicts


def test_check_bounds_and_text():
    assert within("r", 1.0, 0.01, "").holds(1.005) and not within("r", 1.0, 0.01, "").holds(1.02)
    assert within("r", 1.0, 0.01, "").expected == "in [0.99, 1.01]"
    assert at_most("g", 0.05, "").holds(0.05) and not at_most("g", 0.05, "").holds(0.06)
    assert not Check("x", 0.0, None).holds(None) and not Check("x", 0.0, None).holds(float("nan"))


def test_verdict_inconclusive_before_checks_and_fails_names_the_check():
    claim = Claim("c", "NeurIPS 2023", "claim", "docs/theory.md 2", "says", checks=(at_most("g", 0.1, "why"),))
    assert claim.verdict(Measurement({"g": 0.05}, ""))[0] == "holds"
    verdict, reason, checks = claim.verdict(Measurement({"g": 0.5}, ""))
    assert verdict == "fails" and reason == "g = 0.5, expected <= 0.1" and checks[0]["holds"] is False
    assert claim.verdict(Measurement({"g": 0.5}, "", inconclusive="not converged"))[:2] == \
        ("inconclusive", "not converged")


def _run(result: dict, status: str = "ok", reason=None) -> RunResult:
    return RunResult(status, reason, result, Path("."), 1.0)


def test_emmse_ratio_interval_and_flip_from_a_comparison():
    res = {"noise": [0.001, 0.01, 0.03], "estimators": {"nn": [1e-6, 2e-4, None], "emmse": [1e-3, 1e-4, 2e-3]},
           "ci_low": {"nn": [0.5e-6, 1e-4, None], "emmse": [0.8e-3, 0.9e-4, 1e-3]},
           "ci_high": {"nn": [2e-6, 3e-4, None], "emmse": [1.2e-3, 1.1e-4, 3e-3]}}
    m = measures.emmse_ratio({"compare": _run(res)})
    assert m.values["nn / emmse"] == pytest.approx(1e-3)
    assert m.values["nn / emmse (95% upper)"] == pytest.approx(2e-6 / 0.8e-3)     # the conservative end
    assert "the ordering flips at sigma 0.01" in m.text and m.inconclusive is None


def test_alignment_is_inconclusive_when_ambiguous_or_not_min_cost():
    res = {"aligned_fraction": 0.9, "baseline_fraction": 0.1, "aligned_at_discriminating": 0.95,
           "cost_ratio": 1.0, "ambiguous": True, "separation_deg": 6.0,
           "fit": {"status": "ok", "max_residual_rel": 1e-9, "tol": 1e-3}}
    assert measures.aligned({"align": _run(res)}).inconclusive.startswith("ambiguous: predicted and rival "
                                                                          "directions 6 degrees apart")
    res.update(ambiguous=False, cost_ratio=1.3)
    assert "costs 1.3x the closed form" in measures.aligned({"align": _run(res)}).inconclusive
    res.update(cost_ratio=1.0)
    m = measures.aligned({"align": _run(res)})
    assert m.inconclusive is None and m.values["aligned - baseline"] == pytest.approx(0.8)


def test_a_fit_decides_only_when_its_returned_network_interpolates():
    fit = {"cost_ratio": 1.0, "function_gap": 0.0, "cost": 1.0, "closed_form_cost": 1.0, "tol": 1e-3}
    far = measures.fit_matches_closed_form({"fit": _run(fit | {"max_residual_rel": 0.2}, "not-converged")})
    assert far.inconclusive.startswith("the fit returned a network that does not interpolate its samples: max "
                                       "residual 0.2")
    polished = measures.fit_matches_closed_form({"fit": _run(fit | {"max_residual_rel": 1e-9}, "not-converged")})
    assert polished.inconclusive is None and "(not-converged," in polished.text
    failed = measures.fit_matches_closed_form({"fit": _run(fit | {"max_residual_rel": 1e-9}, "failed", "diverged")})
    assert failed.inconclusive == "the fit: failed (diverged)"


# ---------------------------------------------------------------- end to end


def test_reproduce_writes_the_report_and_a_rerun_only_reads_it_back(tmp_path):
    out = tmp_path / "rep"
    report = rp.reproduce(out, claims=_fast_claims(), jobs=1, device="cpu")
    assert [r["verdict"] for r in report["rows"]] == ["holds", "holds"]
    assert report["summary"] == {"holds": 2, "fails": 0, "inconclusive": 0, "not built": 0}
    saved = json.loads((out / "report.json").read_text())
    assert saved["rows"][0]["id"] == FAST[0] and saved["status"] == "ok"
    for row in saved["rows"]:
        assert set(row) >= {"id", "claim", "source", "measured", "expected", "verdict", "reason", "seconds",
                            "evidence"}
        assert all((out / e["path"]).exists() for e in row["evidence"])
    before = _mtimes(out)
    again = rp.reproduce(out, claims=_fast_claims(), jobs=1, device="cpu")
    assert _mtimes(out) == before and [r["measured"] for r in again["rows"]] == [r["measured"] for r in
                                                                                 report["rows"]]


def test_a_false_tolerance_fails_its_row_and_exits_1(tmp_path, monkeypatch):
    virtual = _claim("obtuse-triangle-no-virtual")
    wrong = dataclasses.replace(virtual, checks=(Check("virtual fraction", 0.5, None, "deliberately false"),))
    monkeypatch.setattr(rp, "CLAIMS", (wrong,))
    result = runner.invoke(app, ["reproduce", "--out", str(tmp_path / "rep"), "--jobs", "1", "--device", "cpu"])
    assert result.exit_code == 1, result.output
    row = json.loads((tmp_path / "rep" / "report.json").read_text())["rows"][0]
    assert row["verdict"] == "fails" and row["reason"] == "virtual fraction = 0, expected >= 0.5"
    monkeypatch.setattr(rp, "CLAIMS", (virtual,))
    assert runner.invoke(app, ["reproduce", "--out", str(tmp_path / "rep"), "--jobs", "1"]).exit_code == 0


def test_an_interrupted_reproduce_keeps_its_finished_runs(tmp_path, monkeypatch):
    from relu_denoise import workflows

    real, calls = workflows.flow_workflow, []

    def second_interrupts(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(workflows, "flow_workflow", second_interrupts)
    out = tmp_path / "rep"
    report = rp.reproduce(out, claims=_fast_claims(), jobs=1, device="cpu")
    assert report["status"] == "interrupted" and report["rows"][1]["verdict"] == "inconclusive"
    kept = _mtimes(out)
    assert len(kept) == 1
    monkeypatch.setattr(workflows, "flow_workflow", real)
    report = rp.reproduce(out, claims=_fast_claims(), jobs=1, device="cpu")
    assert report["status"] == "ok" and [r["verdict"] for r in report["rows"]] == ["holds", "holds"]
    assert {p: t for p, t in _mtimes(out).items() if p in kept} == kept           # the finished run was not redone


def test_bad_options_are_one_line_with_status_2(tmp_path):
    result = runner.invoke(app, ["reproduce", "--only", "nope", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "unknown claim 'nope'" in result.output
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["reproduce", "--only", FAST[0], "--out", str(tmp_path / "mine")])
    assert result.exit_code == 2 and "not a reproduce directory" in result.output
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_dask_gives_the_same_rows_as_local_processes(tmp_path):
    local = rp.reproduce(tmp_path / "local", claims=_fast_claims(), jobs=1, device="cpu")
    dask = rp.reproduce(tmp_path / "dask", claims=_fast_claims(), jobs=2, executor="dask", device="cpu")
    assert [(r["verdict"], r["measured"]) for r in dask["rows"]] == [(r["verdict"], r["measured"])
                                                                     for r in local["rows"]]
    assert [e["path"] for r in dask["rows"] for e in r["evidence"]] == [e["path"] for r in local["rows"]
                                                                        for e in r["evidence"]]
