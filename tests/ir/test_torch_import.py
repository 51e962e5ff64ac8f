"""PyTorch import through torch.fx."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.errors import UnsupportedOpError

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
from optcert.ir.from_torch import from_torch  # noqa: E402


def _check(module, shape, n=6):
    net = from_torch(module, shape)
    x = torch.rand((n,) + shape, dtype=torch.float64)
    with torch.no_grad():
        ref = module.double().eval()(x).reshape(n, -1).numpy()
    np.testing.assert_allclose(net.forward(x.numpy().reshape(n, -1)), ref, atol=1e-12)
    return net


def test_sequential_conv_bn_linear():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, stride=2), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 4 * 4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    for m in seq.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    _check(seq, (1, 8, 8))


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.o = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 2)

    def forward(self, x):
        x = (x - 0.5) / 0.25
        h = torch.relu(self.a(x))
        h = h + self.b(h)
        return self.o(torch.relu(h.view(-1, 6)))


def test_fx_module_with_residual_and_normalisation():
    torch.manual_seed(1)
    net = _check(_Residual(), (6,))
    assert any(type(op).__name__ == "Add" for _, op in net.ops())


def test_unsupported_calls_reported_together():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.act = nn.Sigmoid()

        def forward(self, x):
            return torch.tanh(self.act(self.fc(x)))

    with pytest.raises(UnsupportedOpError) as info:
        from_torch(Bad(), (3,))
    kinds = {k for _, k in info.value.ops}
    assert kinds == {"Sigmoid", "tanh"}


def test_noise_drawn_in_forward_is_refused_and_constants_made_there_are_kept():
    """torch.fx runs torch.randn(3) while tracing and keeps one draw: the importer traces twice and
    refuses a module whose constants differ; deterministic constants made in forward() still import."""
    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.shift = torch.tensor([0.5, -1.0, 2.0])   # a plain tensor attribute, not a buffer

        def forward(self, x):
            return torch.relu(self.fc(x) + torch.randn(3)) + self.shift

    with pytest.raises(UnsupportedOpError, match="random numbers drawn in forward"):
        from_torch(Noisy(), (4,))

    class Fixed(Noisy):
        def forward(self, x):
            return torch.relu(self.fc(x) + torch.tensor([1.0, 2.0, 3.0]) - torch.ones(3)) + self.shift

    torch.manual_seed(3)
    _check(Fixed(), (4,))


class _EinsumWhere(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 3))
        self.register_buffer("mask", torch.rand(2, 3) < 0.5)

    def forward(self, x):
        h = torch.relu(torch.einsum("bci,ij->bcj", x, self.w))
        kept = torch.where(self.mask, h, torch.full((3,), 2.0))      # a constant branch: its fill
        mixed = torch.where(self.mask, -h, h)                        # both branches network tensors
        return torch.cat([kept.flatten(1), torch.einsum("bcj->bj", [mixed])], 1)


def test_einsum_and_where_with_constant_masks_are_exact_and_input_dependent_ones_unsupported():
    torch.manual_seed(4)
    _check(_EinsumWhere(), (2, 4))

    class Gated(nn.Module):
        def forward(self, x):
            return torch.where(x > 0, x, 0.1 * x) + torch.einsum("bi,bi->b", x, x)[:, None]

    with pytest.raises(UnsupportedOpError) as info:
        from_torch(Gated(), (3,))
    assert {k for _, k in info.value.ops} >= {"gt", "einsum"}


class _Shrinks(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 12)
        self.hs, self.ss = nn.Hardsigmoid(), nn.Softshrink(0.3)

    def forward(self, x):
        h = self.fc(x.flatten(1)).view(-1, 3, 4)
        a = self.hs(h) + F.hardsigmoid(-h) + self.ss(h) - F.softshrink(h, lambd=0.1)
        return torch.cumsum(a, 2) + a.cumsum(dim=-2) + torch.tril(a, diagonal=1) - a.triu()


def test_hardsigmoid_softshrink_cumsum_tril_triu_are_exact():
    torch.manual_seed(5)
    _check(_Shrinks(), (12,))

    class OverBatch(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, 0)

    with pytest.raises(UnsupportedOpError, match="cumsum"):
        from_torch(OverBatch(), (3,))


def test_review_cases_of_where_einsum_and_randomness():
    """Tensor.where(self, mask, other) reads its operands in that order; a draw turned into a Python
    number, a random branch or Python's random are refused too, and the generators are left as they
    were; NaN and float32 constants made in forward() import."""
    import random

    class Wheres(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("m", torch.tensor([True, False, True]))
            self.register_buffer("c", torch.tensor([5.0, 6.0, 7.0]))

        def forward(self, x):
            return self.c.where(self.m, x) - x.where(self.m, self.c)

    class Item(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x) * torch.rand(()).item()

    class Branch(Item):
        def forward(self, x):
            return self.fc(x) + (torch.ones(3) if torch.rand(()) < 0.5 else 0.0)

    class Python(Item):
        def forward(self, x):
            return self.fc(x) + random.random()

    class Constants(nn.Module):
        def forward(self, x):
            keep = torch.where(torch.ones(3, dtype=torch.bool), x, torch.full((3,), float("nan")))
            return torch.einsum("bi,ij->bj", keep, torch.ones(3, 2, dtype=torch.float32))

    np.testing.assert_allclose(from_torch(Wheres(), (3,)).forward(np.array([[1.0, 2.0, 3.0]])), [[4.0, -4.0, 4.0]])
    modules = (Item(), Branch(), Python())
    state = torch.get_rng_state()
    for module in modules:
        with pytest.raises(UnsupportedOpError, match="random numbers drawn in forward"):
            from_torch(module, (3,))
    assert torch.equal(state, torch.get_rng_state())

    class Seeded(nn.Module):      # a private seeded generator: deterministic, imported as drawn
        def forward(self, x):
            return x + torch.rand(3, generator=torch.Generator().manual_seed(1))

    class Tril(nn.Module):        # on (batch, n) the batch axis is one of the matrix's
        def forward(self, x):
            return torch.tril(x)

    x = torch.rand(2, 3, dtype=torch.float64)
    np.testing.assert_allclose(from_torch(Seeded(), (3,)).forward(x.numpy()), Seeded()(x).numpy(), atol=1e-7)
    with pytest.raises(UnsupportedOpError, match="tril"):
        from_torch(Tril(), (3,))
    x = np.array([[1.0, 2.0, 3.5]])            # the module runs in float32 only: compare by hand
    np.testing.assert_allclose(from_torch(Constants(), (3,)).forward(x), [[6.5, 6.5]], atol=1e-12)


def test_import_does_not_modify_module():
    seq = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.ReLU())
    seq.train()
    before = seq[1].running_mean.clone()
    from_torch(seq, (2,))
    assert seq.training and torch.equal(seq[1].running_mean, before)


class _ShapeIdioms(nn.Module):
    """The usual PyTorch idioms reading shapes: h.view(h.size(0), -1), x.shape[2:], x.dim()."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 6 * 6, 3)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        up = torch.nn.functional.interpolate(h, size=x.shape[2:], mode="bilinear")
        flat = up[:, :, 1:-1, 1:-1].reshape(up.shape[0], -1)
        return self.fc(flat.view(flat.size(0), flat.size(1) * (x.dim() - 3)))


