"""Alignment of a denoiser's ReLU units with directions of the clean data (docs/theory.md 6).

Neuron k of h(y) = sum_k a_k [w_k^T y + b_k]_+ + V y + c has input direction w_k / ||w_k||,
output direction a_k / ||a_k||, boundary {y : w_k^T y + b_k = 0} and cost share
||a_k|| ||w_k|| / path cost. The clean points give **candidate directions** (undirected lines):

    edge          x_j - x_i for i < j, named 'edge xi-xj'
    altitude      in a triangle of three points, the component of x_i - x_j perpendicular to the
                  opposite edge (from the foot of the altitude to x_i), named 'altitude xi' when the
                  triangle is all the points, 'altitude xi of xaxbxc' for a triangle among more points
    face-normal   the same for a simplex of m >= 4 points: the direction within its affine hull
                  perpendicular to the facet opposite x_i ('face-normal xi', '... of xaxbxcxd')
    ray           a closed-form ramp direction that is none of the above (rare; named 'ray <label>')

Candidates that coincide (|cos| > 1 - 1e-9, e.g. the edges of one ray, or an altitude of a right
triangle and a leg) are kept once under the first name, the others listed as its aliases. The
**predicted** directions are the distinct ramp directions of the closed form (docs/theory.md 4),
named after the candidate they coincide with; the other candidates are the **rivals**.

Each kept unit is **assigned** to its nearest candidate (largest |cos(w_k, u)|: only |cos| matters
for an undirected line) when that candidate lies within the tolerance, |cos| >= cos(tolerance),
else to 'unaligned' (docs/theory.md 6). The headline aligned fraction is the cost share assigned to
predicted candidates, so it is the sum of the per-direction shares over the predicted names: a
unit near a predicted direction but nearer a rival counts for the rival. Where a predicted and a
rival candidate lie less than twice the tolerance apart, a unit within tolerance of one may be
as close to the other, and the report says so (`ambiguous`) instead of giving a verdict.

`align_report` balances and prunes a copy of the network and reports the aligned cost fraction,
its random baseline, cost shares per direction, the separation between predicted and rival
candidates, groups of units by (signed) direction, how parallel a_k is to w_k, for data whose
affine hull is smaller than R^d the in-plane share, and, given the closed form, the network's cost
over the form's: the predicted directions are those of min-cost interpolants, so a network far above
the form's cost (a fit whose output layer spreads its cost over many units) is flagged in a note.
"""

from .directions import KINDS, UNALIGNED, Candidate, candidates
from .report import AlignReport, align_report

__all__ = ["KINDS", "UNALIGNED", "AlignReport", "Candidate", "align_report", "candidates"]
