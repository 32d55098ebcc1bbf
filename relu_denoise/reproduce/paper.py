"""The claims of Zeno, Ongie, Blumenfeld, Weinberger and Soudry (NeurIPS 2023), as reproduce measures them.

Tolerances, and why:
- cost ratio within 1%: fits that reach the minimum land within about 1% of the closed form, local solutions
  at 1.05x or more (docs/theory.md 6); with sphere noise the ball form interpolates the samples, so it is the
  minimum the fit is compared with (docs/theory.md 1).
- certified: the closed form's cost at most 1% above the certified lower bound of every interpolant of the
  samples (docs/theory.md 8); finite sphere samples leave the ball form 0.02-0.1% above their own minimum, and
  certify stops at upper / lower - 1 <= tol.
- alignment: most of the cost (>= 0.8) within half the separation of the predicted directions, the widest
  tolerance that tells them from their rivals, and the 5-degree fraction at least 0.5 above random directions
  (the same statistic under a random rotation; docs/theory.md 6). Fits above 1.05x the closed form are not
  min-cost interpolants: inconclusive.
"""

from . import measures
from .spec import Check, Claim, RunSpec, at_least, at_most, within

PAPER = "NeurIPS 2023"
SEEDS = (0, 1, 2)                   # full size: every fit and alignment over three recipe seeds (quick: seed 0)
SPHERE = {"noise.distribution": "sphere", "noise.sigma": None}       # the paper's noise balls (docs/theory.md 1)
RATIO = within("cost ratio", 1.0, 0.01, "min-cost fits land within 1%, local solutions at >= 1.05x (docs/theory.md 6)")
GAP = at_most("function gap", 0.05, "min-cost fits differ by 0.008-0.03 between the clouds (docs/theory.md 5)")
CERTIFIED = (Check("closed form / lower", 1 - 1e-6, 1.01, "no interpolant of the samples costs less than the lower "
                   "bound, and the form is within 1% of it (docs/theory.md 8)"),)
ALIGNED = (at_least("aligned at half separation", 0.8, "most cost in the widest discriminating cone (docs/theory.md 6)"),
           at_least("aligned - baseline", 0.5, "random directions score 0.1-0.15: far above chance"))


def _fit_claim(id, claim, source, says, recipe, radius, quick=None, extra=()):
    return Claim(id, PAPER, claim, source, says,
                 runs=(RunSpec("fit", "fit", recipe, {**SPHERE, "noise.radius": radius, **dict(extra)}, quick or {},
                               figures=True, seeds=SEEDS),),
                 measure=measures.fit_matches_closed_form, checks=(RATIO, GAP), evidence=(("fit", "fit.png"),))


def _certify_claim(id, claim, source, recipe, radius):
    return Claim(id, PAPER, claim, source, "the closed form is the min-cost interpolant",
                 runs=(RunSpec("certify", "certify", recipe, {**SPHERE, "noise.radius": radius, "noise.samples": 50},
                               {"noise.samples": 30}, options={"time_limit": 300.0, "tol": 1e-3}, weight=2),),
                 measure=measures.certified, checks=CERTIFIED)


def _align_claim(id, claim, source, says, recipe, weight=1.0):
    return Claim(id, PAPER, claim, source, says,
                 runs=(RunSpec("align", "align", recipe, figures=True, weight=weight, seeds=SEEDS),),
                 measure=measures.aligned, checks=ALIGNED, evidence=(("align", "directions.png"),))


