"""The step by hand: forward, gradients and Adam on stacked flat buffers; the exact output-layer solve; the
exact interpolant (boundaries moved out of the clouds, and the clouds' virtual samples).

h(y) = a^T relu(w y + b) + V y + c with the cost C = 1/2 (||a||^2 + ||w||^2) on a and w only. Written
out by hand, not with autograd, because small networks on a CPU are bound by per-operation overhead
(docs/training.md; benchmarks/fit_speed.py); tests check `_gradients` against autograd. Parameters
live in (d, K) / (K, d) layouts chosen for fast skinny matrix products; the same code runs on every device.
"""

import torch

from ..network import ShallowDenoiser
from .devices import single_thread


class _Stacked:
    """Views of B networks laid out as rows of a (B, n) buffer, each row a _Flat layout: At (B, d, K),
    w (B, K, d), b (B, K, 1), V (B, d, d), c (B, d, 1). The step works on these, whether B = 1 (a fit alone)
    or several fits trained together (batched.py)."""

    def __init__(self, flat: torch.Tensor, K: int, d: int):
        B = flat.shape[0]
        parts = torch.split(flat, (d * K, K * d, K, d * d, d), dim=1)
        self.flat, self.K, self.d, self.n_reg = flat, K, d, 2 * K * d
        self.At, self.w = parts[0].view(B, d, K), parts[1].view(B, K, d)
        self.b, self.V, self.c = parts[2].view(B, K, 1), parts[3].view(B, d, d), parts[4].view(B, d, 1)


class _Flat:
    """a, w, b, V, c as views of one flat tensor: At (d, K) = a^T, w (K, d), b (K, 1), V (d, d), c (d, 1);
    `s` the same as a _Stacked of one row (what the step takes).

    The first 2 K d entries (a and w) are the regularised ones.
    """

    def __init__(self, flat: torch.Tensor, K: int, d: int):
        self.flat, self.K, self.d = flat, K, d
        self.s = _Stacked(flat.view(1, -1), K, d)
        self.At, self.w, self.b, self.V, self.c = (t[0] for t in (self.s.At, self.s.w, self.s.b, self.s.V, self.s.c))
        self.n_reg = 2 * K * d

    @classmethod
    def from_network(cls, net: ShallowDenoiser) -> "_Flat":
        K, d = net.width, net.dim
        parts = [net.a.detach().T.reshape(-1), net.w.detach().reshape(-1), net.b.detach(),
                 net.V.detach().reshape(-1), net.c.detach()]
        return cls(torch.cat(parts).clone(), K, d)

    def network(self, skip: bool) -> ShallowDenoiser:
        return ShallowDenoiser.from_weights(self.At.T.cpu(), self.w.cpu(), self.b[:, 0].cpu(),
                                            self.V.cpu() if skip else None, self.c[:, 0].cpu(),
                                            dtype=self.flat.dtype, device=self.flat.device)

    def weight_cost(self) -> torch.Tensor:
        return 0.5 * self.flat[: self.n_reg].pow(2).sum()

    def path_cost(self) -> torch.Tensor:
        return (self.At.norm(dim=0) * self.w.norm(dim=1)).sum()


class _Workspace:
    """Preallocated (B, K, P) buffers: fresh multi-megabyte temporaries every step cost page faults."""

    def __init__(self):
        self.shape, self.Z, self.S, self.D = None, None, None, None

    def buffers(self, like: torch.Tensor, B: int, K: int, P: int):
        if self.shape != (B, K, P, like.dtype, like.device):
            self.shape = (B, K, P, like.dtype, like.device)
            self.Z, self.S, self.D = (like.new_empty(B, K, P) for _ in range(3))
        return self.Z, self.S, self.D


