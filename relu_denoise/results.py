"""What each command found, as typed values: the only objects the CLI renders; `to_dict()` is result.json.

Every summary has `status` (a run status, runs.STATUSES) and `reason` (None when ok); the keys every
result.json starts with (command, status, run_dir, seed, version) are added by runs.Run.finish. Which keys
a sweep's table takes from each command's result.json is `ROW_KEYS` (one list, beside the summaries).

One meaning per key, in every command: `cost` is the path cost of the run's own network (the trained one; for
closed-form its explicit network), `cost_formula` the closed form's formula, `closed_form_cost` (fit, flow
levels) the same formula beside a trained network; `rho` only the closed form's flat-zone radius (None under the
empirical rule; `rho_rule` says which rule chose it); `width` the units a network was trained with,
`kept_units` those of the returned network (model.pt), `active_units` those with a share of its cost, `units`
(closed-form) those of the explicit network.
"""

from dataclasses import dataclass, field

from .closed_forms import Reference
from .train.stats import FitReference

ROW_KEYS = {
    "fit": ("cost", "closed_form_cost", "cost_ratio", "reference_kind", "reference_cost", "reference_ratio",
            "function_gap", "max_residual", "max_residual_rel", "train_mse", "steps", "converged", "active_units",
            "kept_units", "width", "returned", "returned_step"),
    "closed-form": ("cost", "cost_formula", "rho", "rho_rule", "units", "ramps"),
    "align": ("aligned_fraction", "baseline_fraction", "baseline_sd", "function_gap", "plane_gap", "n_units_kept"),
    "certify": ("lower", "upper", "gap", "lower_method", "rounds"),
    "flow": ("kind", "denoiser", "starts", "memorized", "virtual_fraction", "boundary_fraction", "other_fraction",
             "cost_ratio_max"),
}
FIT_IN_ALIGN = ("cost", "closed_form_cost", "cost_ratio", "max_residual", "max_residual_rel", "steps")
# keys renamed since: (command, new key) -> the key a run directory of an earlier version holds (collect reads it)
OLD_KEYS = {("fit", "kept_units"): "units"}
_REFERENCE_SLACK = 1.05      # a fit more than 5% above a known exact interpolant gets a note


@dataclass(frozen=True)
class ClosedFormSummary:
    """`reluden closed-form`: the reference closed form (or why there is none) and its explicit network."""

    reference: Reference
    n_points: int
    dim: int
    data: dict                              # the source's facts (data.Source.info)
    cost: float | None = None               # path cost of the explicit network's weights
    units: int | None = None
    figure: str | None = None

    @property
    def status(self) -> str:
        return "ok" if self.reference.form is not None else "no-closed-form"

    @property
    def reason(self) -> str | None:
        return self.reference.reason

    def to_dict(self) -> dict:
        ref, form = self.reference, self.reference.form
        if form is None:
            return {**ref.to_dict(), "n_points": self.n_points, "dim": self.dim, "data": self.data}
        out = {"geometry": form.geometry, "closed_form": ref.to_dict(), "rho": ref.rho, "rho_rule": ref.rho_rule,
               "cost": self.cost, "cost_formula": form.cost_formula, "formula": form.formula, "units": self.units,
               "ramps": len(form.ramps), "dim": form.dim, "affine_dim": form.affine_dim, "n_points": form.n_points,
               "notes": form.notes, "data": self.data}
        return out | ({"figure": self.figure} if self.figure else {})


@dataclass(frozen=True)
class Course:
    """What training did to the path cost, read from the recorded checks (history.csv): the cost at the first
    check (step 0: the initial units), at the last one, at the check whose network was returned (before any
    polish), and the trend of the last checks (metrics.cost_trend; None: too few checks to tell)."""

    first_step: int
    first_cost: float
    last_step: int
    last_cost: float
    returned_cost: float | None
    trend: dict | None

    @classmethod
    def of(cls, history: dict, returned_step: int | None) -> "Course | None":
        """The course of a fit's history (column -> list), None when it recorded no check."""
        from .metrics import cost_trend

        steps, costs = history.get("step") or [], history.get("cost") or []
        if not steps or len(steps) != len(costs):
            return None
        at = dict(zip(steps, costs))
        return cls(steps[0], costs[0], steps[-1], costs[-1], at.get(returned_step), cost_trend(costs))

    def trend_text(self) -> str:
        """The measured trend of the path cost at the last checks, as a clause."""
        t = self.trend
        if t is None:
            return "too few checks to tell whether the path cost was falling"
        said = {"falling": "was still falling", "level": "was level", "above": "stayed above its earlier low"}
        last = f"lowest {t['last_low']:.6g} over the last {t['checks']} checks" if t["checks"] > 1 else \
            f"{t['last_low']:.6g} at the last check"
        return f"the path cost {said[t['trend']]} ({last}, lowest {t['before_low']:.6g} before)"


