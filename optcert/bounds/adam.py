"""Adam for the bound optimisers (alpha-CROWN slopes, beta multipliers)."""
from __future__ import annotations


class Adam:
    """Plain Adam (Kingma & Ba 2015) on a few tensors, each with its own step size; written out
    because constructing torch.optim.Adam per batch costs more than the steps (and its first use
    imports torch._dynamo, seconds that a short deadline cannot spare)."""

    def __init__(self, params, betas=(0.9, 0.999), eps=1e-8):
        import torch

        self.params, self.b1, self.b2, self.eps, self.t = params, betas[0], betas[1], eps, 0
        self.m = [torch.zeros_like(p) for p, _ in params]
        self.v = [torch.zeros_like(p) for p, _ in params]

    def step(self, grads) -> None:
        import torch

        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        with torch.no_grad():
            for (p, lr), g, m, v in zip(self.params, grads, self.m, self.v):
                if g is None:
                    continue
                m.mul_(self.b1).add_(g, alpha=1 - self.b1)
                v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
                p.sub_(lr * (m / c1) / ((v / c2).sqrt() + self.eps))
