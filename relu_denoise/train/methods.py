"""The training methods (`train.method`): one frozen row each, the only place a method is named in code.

Every rule that depends on the method reads a property of its row, so adding a method (or an option that
only some methods honour) is one row here, and a rule missed elsewhere cannot silently train another way.
docs/training.md describes the methods; this module imports neither torch nor numpy (recipes read it).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """What a training method does. The exact methods constrain h(y_nm) = x_n and minimise the cost."""

    name: str
    trains: bool            # runs the gradient loop (False: ramps, a convex program over a dictionary)
    exact: bool             # an exact-interpolation method: normalised frame, units started in the data's hull
                            #   with kinks through samples, output layer solved at the checks, penalty objective
    multipliers: bool       # keeps a Lagrange multiplier per constraint (offline only)
    averages: bool          # keeps a moving average of the weights (train.average) and returns it
    minibatches: bool       # may take minibatches of constraints (train.batch) where N M is large
    groupable: bool         # fits of one shape can be stepped together as one stacked network (CPU)
    polishable: bool        # the offline fit's output layer may be replaced by the least-cost one (certify.polish)
    offline_only: bool      # needs fixed samples (noise.mode: offline)
    default_lr: float       # train.lr when unset (the exact methods cap it at a tenth of the noise radius)
    summary: str            # one line for help texts

    @property
    def normalises(self) -> bool:
        """Trains in the normalised frame (the clean points centred within the unit ball)."""
        return self.exact

    @property
    def adapts_lr(self) -> bool:
        """Lowers the learning rate at a stall (the paper's procedure keeps it)."""
        return self.exact

    def continuation(self, online: bool) -> bool:
        """Grows the penalty mu while the residual is above tol / 4: the exact methods without multipliers."""
        return self.exact and not self.uses_multipliers(online)

    def uses_multipliers(self, online: bool) -> bool:
        """Online there are no fixed constraints to hold multipliers: the augmented Lagrangian runs as the
        penalty method there."""
        return self.multipliers and not online


METHODS = {m.name: m for m in (
    Method("augmented-lagrangian", trains=True, exact=True, multipliers=True, averages=True, minibatches=True,
           groupable=True, polishable=True, offline_only=False, default_lr=1e-2,
           summary="default, fastest to exact min-cost interpolation"),
    Method("penalty", trains=True, exact=True, multipliers=False, averages=True, minibatches=True,
           groupable=True, polishable=True, offline_only=False, default_lr=1e-2,
           summary="continuation on the penalty weight"),
    Method("weight-decay", trains=True, exact=False, multipliers=False, averages=False, minibatches=False,
           groupable=False, polishable=False, offline_only=False, default_lr=1e-3,
           summary="the paper's procedure: Adam on MSE + lambda C"),
    Method("ramps", trains=False, exact=False, multipliers=False, averages=False, minibatches=False,
           groupable=False, polishable=False, offline_only=True, default_lr=1e-2,
           summary="no training: the least-cost sum of ramps between the clouds, a convex program"),
)}
NAMES = tuple(METHODS)


def method(name: str) -> Method:
    """The row of `train.method` `name` (the recipe has already checked the name)."""
    return METHODS[name]