@dataclass(frozen=True)
class FitSummary:
    """`reluden fit` (and the fit of align and certify): the fitted network's facts beside the reference.

    width (stats.width): the units trained; kept_units: those of the returned network (model.pt: the polish
    drops the units it gives no output weight); active_units: those with a share of its path cost
    (metrics.ACTIVE_SHARE)."""

    stats: object                           # train.FitStats
    reference: Reference
    tol: float
    kept_units: int
    active_units: int
    function_gap: float | None = None
    polish: object | None = None            # train.Polish
    best: FitReference | None = None
    figures: tuple = ()
    reason_detail: str = ""                 # why more steps may (not) help, measured on the history
    course: Course | None = None            # what training did to the cost (None: no history)

    @property
    def interpolates(self) -> bool:
        return self.stats.max_residual_rel <= self.tol

    @property
    def status(self) -> str:
        """ok only when the stopping rule was met (docs/training.md 7) by a network within train.tol."""
        return "ok" if self.interpolates and self.stats.converged else "not-converged"

    @property
    def returned(self) -> str | None:
        """What the returned network is: `initial` (the first check's, step 0: training did not improve on the
        initial units), `trained` (a later check's), `ramps` (the ramps method's solution, nothing trained), or
        None where the step was not recorded (resumed from a checkpoint of an older version)."""
        s = self.stats
        if s.method == "ramps":
            return "ramps"
        if s.returned_step is None:
            return None
        return "initial" if s.returned_step == 0 else "trained"

    @property
    def stopped(self) -> str:
        """Why training stopped, in words (stats.stop_reason)."""
        return {"converged": "the stopping rule was met (docs/training.md 7)",
                "max-steps": f"train.steps = {self.stats.steps} reached before the stopping rule was met",
                "no-interpolant": "gave up: no interpolant in reach (docs/training.md 7)",
                "callback": "a callback stopped it before the stopping rule was met"}.get(self.stats.stop_reason,
                                                                                           self.stats.stop_reason)

    @property
    def polished(self) -> bool | None:
        """Whether the output layer of the returned network is the polish's (None: no polish for this fit)."""
        return None if self.polish is None else bool(self.polish.applied)

    @property
    def cost_ratio(self) -> float | None:
        form = self.reference.form
        if form is None or form.cost_formula <= 0:             # one point: cost 0
            return None
        return self.stats.cost / form.cost_formula

    @property
    def reference_ratio(self) -> float | None:
        """The fit's cost / the reference's, for a fit that interpolates (else the two are not comparable)."""
        if self.best is None or not self.best.cost or not self.interpolates:
            return None
        return self.stats.cost / self.best.cost

    @property
    def reason(self) -> str | None:
        s = self.stats
        if self.interpolates and s.converged:
            return None
        if self.interpolates:
            trend = f"; {self.course.trend_text()}" if self.course is not None else ""
            why = "a callback stopped it" if s.stop_reason == "callback" else f"train.steps = {s.steps} reached"
            return (f"did not converge: stopped before the stopping rule was met ({why}){trend}; the returned network "
                    f"interpolates (max residual {s.max_residual_rel:.3g} x min(ell, noise radius) <= train.tol = "
                    f"{self.tol:g}): raise train.steps for the rule to decide")
        head = (f"did not converge: max residual {s.max_residual_rel:.3g} x min(ell, noise radius) > train.tol = "
                f"{self.tol:g} after {s.steps} steps{self.reason_detail}")
        if s.stop_reason != "no-interpolant":
            return head
        return (f"{head}; training stopped there, far from an interpolant (the max residual above half of min(ell, "
                f"noise radius) for two windows of checks; the affine map alone reaches {s.affine_residual_rel:.3g} x): "
                f"{self._remedy()}")

    def _remedy(self) -> str:
        """What may help a fit that finds no interpolant, as far as the reference measured it."""
        best, form = self.best, self.reference.form
        if best is not None and best.kind == "closed-form":
            units = 2 * len(form.ramps)
            more = f"raise model.width (now {self.stats.width})" if self.stats.width < units else "try train.method: ramps"
            return (f"an exact interpolant exists (the closed form interpolates these samples, {units} units, cost "
                    f"{best.cost:.6g}): {more}")
        if best is not None and best.kind == "ramps":
            return (f"the ramps method interpolates these samples exactly (cost {best.cost:.6g}, measured): "
                    "set train.method: ramps")
        if best is not None and best.kind == "none" and best.reason:
            return f"the ramps method finds none either ({best.reason})"
        return "try train.method: ramps (a convex program over sums of ramps), less noise or a larger data.min_distance"

    @property
    def notes(self) -> list[str]:
        out, c = [], self.course
        if self.returned == "initial" and c is not None and c.last_step > c.first_step:
            out.append(f"training did not lower the path cost: no check after step 0 had a cheaper exact interpolant "
                       f"(the last, at step {c.last_step}, {c.last_cost / c.first_cost:.3g}x step 0's), so the network "
                       "returned is the initial units' (docs/training.md 10)")
        ratio = self.reference_ratio
        if ratio is not None and ratio > _REFERENCE_SLACK and self.best.kind != "none":
            found = "the closed form" if self.best.kind == "closed-form" else "an exact interpolant found by ramps"
            out.append(f"cost {ratio:.3g}x {found}: training stopped at a local solution")
        return out

    def to_dict(self) -> dict:
        s = self.stats.to_dict()
        out = {k: s[k] for k in ("cost", "train_mse", "max_residual", "steps", "seconds", "device", "dtype", "ell",
                                 "noise_radius", "affine_residual", "affine_residual_rel", "threads") if k in s}
        out.update({k: s[k] for k in ("lower_bound", "directions", "ramps") if k in s})
        out.update(max_residual_rel=s["max_residual_rel"], tol_unit=s["tol_unit"], tol=self.tol, method=s["method"],
                   mode=s["mode"], converged=s["converged"], stop_reason=s["stop_reason"],
                   trained_with=s["trained_with"], width=s["width"], kept_units=self.kept_units,
                   active_units=self.active_units,
                   returned=self.returned, returned_step=s["returned_step"], polished=self.polished,
                   closed_form=self.reference.to_dict())
        c = self.course
        if c is not None:
            out.update(cost_initial=c.first_cost, cost_last_check=c.last_cost,
                       cost_trend=None if c.trend is None else c.trend["trend"])
        if self.reference.form is not None:
            out.update(closed_form_cost=self.reference.form.cost_formula, cost_ratio=self.cost_ratio,
                       function_gap=self.function_gap)
        if self.best is not None:
            out.update(reference=self.best.to_dict(), reference_kind=self.best.kind, reference_cost=self.best.cost,
                       reference_ratio=self.reference_ratio)
        if self.polish is not None:
            out["polish"] = self.polish.to_dict()
        if self.notes:
            out["notes"] = self.notes
        if self.figures:
            out["figures"] = list(self.figures)
        return out | {"status": self.status}


