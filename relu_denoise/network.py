"""The shallow ReLU denoiser of docs/theory.md section 1, trained or built from a closed form.

    h(y) = sum_k a_k [w_k^T y + b_k]_+ + V y + c

Closed forms are ShallowDenoiser instances with explicit weights, so one forward pass, one cost
and one alignment analysis serve trained and theoretical denoisers alike.
"""

import numpy as np
import torch
from torch import nn

from .checks import check_points, output_dtype
from .files import atomic_write
from .metrics import PRUNE_SHARE
from .geometry import RANK_TOL


class ShallowDenoiser(nn.Module):
    """Width-K ReLU network R^d -> R^d with an optional unregularised linear skip unit.

    Parameters
    ----------
    width : int
        Number of ReLU units K (0 is allowed: a purely affine map).
    dim : int
        Input and output dimension d.
    skip : bool
        Whether the linear unit V y is present (trainable). Without it V stays zero.
    dtype, device : torch dtype and device of the parameters (float64 on CPU by default).
    generator : torch.Generator, optional
        Source of the random initialisation.

    Attributes: a (K, d) output weights, w (K, d) input weights, b (K,) biases, V (d, d), c (d,).
    """

    def __init__(self, width: int, dim: int, *, skip: bool = True, dtype=torch.float64,
                 device="cpu", generator: torch.Generator | None = None, init_scale: float = 1.0):
        super().__init__()
        K, d = width, dim
        g = dict(dtype=dtype, device=device)
        # drawn on the CPU, then moved: the same seed gives the same network on every device
        draw = lambda *shape: torch.randn(*shape, generator=generator, dtype=dtype).to(device)
        w = init_scale * draw(K, d) / np.sqrt(d)
        a = init_scale * draw(K, d) / np.sqrt(max(K, 1))
        b = init_scale * draw(K) * 0.1
        self.a = nn.Parameter(a)                      # (K, d)
        self.w = nn.Parameter(w)                      # (K, d)
        self.b = nn.Parameter(b)                      # (K,)
        self.V = nn.Parameter(torch.zeros(d, d, **g), requires_grad=skip)  # (d, d)
        self.c = nn.Parameter(torch.zeros(d, **g))    # (d,)
        self.skip = skip

    @classmethod
    def from_weights(cls, a, w, b, V=None, c=None, *, dtype=torch.float64, device="cpu") -> "ShallowDenoiser":
        """Build a network with explicit weights: a, w (K, d), b (K,), V (d, d) or None, c (d,) or None."""
        a, w, b = (torch.as_tensor(np.asarray(t, dtype=np.float64)) for t in (a, w, b))
        K, d = w.shape if w.ndim == 2 else (0, a.shape[-1])
        net = cls(K, d, skip=V is not None, dtype=dtype, device=device)
        with torch.no_grad():
            net.a.copy_(a.reshape(K, d))
            net.w.copy_(w.reshape(K, d))
            net.b.copy_(b.reshape(K))
            if V is not None:
                net.V.copy_(torch.as_tensor(np.asarray(V, dtype=np.float64)))
            if c is not None:
                net.c.copy_(torch.as_tensor(np.asarray(c, dtype=np.float64)))
        return net

    @property
    def width(self) -> int:
        return self.w.shape[0]

    @property
    def dim(self) -> int:
        return self.w.shape[1]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """h(y) for a batch y of shape (n, d); returns (n, d)."""
        z = torch.relu(y @ self.w.T + self.b)        # (n, K)
        return z @ self.a + y @ self.V.T + self.c     # (n, d)

    def predict(self, y) -> np.ndarray:
        """h(y) for a numpy y (n, d) -> (n, d) in y's float dtype: the protocol every denoiser follows."""
        arr = check_points(y, name="y", d=self.dim)                    # DataError for a wrong dimension
        with torch.no_grad():
            t = torch.as_tensor(arr, dtype=self.w.dtype).to(self.w.device)
            return self(t).cpu().numpy().astype(output_dtype(y), copy=False)

    def unit_costs(self) -> torch.Tensor:
        """||a_k|| ||w_k|| for each unit, shape (K,)."""
        return self.a.norm(dim=1) * self.w.norm(dim=1)

    def path_cost(self) -> torch.Tensor:
        """sum_k ||a_k|| ||w_k||: the cost at the balanced point, invariant to rescaling (docs/theory.md 1)."""
        return self.unit_costs().sum()

    def weight_cost(self) -> torch.Tensor:
        """C(theta) = 1/2 sum_k (||a_k||^2 + ||w_k||^2), the quantity weight decay penalises."""
        return 0.5 * (self.a.pow(2).sum() + self.w.pow(2).sum())

    @torch.no_grad()
    def balance(self) -> "ShallowDenoiser":
        """Rescale each unit so that ||a_k|| = ||w_k|| (h unchanged, weight_cost = path_cost). In place."""
        na, nw = self.a.norm(dim=1), self.w.norm(dim=1)
        t = torch.where((na > 0) & (nw > 0), torch.sqrt(nw / na.clamp_min(1e-300)), torch.ones_like(na))
        self.a.mul_(t[:, None])
        self.w.div_(t[:, None])
        self.b.div_(t)
        return self

    @torch.no_grad()
    def prune(self, tol: float = PRUNE_SHARE) -> tuple["ShallowDenoiser", float]:
        """Drop units whose share of the path cost is below `tol`.

        Returns the pruned copy and the share of path cost removed. Units with a = 0 or w = 0
        are dead; a dropped unit whose w is numerically zero (||w_k|| <= geometry.RANK_TOL x the
        largest ||w||: rounding, e.g. a unit orthogonal to the data's plane restricted to it) but
        a != 0 is the constant a_k [b_k]_+ and is folded into c.
        """
        costs = self.unit_costs()
        total = float(costs.sum())
        keep = costs > tol * max(total, 1e-300)
        norms = self.w.norm(dim=1)                                                   # (K,)
        flat = norms <= RANK_TOL * (float(norms.max()) if len(norms) else 0.0)        # constant units
        c = self.c + (torch.relu(self.b[~keep])[:, None] * self.a[~keep] * flat[~keep][:, None]).sum(0)
        net = ShallowDenoiser.from_weights(self.a[keep].cpu(), self.w[keep].cpu(), self.b[keep].cpu(),
                                           self.V.cpu() if self.skip else None, c.cpu(),
                                           dtype=self.w.dtype, device=self.w.device)
        removed = float(costs[~keep].sum()) / total if total > 0 else 0.0
        return net, removed

    def save(self, path, **meta) -> None:
        """Write weights and `meta` (e.g. the resolved recipe) atomically: temporary name, then rename."""
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        atomic_write(path, lambda tmp: torch.save({"state": state, "skip": self.skip, "meta": meta}, tmp))

    @classmethod
    def load(cls, path, *, device="cpu") -> tuple["ShallowDenoiser", dict]:
        """Read a file written by `save`; returns the network and its meta dictionary. Read with
        weights_only=True (tensors, numbers, strings, lists, dicts): a file from elsewhere cannot run code.
        RunError naming the file when it is missing, truncated or not a network."""
        from .errors import RunError

        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            s = blob["state"]
            net = cls.from_weights(s["a"], s["w"], s["b"], s["V"] if blob["skip"] else None, s["c"],
                                   dtype=s["w"].dtype, device=device)
        except Exception as exc:                 # torch raises RuntimeError, EOFError, UnpicklingError, ...
            text = str(exc).splitlines()[0] if str(exc) else ""
            raise RunError(f"{path}: not a readable reluden network ({type(exc).__name__}{': ' if text else ''}"
                           f"{text[:120]})") from None
        return net, blob.get("meta", {})
