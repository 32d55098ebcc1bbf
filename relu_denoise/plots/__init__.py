"""Figures for the command-line runner (design.md, `plots`): matplotlib Figures drawn by Agg, no pyplot.

Every public function draws one figure, writes it atomically (`files.atomic_write`: a temporary
name in the same folder, then a rename) and returns the Path it wrote; the figure is never
registered with pyplot, so there is nothing to close. A *denoiser* is any
callable numpy (n, d) -> numpy (n, d), e.g. ``net.predict`` or an estimator of `estimators`.

    base        the plumbing (figure, save, levels, box) and relu_boundaries
    denoisers   curve_1d, curve_on_line, contours_2d, plane_contours, denoiser_figure
    runs        training_curves, mse_vs_noise
    directions  direction_histogram
"""

from .base import relu_boundaries
from .denoisers import contours_2d, curve_1d, curve_on_line, denoiser_figure, plane_contours
from .directions import direction_histogram
from .runs import mse_vs_noise, training_curves

__all__ = ["curve_1d", "curve_on_line", "contours_2d", "plane_contours", "denoiser_figure", "training_curves",
           "mse_vs_noise", "direction_histogram", "relu_boundaries"]