@dataclass(frozen=True)
class CompareSummary:
    """`reluden compare`: the comparison (compare.Comparison) and the nn fits it trained."""

    comparison: object
    fits: tuple = ()                        # per (level, repeat): the nn fit's facts
    figure: str | None = None
    interrupted_after: int | None = None    # levels finished when it was interrupted (None: it finished)
    levels_requested: tuple = ()

    @property
    def status(self) -> str:
        return "ok" if self.interrupted_after is None else "interrupted"

    @property
    def reason(self) -> str | None:
        if self.interrupted_after is None:
            return None
        return (f"interrupted after {self.interrupted_after} of {len(self.levels_requested)} noise levels (the "
                "finished ones are in compare.csv and result.json)")

    def to_dict(self) -> dict:
        out = self.comparison.to_dict() if self.comparison is not None else {}
        if self.fits:
            out["nn_fits"] = list(self.fits)
        if self.interrupted_after is not None:
            out["levels_requested"] = list(self.levels_requested)
        return out | ({"figure": self.figure} if self.figure else {})


@dataclass(frozen=True)
class AlignSummary:
    """`reluden align`: the alignment report of a fitted network, beside the reference and the fit."""

    report: object                          # align.AlignReport
    reference: Reference
    fit: dict                               # the fit's result (FitSummary.to_dict() or read from its run)
    function_gap: float | None = None
    plane_gap: float | None = None
    figures: tuple = ()

    @property
    def status(self) -> str:
        return self.fit.get("status", "ok")

    @property
    def reason(self) -> str | None:
        return self.fit.get("reason")

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.report.to_dict().items() if k not in ("geometry", "status", "rho")}
        out.update(closed_form=self.reference.to_dict(), fit=self.fit)
        if self.function_gap is not None:
            out["function_gap"] = self.function_gap
        if self.plane_gap is not None:
            out["plane_gap"] = self.plane_gap
        return out | ({"figures": list(self.figures)} if self.figures else {})


