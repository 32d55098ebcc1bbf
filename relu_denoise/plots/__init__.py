"""Figures for the command-line runner (design.md, `plots`): matplotlib Figures drawn by Agg, no pyplot.

Every public function draws one figure, writes it atomically (`files.atomic_write`: a temporary
name in the same folder, then a rename) and returns the Path it wrote; the figure is never
registered with pyplot, so there is nothing to close, and no backend is ever selected: importing
and drawing leave the caller's matplotlib as it was. A *denoiser* follows the project's one protocol
(`estimators.Denoiser`): an object whose `predict` maps (n, d) arrays to (n, d) arrays, such as a
ShallowDenoiser, a ClosedForm or a reference estimator; a plain callable (n, d) -> (n, d) is
accepted as the map itself.

    base        the plumbing (figure, save, levels, box) and relu_boundaries
    denoisers   curve_1d, curve_on_line, contours_2d, plane_contours, denoiser_figure
    runs        training_curves, mse_vs_noise, summary_figure (a sweep's sweep.png) and its main_metric
    directions  direction_histogram and the angles it draws (neuron_angles_2d, candidate_angles_2d, ..._plane)
    flows       the flow command's figures: flow_trajectories_2d, flow_classes, flow_distances (CLASS_STYLE)
    audit       flow_audit, the virtual-point stability audit as a table
"""

from .audit import flow_audit
from .base import relu_boundaries
from .denoisers import contours_2d, curve_1d, curve_on_line, denoiser_figure, plane_contours
from .directions import (candidate_angles_2d, candidate_angles_plane, direction_histogram, neuron_angles_2d,
                         neuron_angles_plane)
from .flows import CLASS_STYLE, flow_classes, flow_distances, flow_trajectories_2d
from .runs import main_metric, mse_vs_noise, summary_figure, training_curves

__all__ = ["curve_1d", "curve_on_line", "contours_2d", "plane_contours", "denoiser_figure", "training_curves",
           "mse_vs_noise", "direction_histogram", "relu_boundaries", "summary_figure", "main_metric",
           "neuron_angles_2d", "candidate_angles_2d", "neuron_angles_plane", "candidate_angles_plane",
           "flow_trajectories_2d", "flow_classes", "flow_distances", "flow_audit", "CLASS_STYLE"]
