"""Globally-robust networks (Leino, Wang & Fredrikson, ICML 2021, "Globally-robust neural networks").

The ⊥ class: with j the predicted class and K_ji a Lipschitz bound of f_j − f_i (in L2), the
network's logits get an extra entry f_⊥ = max_{i≠j} (f_i + eps·K_ji); the net is *globally
robust* at radius eps where f_j beats f_⊥. Training minimises cross-entropy over the 11 logits
with the true label (so ⊥ must lose). K_ji = ‖w^L_j − w^L_i‖₂ · Π_{k<L} ‖W_k‖₂, with each
spectral norm estimated by power iteration whose vectors persist across steps (as in GloRo):
an *estimate* (differentiable through W), fine for training; optcert's `lipschitz` engine
certifies with rigorous upper bounds instead.
"""
from __future__ import annotations


class SpectralEstimator:
    """Power iteration on each hidden layer's W, one step per call, vectors kept between calls."""

    def __init__(self, layers, generator=None, iterations: int = 1):
        import torch

        self.layers, self.iterations = layers, iterations
        self.vectors = [torch.randn(layer.weight.shape[1], generator=generator) for layer in layers[:-1]]

    def norms(self) -> list:
        """σ_max estimates uᵀ W v (differentiable in W), after refining u, v without gradient."""
        import torch

        out = []
        for k, layer in enumerate(self.layers[:-1]):
            W = layer.weight
            v = self.vectors[k]
            with torch.no_grad():
                for _ in range(self.iterations):
                    u = W @ v
                    u = u / u.norm().clamp(min=1e-12)
                    v = W.T @ u
                    v = v / v.norm().clamp(min=1e-12)
                self.vectors[k] = v
            out.append(u @ W @ v)
        return out

    def pair_bounds(self):
        """K (n_out, n_out): K_ji = ‖w_j − w_i‖₂ Π σ_k (estimate, differentiable)."""
        import torch

        prod = torch.ones(())
        for s in self.norms():
            prod = prod * s
        W = self.layers[-1].weight
        diff = W[:, None, :] - W[None, :, :]
        return (diff.pow(2).sum(-1) + 1e-12).sqrt() * prod


def gloro_logits(logits, K, eps: float):
    """The logits with the ⊥ entry appended (module doc); (B, n + 1)."""
    import torch

    j = logits.argmax(1)
    bot = logits + eps * K[j]                               # (B, n): f_i + eps K_ji
    bot = bot.masked_fill(torch.nn.functional.one_hot(j, logits.shape[1]).bool(), -float("inf"))
    return torch.cat([logits, bot.max(1, keepdim=True).values], dim=1)
