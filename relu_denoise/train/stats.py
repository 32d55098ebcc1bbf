"""What a fit returns: the network, its history and its measured facts, as typed values."""

from dataclasses import asdict, dataclass, field, replace

HISTORY_COLUMNS = ["step", "loss", "cost", "max_residual", "train_mse", "lambda", "penalty", "multiplier", "lr"]


@dataclass(frozen=True)
class FitStats:
    """The measured facts of a returned network (data units; docs/training.md 1 for the yardsticks).

    cost: its path cost; max_residual: max over the samples of ||h(y_nm) - x_n|| (online: over a fixed set
    of fresh samples), max_residual_rel: the same in units of tol_unit = min(ell, noise_radius), the unit
    of train.tol; ell: the smallest distance between clean points; noise_radius: the largest distance of a
    constrained sample from its clean point; affine_residual(_rel): the max residual of the best affine map
    y -> x (what the free linear part alone achieves); stop_reason: converged | max-steps | callback | no-interpolant
    (the residual stayed far from tol and stopped falling, docs/training.md 7); returned_step: the step of the
    check whose network was returned (0: the initial units, not trained; None: not recorded, a checkpoint of an
    older version);
    threads: the count the thread rule chose last (None off the CPU); trained_with: the size of the group of
    fits stepped together (1 alone). The ramps method adds lower_bound (over its dictionary), directions and
    ramps (the dictionary's size).
    """

    cost: float
    train_mse: float
    max_residual: float
    max_residual_rel: float
    steps: int
    seconds: float
    converged: bool
    stop_reason: str
    method: str
    mode: str
    device: str
    dtype: str
    lr: float | None
    penalty: float | None
    tol_unit: float
    ell: float
    noise_radius: float
    affine_residual: float
    affine_residual_rel: float
    width: int
    threads: int | None
    thread_choices: list = field(default_factory=list)
    trained_with: int = 1
    returned_step: int | None = None
    lower_bound: float | None = None
    directions: int | None = None
    ramps: int | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("lower_bound", "directions", "ramps"):          # the ramps method's own facts
            if out[key] is None:
                del out[key]
        return out

    def remeasured(self, *, cost: float, max_residual: float, train_mse: float) -> "FitStats":
        """The same fit's facts for another output layer of the same units (polish)."""
        return replace(self, cost=cost, max_residual=max_residual, train_mse=train_mse,
                       max_residual_rel=max_residual / self.tol_unit)


@dataclass(frozen=True)
class Polish:
    """What the exact output-layer program did to a fit (docs/training.md 4): applied or why not."""

    applied: bool
    reason: str | None = None
    cost_before: float | None = None
    cost: float | None = None
    max_residual: float | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k == "applied"}


@dataclass(frozen=True)
class FitResult:
    """A fitted (balanced) network, its history (column -> list, HISTORY_COLUMNS) and its facts. `polish`
    says what the output-layer program did (None where the method has none)."""

    net: object                   # ShallowDenoiser
    history: dict
    stats: FitStats
    polish: Polish | None = None


@dataclass(frozen=True)
class FitReference:
    """The best exact interpolant of the same samples a fit is compared with (issue: a fit never claims a
    minimality nobody measured): the closed form where it interpolates the samples, else the ramps method's
    solution (with its lower bound over its dictionary of ramps), or why there is none."""

    kind: str                               # closed-form | ramps | none
    cost: float | None = None
    lower_bound: float | None = None        # ramps: over its dictionary only (not a bound on the true minimum)
    max_residual: float | None = None       # of the reference on the samples
    seconds: float | None = None
    complete: bool = True                   # False: the ramps method stopped at its time budget
    reason: str | None = None               # kind none: why

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}