@dataclass(frozen=True)
class CertifySummary:
    """`reluden certify`: the certified interval, where the closed form lies in it, and the polish of the
    fitted network."""

    certificate: object                     # certificates.Certificate
    reference: Reference
    fit: dict
    polish: dict = field(default_factory=dict)

    @property
    def position(self) -> dict | None:
        """Where the closed form's cost lies against [lower, upper]: `certified` when inside an interval narrower
        than the tolerance (docs/theory.md 8)."""
        if self.reference.form is None:
            return None
        cost, cert = self.reference.form.cost_formula, self.certificate
        inside = cert.lower <= cost <= cert.upper * (1 + 1e-9)
        return {"above_lower": cost >= cert.lower, "inside": inside,
                "ratio_to_upper": cost / cert.upper if cert.upper > 0 else None,
                "certified": bool(inside and cert.converged)}

    @property
    def status(self) -> str:
        return "ok" if self.certificate.converged else "not-converged"

    @property
    def reason(self) -> str | None:
        cert = self.certificate
        if cert.converged:
            return None
        return f"gap {cert.gap:.3g} above tol {cert.tol:g} when certify stopped ({cert.stop_reason}); raise --time-limit"

    def to_dict(self) -> dict:
        closed = self.reference.to_dict() | (self.position or {})
        return {**self.certificate.to_dict(), "closed_form": closed, "fit": self.fit, "polish": self.polish}


@dataclass(frozen=True)
class FlowSummary:
    """`reluden flow`: where the flow of the recipe's denoisers ended (docs/theory.md 10), and with which ones."""

    kind: str                               # score | probability
    denoiser: str                           # closed-form | nn | ramps
    n_starts: int
    schedule: list                          # [{sigma, rho}], the start level first
    levels: list                            # per level: sigma, rho, cost, closed_form_cost, cost_ratio (+ fit facts)
    classes: object                         # flows.Classification of the endpoints
    flow: object | None = None              # flows.Flow (None for the audit, which runs one flow per size)
    audits: dict = field(default_factory=dict)   # denoiser label -> flows.Audit
    figures: tuple = ()

    @property
    def unconverged(self) -> list[float]:
        return [lv["sigma"] for lv in self.levels if lv.get("interpolates") is False]

    @property
    def status(self) -> str:
        return "not-converged" if self.unconverged else "ok"

    @property
    def reason(self) -> str | None:
        if not self.unconverged:
            return None
        shown = ", ".join(f"{s:.3g}" for s in self.unconverged)
        return (f"the trained denoisers at noise level {shown} do not interpolate their samples (max residual above "
                f"train.tol): "
                "they are not the min-cost interpolants the flow is about; see each level's max_residual_rel in "
                "result.json (more train.steps, or fewer levels down to a larger flow.sigma_min)")

    @property
    def notes(self) -> list[str]:
        """The classification's notes, and each trained level well above its closed form (not the min-cost
        interpolant the flow is about; docs/theory.md 10)."""
        out = list(self.classes.notes)
        for lv in self.levels:
            if lv.get("cost_ratio") is not None and lv["cost_ratio"] > _REFERENCE_SLACK and "cached" in lv:
                out.append(f"the denoiser at noise level {lv['sigma']:.3g} costs {lv['cost_ratio']:.3g}x the closed "
                           "form there: not the min-cost interpolant, so its flow is not the theory's")
        return out

    def to_dict(self) -> dict:
        c = self.classes.to_dict() | {"notes": self.notes}
        out = {"kind": self.kind, "denoiser": self.denoiser, "starts": self.n_starts, "schedule": self.schedule,
               "levels": self.levels, **c,
               "memorized": c["fractions"]["training"], "virtual_fraction": c["fractions"]["virtual"],
               "boundary_fraction": c["fractions"]["boundary"], "other_fraction": c["fractions"]["other"]}
        ratios = [lv["cost_ratio"] for lv in self.levels if lv.get("cost_ratio") is not None]
        out["cost_ratio_max"] = max(ratios) if ratios else None
        if self.flow is not None:
            f = self.flow
            out["flow"] = {"steps": f.steps, "dr": f.dr, "r_end": f.r, "sigma_end": f.sigma_end,
                           "stopped": f.stopped, "moved": f.moved}
        if self.audits:
            out["audit"] = self.audits[self.denoiser].to_dict()
            out.update({f"audit_{k.replace('-', '_')}": a.to_dict() for k, a in self.audits.items()
                        if k != self.denoiser})
        return out | ({"figures": list(self.figures)} if self.figures else {})