CLAIMS = (
    Claim("1d-closed-form", PAPER, "Trained 1-D networks equal the closed-form staircase",
          "Theorem 2; docs/theory.md 2", "the min-cost interpolant is the unique staircase, flat on each ball",
          runs=(RunSpec("fit", "fit", "univariate.yaml", figures=True, seeds=SEEDS),),
          measure=measures.fit_matches_closed_form,
          checks=(RATIO, at_most("function gap", 1e-3, "in 1-D the minimum is unique (docs/theory.md 2)")),
          evidence=(("fit", "fit.png"),)),
    Claim("1d-contraction", PAPER, "The 1-D denoiser contracts toward the clean points",
          "Section 3; docs/theory.md 2", "|h(y) - x_near| <= |y - x_near| for every y; monotone (noise balls: the "
          "empirical variant's uneven flat zones break it by their asymmetry)",
          runs=(RunSpec("fit", "fit", "univariate.yaml", {**SPHERE, "noise.radius": 0.02}),),
          measure=measures.contraction,
          checks=(at_most("contraction excess", 1e-6, "exact for the form, which the fit equals"),
                  at_least("monotone (min step)", -1e-9, "a staircase never decreases (docs/theory.md 2)"))),
    Claim("1d-generalization", PAPER, "At low noise the NN generalizes better than the empirical MMSE",
          "Section 3; docs/theory.md 3", "NN test MSE below eMMSE's on new points at low noise",
          runs=(RunSpec("compare", "compare", "builtin", {"compare.noise": [0.001, 0.003, 0.01, 0.03], "compare.repeats": 3},
                        {"compare.noise": [0.001, 0.01], "compare.n_test": 500, "compare.repeats": 1}, figures=True),),
          measure=measures.emmse_ratio,
          checks=(at_most("nn / emmse (95% upper)", 1.0, "the whole 95% interval below 1"),),
          evidence=(("compare", "compare.png"),)),
    Claim("subspace-closed-form", PAPER, "Data on a line in R^3: trained = closed form", "Section 4.1; docs/theory.md 4.1",
          "the min-cost denoiser is the 1-D one along the data's subspace",
          # on a line the empirical form is the minimum; sigma 0.005 keeps every seed's clouds apart (seed 1 draws
          # two points 0.054 apart, where the recipe's 0.01 overlaps)
          runs=(RunSpec("fit", "fit", "subspace.yaml", {"noise.sigma": 0.005}, figures=True, seeds=SEEDS),),
          measure=measures.fit_matches_closed_form, checks=(RATIO, GAP), evidence=(("fit", "fit.png"),)),
    _fit_claim("rays-closed-form", "Rays from a common apex: trained = closed form", "Section 4.2; docs/theory.md 4.2",
               "a 1-D staircase along each ray", "rays.yaml", 0.1),
    _fit_claim("obtuse-closed-form", "Obtuse triangle: trained = closed form", "Section 4.3; docs/theory.md 4.3",
               "two ramps along the edges at the obtuse vertex", "obtuse-triangle.yaml", 0.1),
    _certify_claim("obtuse-certified", "Obtuse triangle: the closed form is the certified minimum",
                   "Section 4.3; docs/theory.md 4.3, 8", "obtuse-triangle.yaml", 0.1),
    _fit_claim("equilateral-closed-form", "Equilateral triangle: trained = closed form",
               "Section 4.4; docs/theory.md 4.4", "three ramps along the altitudes", "equilateral-triangle.yaml", 0.1),
    _certify_claim("equilateral-certified", "Equilateral triangle: the closed form is the certified minimum",
                   "Section 4.4; docs/theory.md 4.4, 8", "equilateral-triangle.yaml", 0.1),
    _fit_claim("acute-closed-form", "Acute triangle: trained = the numerical closed form",
               "Section 4.4; docs/theory.md 4.4 (numerical)", "ramps along the altitudes", "acute-triangle.yaml", 0.1),
    _certify_claim("acute-certified", "Acute triangle: the closed form is the certified minimum",
                   "Section 4.4; docs/theory.md 4.4, 8", "acute-triangle.yaml", 0.1),
    _align_claim("fig2-obtuse-aligned", "Figure 2: obtuse triangle, boundaries perpendicular to the edges",
                 "Figure 2; docs/theory.md 5, 6", "units along the two edges at the obtuse vertex", "fig2-obtuse.yaml"),
    _align_claim("fig2-equilateral-aligned", "Figure 2: equilateral triangle, boundaries parallel to the edges",
                 "Figure 2; docs/theory.md 5, 6", "units along the three altitudes", "fig2-equilateral.yaml"),
    _align_claim("digits-obtuse-aligned", "Real images: a clearly obtuse digit triangle aligns with its edges",
                 "Section 5; docs/theory.md 5", "the learned function matches the obtuse closed form",
                 "digits-obtuse-110.yaml", weight=5),
    _align_claim("digits-acute-aligned", "Real images: an acute digit triangle aligns with its altitudes",
                 "Section 5; docs/theory.md 5", "the learned function matches the acute closed form",
                 "digits-acute.yaml", weight=4),
    Claim("mnist-size-closed-form", PAPER, "A 28x28 triangle (d = 784) is fitted at the closed form's cost",
          "Section 5; docs/theory.md 5", "at d = 784 the learned function matches the closed form",
          runs=(RunSpec("fit", "fit", "mnist-size-triangle.yaml", {"train.steps": 200}, {"train.steps": 100},
                        figures=True, weight=10),),
          measure=measures.fit_matches_closed_form,
          checks=(RATIO,), evidence=(("fit", "training.png"),)),
    Claim("offline-online-similar", PAPER, "Offline and online training give similar denoisers",
          "Section 5; docs/theory.md 5", "similar min-cost interpolants from fixed and from fresh noise",
          runs=(RunSpec("offline", "fit", "rays.yaml", {**SPHERE, "noise.radius": 0.1}, {"data.points_per_ray": 1}),
                RunSpec("online", "fit", "rays.yaml", {**SPHERE, "noise.radius": 0.1, "noise.mode": "online"},
                        {"data.points_per_ray": 1}, weight=3)),
          measure=measures.offline_online,
          checks=(at_most("gap offline-online", 0.05, "2.2% measured before (docs/theory.md 5); room for online's stop"),)),
)
