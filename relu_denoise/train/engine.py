"""The step by hand: forward, gradients and Adam on one flat buffer, and the exact output-layer solve.

h(y) = a^T relu(w y + b) + V y + c with the cost C = 1/2 (||a||^2 + ||w||^2) on a and w only. Written
out by hand, not with autograd, because small networks on a CPU are bound by per-operation overhead
(docs/theory.md 9; benchmarks/fit_speed.py); tests check `_gradients` against autograd. Parameters
live in (d, K) / (K, d) layouts chosen for fast skinny matrix products; the same code runs on every device.
"""

import torch

from ..network import ShallowDenoiser


class _Flat:
    """a, w, b, V, c as views of one flat tensor: At (d, K) = a^T, w (K, d), b (K, 1), V (d, d), c (d, 1).

    The first 2 K d entries (a and w) are the regularised ones.
    """

    def __init__(self, flat: torch.Tensor, K: int, d: int):
        self.flat, self.K, self.d = flat, K, d
        self.At, self.w, self.b, self.V, self.c = self.views(flat)
        self.n_reg = 2 * K * d

    def views(self, t: torch.Tensor):
        K, d = self.K, self.d
        sizes = (d * K, K * d, K, d * d, d)
        parts = torch.split(t, sizes)
        return parts[0].view(d, K), parts[1].view(K, d), parts[2].view(K, 1), parts[3].view(d, d), parts[4].view(d, 1)

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
    """Preallocated (K, P) buffers: fresh multi-megabyte temporaries every step cost page faults."""

    def __init__(self):
        self.shape, self.Z, self.S, self.D = None, None, None, None

    def buffers(self, like: torch.Tensor, K: int, P: int):
        if self.shape != (K, P, like.dtype, like.device):
            self.shape = (K, P, like.dtype, like.device)
            self.Z, self.S, self.D = (like.new_empty(K, P) for _ in range(3))
        return self.Z, self.S, self.D


def _forward(p: _Flat, Yt: torch.Tensor, ws: _Workspace):
    """h for inputs Yt (d, P): pre-activations Z (K, P), activations S (K, P), outputs O (d, P)."""
    Z, S, _ = ws.buffers(Yt, p.K, Yt.shape[1])
    torch.addmm(p.b, p.w, Yt, out=Z)                # (K, P)
    torch.clamp_min(Z, 0, out=S)                    # (K, P)
    O = torch.addmm(p.c, p.At, S).addmm_(p.V, Yt)   # (d, P)
    return Z, S, O


def _gradients(p: _Flat, g: _Flat, Yt, Z, S, G: torch.Tensor, coef: float, skip: bool, ws: _Workspace) -> None:
    """Write into g the gradient of  sum(G * O) + coef * C  for the forward pass (Z, S) of Yt; G (d, P).

    Consumes Z: it is overwritten with the ReLU's derivative, 1 where Z > 0 and 0 elsewhere.
    """
    torch.mm(G, S.T, out=g.At)                                         # (d, K)
    dZ = torch.mm(p.At.T, G, out=ws.D)                                 # (K, P)
    dZ.mul_(Z.gt_(0))                                                  # dZ = 0 where Z <= 0, in place
    torch.mm(dZ, Yt.T, out=g.w)                                        # (K, d)
    torch.sum(dZ, 1, keepdim=True, out=g.b)
    if skip:
        torch.mm(G, Yt.T, out=g.V)
    torch.sum(G, 1, keepdim=True, out=g.c)
    g.flat[: p.n_reg].add_(p.flat[: p.n_reg], alpha=coef)


class _Adam:
    """Adam (Kingma and Ba) on one flat buffer, with bias correction; same constants as torch.optim.Adam."""

    def __init__(self, n: int, *, dtype, device, betas=(0.9, 0.999), eps=1e-8):
        self.m = torch.zeros(n, dtype=dtype, device=device)
        self.v = torch.zeros(n, dtype=dtype, device=device)
        self.t, self.betas, self.eps = 0, betas, eps

    def step(self, theta: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m.lerp_(grad, 1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
        theta.addcdiv_(self.m, denom, value=-lr / (1 - b1 ** self.t))


@torch.no_grad()
def _solve_output(p: _Flat, Yt, Xt, mask, *, k: float, skip: bool, lam=None, lam_weight: float = 0.0) -> None:
    """Set (a, V, c) of p to the exact minimiser, for p's fixed (w, b), of

        1/2 ||a||^2 + k/2 ||(h(Y) - X) mask||^2 + lam_weight <Lam, h(Y) - X>,   Yt, Xt (d, P), mask (1, P).

    With features F = [relu(w y + b); y; 1] (K + d + 1, P; no y rows without skip) and h = Theta^T F
    it is quadratic in Theta: (k Fm F^T + diag(1 on the a rows)) Theta = k Fm X^T - lam_weight F Lam^T,
    Fm = F mask. Solved in float64 (the system is ill-conditioned, float32 loses it) with a 1e-12
    relative ridge. docs/theory.md 9: why the output layer is solved.
    """
    K, d = p.K, p.d
    dev = torch.device("cpu") if p.flat.device.type == "mps" else p.flat.device   # MPS has no float64
    f64 = lambda t: t.to(device=dev, dtype=torch.float64)  # noqa: E731
    Yt = f64(Yt)                                                                   # (d, P)
    S = torch.relu(torch.addmm(f64(p.b), f64(p.w), Yt))                            # (K, P)
    F = torch.cat([S, Yt, torch.ones_like(Yt[:1])] if skip else [S, torch.ones_like(Yt[:1])])   # (K+d+1, P)
    Fm = F if mask is None else F * f64(mask)
    H = k * (Fm @ F.T)                                                             # (K+d+1, K+d+1)
    H.diagonal()[:K] += 1.0
    H.diagonal().add_(1e-12 * float(H.diagonal().max()))
    rhs = k * (Fm @ f64(Xt).T)                                                     # (K+d+1, d)
    if lam is not None:
        rhs.sub_(F @ f64(lam).T, alpha=lam_weight)
    theta = torch.linalg.solve(H, rhs).to(device=p.flat.device, dtype=p.flat.dtype)   # (K+d+1, d)
    p.At.copy_(theta[:K].T)
    if skip:
        p.V.copy_(theta[K:K + d].T)
    p.c.copy_(theta[-1:].T)