def _forward(p, Yt: torch.Tensor, ws: _Workspace):
    """h for inputs Yt (B, d, P) of the networks p (a _Stacked of B rows): pre-activations Z (B, K, P),
    activations S (B, K, P), outputs O (B, d, P). A _Flat p with Yt (d, P) gives them without the B axis.

    Batched products throughout, also for B = 1: torch's batched and plain products can round differently
    (small matrices), and a fit must end the same alone or trained with others (batched.py)."""
    if isinstance(p, _Flat):
        Z, S, O = _forward(p.s, Yt[None], ws)
        return Z[0], S[0], O[0]
    Z, S, _ = ws.buffers(Yt, Yt.shape[0], p.K, Yt.shape[2])
    torch.baddbmm(p.b, p.w, Yt, out=Z)                  # (B, K, P)
    torch.clamp_min(Z, 0, out=S)                        # (B, K, P)
    O = torch.baddbmm(p.c, p.At, S).baddbmm_(p.V, Yt)   # (B, d, P)
    return Z, S, O


def _bmm_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """out = a @ b, batched; through a contiguous result where `out` is a strided view (rows of stacked
    buffers): torch's product runs 2-3x slower into strided outputs."""
    if out.is_contiguous():
        torch.bmm(a, b, out=out)
    else:
        out.copy_(torch.bmm(a, b))


def _gradients(p, g, Yt, Z, S, G: torch.Tensor, coef: float, skip: bool, ws: _Workspace) -> None:
    """Write into g the gradient of  sum(G * O) + coef * C  for the forward pass (Z, S) of Yt; G (B, d, P),
    p and g _Stacked (or _Flat with the arrays of one network, without the B axis).

    Consumes Z: it is overwritten with the ReLU's derivative, 1 where Z > 0 and 0 elsewhere.
    """
    if isinstance(p, _Flat):
        return _gradients(p.s, g.s, Yt[None], Z[None], S[None], G[None], coef, skip, ws)
    _bmm_into(g.At, G, S.transpose(1, 2))                                  # (B, d, K)
    dZ = torch.bmm(p.At.transpose(1, 2), G, out=ws.D)                      # (B, K, P)
    dZ.mul_(Z.gt_(0))                                                      # dZ = 0 where Z <= 0, in place
    _bmm_into(g.w.transpose(1, 2), Yt, dZ.transpose(1, 2))                 # (B, d, K); dZ Yt^T rounds unlike
    torch.sum(dZ, 2, keepdim=True, out=g.b)                                # ... for B = 1 and B > 1 if d = 1
    if skip:
        _bmm_into(g.V, G, Yt.transpose(1, 2))
    torch.sum(G, 2, keepdim=True, out=g.c)
    g.flat[:, : p.n_reg].add_(p.flat[:, : p.n_reg], alpha=coef)


ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8     # torch.optim.Adam's defaults (the paper's optimiser)


def adam_step(theta: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int,
              lrs: list[float]) -> None:
    """One Adam step, in place, of B parameter rows theta (B, n) with gradients grad, moments m and v (B, n)
    at step t (counted from 1) and learning rate lrs[i] for row i: torch.optim.Adam's arithmetic, row by row
    where the rates differ (tests: against torch.optim.Adam)."""
    b1, b2 = ADAM_BETAS
    m.lerp_(grad, 1 - b1)
    v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
    denom = (v / (1 - b2 ** t)).sqrt_().add_(ADAM_EPS)
    if len(set(lrs)) == 1:                                            # the usual case: one operation
        theta.addcdiv_(m, denom, value=-lrs[0] / (1 - b1 ** t))
        return
    for i, lr in enumerate(lrs):
        theta[i].addcdiv_(m[i], denom[i], value=-lr / (1 - b1 ** t))


_STIFF = 1e9   # the exact interpolant's penalty, relative to the features' mean squared norm