def test_shape_arithmetic_is_evaluated_from_the_traced_shapes():
    torch.manual_seed(3)
    _check(_ShapeIdioms(), (1, 8, 8))



class _Functional(nn.Module):
    """A hand-written model: parameters used through F.conv2d / F.linear / @, constants folded
    (W.t(), mean.view(...)), reductions and negation."""

    def __init__(self):
        super().__init__()
        self.mean = nn.Parameter(torch.tensor([0.2, -0.1]), requires_grad=False)
        self.cw = nn.Parameter(torch.randn(3, 2, 3, 3))
        self.w = nn.Parameter(torch.randn(4, 3 * 5 * 5))
        self.b = nn.Parameter(torch.randn(4))
        self.v = nn.Parameter(torch.randn(3, 4))

    def forward(self, x):
        x = (x - self.mean.view(1, -1, 1, 1)) / 0.5
        h = torch.relu(torch.nn.functional.conv2d(x, self.cw, padding="same"))
        pooled = h.mean(dim=(2, 3), keepdim=True).sum(1) - h.sum(dim=-1).mean(-1, keepdim=True)[:, :1]
        z = torch.relu(torch.nn.functional.linear(h.flatten(1), self.w, self.b))
        return -(z @ self.v.t()) + pooled.reshape(1, 1)


def test_functional_layers_with_parameters_and_folded_constants():
    torch.manual_seed(4)
    _check(_Functional(), (2, 5, 5), n=1)



class _Idioms2(nn.Module):
    """Constants computed in forward() in their own dtypes (an int64 arange over 3, float32 ones),
    a buffer-derived scale, a positional table sliced by the input's length, 'same' padding,
    reduction dims and a matmul operand given through shapes and keywords, fx's _assert guard."""

    def __init__(self):
        super().__init__()
        self.register_buffer("log_scale", torch.randn(2, 1, 6))
        self.pe = nn.Parameter(torch.randn(1, 2, 10, 6))
        self.conv = nn.Conv2d(2, 2, (3, 2), padding="same", dilation=(1, 2))
        self.w = nn.Parameter(torch.randn(6, 3))

    def forward(self, x):
        torch._assert(x.dim() == 4, "a batch of (C, H, W)")
        h = x + self.pe[:, :, :x.size(2)] + torch.arange(x.size(-1)) / 3 + torch.ones(x.size(-1)) / 7
        h = torch.relu(self.conv(h * torch.exp(self.log_scale)))
        return h.sum(x.dim() - 2).matmul(other=self.w).flatten(1)


def test_more_idioms_are_exact():
    torch.manual_seed(5)
    _check(_Idioms2(), (2, 4, 6), n=1)


def test_a_2d_pool_on_an_input_torch_reads_as_unbatched_is_rejected():
    """torch runs MaxPool2d((2, 1)) on a (1, 4, 6) tensor as one unbatched (C, H, W) image: the
    batch axis would be pooled, so the import refuses rather than pool the wrong axis."""
    with pytest.raises(UnsupportedOpError, match="MaxPool2d"):
        from_torch(nn.Sequential(nn.MaxPool2d((2, 1))), (4, 6))