class _OutputSystem:
    """The exact output-layer problem of a network p with fixed (w, b), on inputs Yt and targets Xt (d, P):

        minimise over (a, V, c)   1/2 ||a||^2 + k/2 ||(h(Y) - X) mask||^2 + lam_weight <Lam, h(Y) - X>.

    With features F = [relu(w y + b); y; 1] (K + d + 1, P; no y rows without skip) and h = Theta^T F it is
    quadratic in Theta: (k Fm F^T + diag(1 on the a rows)) Theta = k Fm X^T - lam_weight F Lam^T, Fm = F mask.
    Formed and factored once in float64 (the system is ill-conditioned, float32 loses it) with a 1e-12
    relative ridge; `solve` then takes any Lam at the cost of two triangular solves. docs/training.md 4.
    """

    @torch.no_grad()
    def __init__(self, p: _Flat, Yt, Xt, mask, *, k: float, skip: bool, stiff: bool = False, features=None):
        K, d = p.K, p.d
        self.dev = torch.device("cpu") if p.flat.device.type == "mps" else p.flat.device   # MPS has no float64
        self.K, self.d, self.skip = K, d, skip
        if features is None:
            Yt = self._f64(Yt)                                                             # (d, P)
            S = torch.relu(torch.addmm(self._f64(p.b), self._f64(p.w), Yt))              # (K, P)
            ones = torch.ones_like(Yt[:1])
            features = torch.cat([S, Yt, ones] if skip else [S, ones])                     # (K+d+1, P)
        self.F = features
        self.mask = None if mask is None else self._f64(mask)
        Fm = self.F if mask is None else self.F * self.mask
        self.X = self._f64(Xt)                                                             # (d, P)
        with single_thread():                   # a product summed over P rounds by the thread count: pinned
            H = Fm @ self.F.T                                                              # (K+d+1, K+d+1)
            self.rhs = Fm @ self.X.T                                                       # (K+d+1, d)
        if stiff:                               # k x the mean feature norm^2 = 1e9: the data term dominates
            k = _STIFF * (K + d + 1) / max(float(H.diagonal().sum()), 1e-300)
        self.k = k
        H.mul_(k)
        H.diagonal()[:K] += 1.0
        H.diagonal().add_(1e-12 * float(H.diagonal().max()))
        self.rhs.mul_(k)
        with single_thread():                   # LAPACK rounds differently on different thread counts
            self.L, info = torch.linalg.cholesky_ex(H)                                   # H is positive definite
            self.LU = None
            if int(info) != 0:                                                             # ... up to rounding
                self.LU, self.pivots = torch.linalg.lu_factor(H)

    def _f64(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(device=self.dev, dtype=torch.float64)

    @torch.no_grad()
    def solve(self, lam=None, lam_weight: float = 0.0) -> torch.Tensor:
        """Theta (K+d+1, d), float64, for multipliers lam (d, P) or none."""
        with single_thread():
            rhs = self.rhs if lam is None else self.rhs - lam_weight * (self.F @ self._f64(lam).T)
            if self.LU is None:
                return torch.cholesky_solve(rhs, self.L)
            return torch.linalg.lu_solve(self.LU, self.pivots, rhs)

    @torch.no_grad()
    def residual(self, theta: torch.Tensor) -> torch.Tensor:
        """h(Y) - X (d, P) for the output layer theta, masked; float64."""
        R = theta.T @ self.F - self.X
        return R if self.mask is None else R * self.mask

    @torch.no_grad()
    def assign(self, p: _Flat, theta: torch.Tensor) -> None:
        """Write theta into p's (a, V, c)."""
        K, d = self.K, self.d
        theta = theta.to(device=p.flat.device, dtype=p.flat.dtype)
        p.At.copy_(theta[:K].T)
        if self.skip:
            p.V.copy_(theta[K:K + d].T)
        p.c.copy_(theta[-1:].T)


@torch.no_grad()
def _snap_boundaries(p: _Flat, Yt: torch.Tensor, N: int, M: int) -> _Flat:
    """A copy of p in which no unit's boundary cuts a point's cloud of samples: each b_k moves by the smallest
    shift s after which all M samples of every clean point lie on one side of w_k y + b_k = 0.

    Yt (d, N M), point-major. Shifts in (-max_m z_knm, -min_m z_knm) leave cloud n cut (z = w y + b); the
    union of these open intervals around 0 is grown until no interval overlaps it, and the nearer end wins.
    An exact interpolant has no cut cloud (h is affine on each cloud), so this projects a fit whose
    boundaries still cross clouds onto ones that the output layer can interpolate exactly (docs/training.md 4).
    """
    q = _Flat(p.flat.clone(), p.K, p.d)
    Z = torch.addmm(q.b, q.w, Yt).view(p.K, N, M)                                  # (K, N, M)
    lo, hi = -Z.amax(2), -Z.amin(2)                                                # (K, N) forbidden shifts
    L = torch.zeros(p.K, 1, dtype=Z.dtype, device=Z.device)
    H = torch.zeros_like(L)
    inf = torch.tensor(float("inf"), dtype=Z.dtype, device=Z.device)
    for _ in range(N):                   # each round takes in at least one more interval, or nothing changes
        hit = (lo < H) & (hi > L)                                                  # (K, N) overlapping (L, H)
        L2 = torch.minimum(L, torch.where(hit, lo, inf).amin(1, keepdim=True))
        H2 = torch.maximum(H, torch.where(hit, hi, -inf).amax(1, keepdim=True))
        if torch.equal(L2, L) and torch.equal(H2, H):
            break
        L, H = L2, H2
    q.b.add_(torch.where(H <= -L, H, L))                                            # (K, 1)
    return q


@torch.no_grad()
def _cloud_features(p: _Flat, Yt: torch.Tensor, Xt: torch.Tensor, N: int, M: int, skip: bool):
    """Features and targets equivalent to all N M samples for a network whose boundaries cut no cloud
    (`_snap_boundaries`): N (d + 1) virtual samples instead of N M, float64.

    On cloud n every unit is active on all samples or on none, so the features are affine, F(y) = A_n z with
    z = [y; 1], and sum_m ||Theta^T F(y_m) - x_n||^2 = ||(Theta^T A_n - [0, x_n]) R_n^T||^2 with R_n^T R_n =
    sum_m z_m z_m^T (a QR factor of cloud n's samples): the virtual samples are the columns of A_n R_n^T with
    targets [0, x_n] R_n^T. Returns (features (K+d+1, N(d+1)), targets (d, N(d+1))).
    """
    K, d = p.K, p.d
    f64 = lambda t: t.to(dtype=torch.float64)  # noqa: E731
    Y = f64(Yt).T.reshape(N, M, d)                                                     # (N, M, d)
    Z = torch.cat([Y, torch.ones_like(Y[..., :1])], dim=2)                             # (N, M, d+1)
    R = torch.linalg.qr(Z, mode="r")[1]                                                # (N, d+1, d+1)
    wb = torch.cat([f64(p.w), f64(p.b)], dim=1)                                        # (K, d+1)
    Zk = torch.addmm(p.b, p.w, Yt).view(K, N, M)                                       # (K, N, M)
    act = (Zk.amax(2) + Zk.amin(2) > 0).to(torch.float64)        # (K, N); a sample on a boundary decides nothing
    eye = torch.eye(d + 1, dtype=torch.float64, device=Y.device)
    rows = [act.T[:, :, None] * wb[None]] + ([eye[None, :d].expand(N, d, d + 1)] if skip else [])
    A = torch.cat(rows + [eye[None, d:].expand(N, 1, d + 1)], dim=1)                   # (N, K+d+1, d+1)
    G = A @ R.transpose(1, 2)                                                          # (N, K+d+1, d+1)
    X = f64(Xt).T.reshape(N, M, d)[:, 0]                                               # (N, d)
    T = X[:, :, None] * R[:, :, d][:, None, :]                                         # (N, d, d+1): x e_d^T R^T
    return G.permute(1, 0, 2).reshape(K + (d if skip else 0) + 1, -1), T.permute(1, 0, 2).reshape(d, -1)
