"""PyTorch importer: an `nn.Module` (nn.Sequential or anything torch.fx can trace) → `Network`.

Supported: nn.Linear, nn.Conv1d/2d and nn.ConvTranspose1d/2d (zero padding), nn.ReLU / F.relu, nn.Flatten /
torch.flatten / view / reshape, nn.BatchNorm1d/2d (running statistics, i.e. eval mode),
nn.Identity, nn.Dropout, and +, −, ×, ÷ with constants (normalisation) or, for + and −, between
two network tensors (residual connections); max and average pools (1-D and 2-D, modules and
functions), adaptive pools whose output size divides the input, nn.LeakyReLU / F.leaky_relu,
nn.PReLU, nn.ReLU6, nn.Hardtanh, nn.Hardsigmoid and nn.Softshrink, written exactly with ReLUs (see `decompose.py`); data
movement (slicing, torch.cat, F.pad, padding modules, permute, split/chunk, flip, …) as exact
selections (nearest nn.Upsample / F.interpolate, pixel (un)shuffle, tile too); bilinear and
bicubic upsampling as sums of scaled selections (`resize.py`, checked against the layer itself);
clamp, relu6, hardtanh, maximum, minimum, abs, amax and amin written with ReLUs too; + and − of
two network tensors broadcast; functional layers with constant weights (F.linear, F.conv2d,
x @ W, W @ x, torch.einsum with one network operand, cumsum), tril / triu, torch.where with a constant mask
(selections), sums and means over non-batch dims, negation. A module drawing random numbers in
forward() is refused (torch.fx would keep one draw). Shapes come from one traced forward
pass on a (1, *input_shape) example in eval mode on a copy of the module (the module is not
modified); shape arithmetic (h.view(h.size(0), -1), x.shape[2:], x.dim()) is evaluated from them,
and deterministic computations on parameters alone (W.t(), mean.view(1, -1, 1, 1), torch.eye …)
are folded in float64. Every unsupported call is collected and reported in one `UnsupportedOpError`.
"""
from __future__ import annotations

import contextlib
import copy
import io
import operator
from dataclasses import dataclass
from typing import Sequence

import networkx as nx
import numpy as np

from optcert.errors import InvalidModelError, UnsupportedOpError
from optcert.ir import decompose as D
from optcert.ir import ops as O
from optcert.ir import resize as R
from optcert.ir.network import Network


def from_torch(module, input_shape: Sequence[int], name: str | None = None) -> Network:
    """Import `module` for inputs of `input_shape` (without the batch axis)."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    name = name or type(module).__name__
    model = copy.deepcopy(module).double().eval()   # constants fx folds while tracing: float64 too
    try:
        traced = _trace(model)
    except UnsupportedOpError as err:
        raise UnsupportedOpError(err.ops, source=name) from None
    except Exception as err:
        raise InvalidModelError(f"{name}: torch.fx cannot trace the module: {err}") from None
    _refuse_nondeterminism(model, traced, name)
    _constants_in_float64(model, traced)
    example = torch.zeros((1,) + tuple(int(s) for s in input_shape), dtype=torch.float64)
    with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):   # ShapeProp prints tracebacks
        try:
            ShapeProp(traced).propagate(example)
        except Exception as err:
            cause = str(err.__cause__ or err).strip().splitlines() or [type(err).__name__]
            raise InvalidModelError(f"{name}: forward pass on input shape "
                                    f"{tuple(input_shape)} failed: {cause[0]}") from None
    return _FxImporter(traced, name).run()


def _constants_in_float64(model, traced) -> None:
    """Floating-point constants made in forward() (torch.ones(3), in torch's default float32), which
    tracing keeps as they are, converted to float64 like the rest of the module (exactly)."""
    import torch

    own = _own_attrs(model)
    for node in traced.graph.nodes:
        if node.op != "get_attr" or node.target in own:
            continue
        value = _get_attr(traced, node.target)
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != torch.float64:
            parent, _, attr = node.target.rpartition(".")
            setattr(_get_attr(traced, parent) if parent else traced, attr, value.double())


def _own_attrs(model) -> set[str]:
    """The qualified names of `model`'s parameters and buffers (its own state, not traced constants)."""
    return {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}


def _trace(model):
    """torch.fx.symbolic_trace (constants forward() makes are converted to float64 afterwards, by
    `_constants_in_float64`, not made in float64: a seeded generator's draws then stay what the module
    draws). A forward() that draws from torch's, Python's or numpy's global random generator is refused
    (UnsupportedOpError; the generators are restored), since tracing would keep one draw."""
    import random

    import torch
    from torch.fx import symbolic_trace

    states = (torch.get_rng_state(), random.getstate(), np.random.get_state())
    try:
        traced = symbolic_trace(model)
    finally:
        after = (torch.get_rng_state(), random.getstate(), np.random.get_state())
        torch.set_rng_state(states[0])
        random.setstate(states[1])
        np.random.set_state(states[2])
    drew = not torch.equal(states[0], after[0]) or states[1] != after[1] or \
        any(not np.array_equal(a, b) for a, b in zip(states[2], after[2]))
    if drew:
        raise UnsupportedOpError([("forward", "random numbers drawn in forward()")], source=type(model).__name__)
    return traced


def _refuse_nondeterminism(model, traced, name: str) -> None:
    """torch.fx runs whatever does not involve the input while tracing (torch.randn(3), random.random(),
    an `if` on a draw) and keeps its result as a constant or a literal, so a module drawing noise would be
    verified for one fixed draw. A second trace must give the same graph (the same calls, literal
    arguments and constants); otherwise the module is refused (UnsupportedOpError naming the first node
    that differs)."""
    import itertools

    def refuse(where: str):
        return UnsupportedOpError([(where, "random or stateful value in forward()")], source=name)

    try:
        again = _trace(model)
    except Exception:      # raised now, not the first time: state kept between calls
        raise refuse("forward") from None
    own = _own_attrs(model)
    first, second = list(traced.graph.nodes), list(again.graph.nodes)
    position = {**{n: i for i, n in enumerate(first)}, **{n: i for i, n in enumerate(second)}}

    def same(u, v) -> bool:
        if hasattr(u, "op") and hasattr(v, "op"):          # graph nodes: the same place in both graphs
            return position.get(u) == position.get(v)
        if isinstance(u, (list, tuple)) and isinstance(v, (list, tuple)):
            return type(u) is type(v) and len(u) == len(v) and all(same(a, b) for a, b in zip(u, v))
        if isinstance(u, dict) and isinstance(v, dict):
            return u.keys() == v.keys() and all(same(u[k], v[k]) for k in u)
        if isinstance(u, slice) and isinstance(v, slice):
            return same((u.start, u.stop, u.step), (v.start, v.stop, v.step))
        if isinstance(u, float) and isinstance(v, float) and u != u and v != v:
            return True                                      # NaN literals
        return type(u) is type(v) and bool(u == v)

    for u, v in itertools.zip_longest(first, second):
        if u is None or v is None:
            raise refuse((u or v).name)
        if u.op != v.op or not same(u.args, v.args) or not same(u.kwargs, v.kwargs):
            raise refuse(u.name)
        if u.op == "get_attr" and (u.target in own or v.target in own):
            if u.target != v.target:
                raise refuse(u.name)
        elif u.op == "get_attr":
            if not _same_constant(_get_attr(traced, u.target), _get_attr(again, v.target)):
                raise refuse(u.name)
        elif u.target != v.target:
            raise refuse(u.name)


def _same_constant(a, b) -> bool:
    """Equal constants (tensors equal in shape, dtype and value, NaN equal to NaN)."""
    import torch

    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        return bool(torch.equal(a, b)) or (a.is_floating_point() and bool(torch.allclose(a, b, rtol=0, atol=0,
                                                                                            equal_nan=True)))
    return type(a) is type(b) and bool(a == b)


def _is_assert(target) -> bool:
    """torch._assert (fx's guard; passed here, on the traced shapes)."""
    import torch

    return target is torch._assert


def _conv_pads(padding, kernel, dilation) -> tuple[int, int, int, int]:
    """torch's convolution padding (an int, a pair, 'valid' or 'same') as (top, left, bottom, right);
    'same' pads d·(k − 1) in total per axis, the odd one at the end (as torch does)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        total = [int(d) * (int(k) - 1) for d, k in zip(dilation, kernel)]
        return (total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2)
    ph, pw = _pair(padding)
    return (ph, pw, ph, pw)


def _single(v) -> int:
    """A 1-D layer's size argument (an int or a 1-tuple)."""
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def _pair(v) -> tuple[int, int]:
    """A torch int-or-pair argument (stride, dilation) as a pair."""
    a, b = (v, v) if isinstance(v, int) else tuple(v) * (2 if len(v) == 1 else 1)
    return int(a), int(b)


def _array(t) -> np.ndarray:
    return t.detach().cpu().double().numpy()


class _FxImporter:
    def __init__(self, traced, name: str):
        self.traced, self.name = traced, name
        self.modules = dict(traced.named_modules())
        self.g = nx.DiGraph()
        self.dyn: dict[str, str] = {}          # fx node name -> graph node
        self.const: dict[str, np.ndarray] = {}
        self.unsupported: list[tuple[str, str]] = []
        self.output: str | None = None
        self.pending: dict[str, tuple] = {}    # split/chunk nodes, resolved by their getitem nodes
        self.static: dict[str, object] = {}    # shape arithmetic (x.size(0), x.shape[2:]): Python values
        self.folded: dict[str, object] = {}    # constants computed in forward(), as torch tensors

    def run(self) -> Network:
        for node in self.traced.graph.nodes:
            self._visit(node)
        if self.unsupported:
            raise UnsupportedOpError(self.unsupported, source=self.name)
        if self.output is None:
            raise InvalidModelError(f"{self.name}: the module's output does not depend on its input")
        return Network(self.g, "input", self.output, name=self.name)

    def _shape(self, node) -> tuple[int, ...]:
        return tuple(int(s) for s in node.meta["tensor_meta"].shape[1:])

    def _add(self, node, op, srcs) -> None:
        self.dyn[node.name] = D.add_op(self.g, node.name, op, [self.dyn[s.name] for s in srcs])

    def _visit(self, node) -> None:
        if node.op == "placeholder":
            self.g.add_node("input", op=O.Input(self._shape(node)))
            self.dyn[node.name] = "input"
        elif node.op == "get_attr":
            self.const[node.name] = _array(_get_attr(self.traced, node.target))
        elif self._shape_arithmetic(node):
            return None
        elif node.op == "output":
            src = node.args[0]
            self.output = self.dyn.get(getattr(src, "name", ""))
        else:
            if self._selection(node):
                return None
            srcs = [a for a in node.args if hasattr(a, "name") and a.name in self.dyn]
            if not srcs and all(not hasattr(a, "name") or a.name in self.const or a.name in self.static
                                for a in _leaves((node.args, node.kwargs))):
                if not self._fold_constant(node):   # constant-only computation in forward()
                    self._unsupported(node)
                return None
            if any(hasattr(a, "name") and a.name not in self.dyn and a.name not in self.const
                   and a.name not in self.static
                   for a in _leaves((node.args, node.kwargs))):  # downstream of an unsupported node
                if node.op == "call_module" and self._module_op(node) is None:
                    self._unsupported(node)
                elif node.op != "call_module" and not self._known_function(node):
                    self._unsupported(node)
                return None
            try:
                op = self._module_op(node, srcs) if node.op == "call_module" else self._function_op(node, srcs)
            except ValueError as err:
                raise InvalidModelError(f"{self.name}: {node.name}: {err}") from None
            if op is None:
                return self._unsupported(node)
            if isinstance(op, _Built):
                self.dyn[node.name] = op.node
            else:
                self._add(node, op, srcs)

    def _shape_arithmetic(self, node) -> bool:
        """x.size(), x.shape, x.dim(), x.numel() of a network tensor, and any call on such values
        alone (getitem, arithmetic): evaluated now, from the traced shapes with the batch axis of 1
        (the imported network is the module on one input, so they are constants)."""
        if node.op not in ("call_method", "call_function"):
            return False
        args = node.args
        if node.op == "call_method" and node.target in ("size", "dim", "numel") and args and \
                getattr(args[0], "name", None) in self.dyn:
            full = self._full(args[0])
            dim = self._static(args[1] if len(args) > 1 else node.kwargs.get("dim"))
            value = {"size": torch_size(full) if dim is None else full[dim], "dim": len(full),
                     "numel": int(np.prod(full))}[node.target]
        elif node.target is getattr and len(args) == 2 and args[1] == "shape" and \
                getattr(args[0], "name", None) in self.dyn:
            value = torch_size(self._full(args[0]))
        else:
            leaves = [v for v in _leaves((args, node.kwargs)) if hasattr(v, "name")]
            if not leaves or any(v.name not in self.static for v in leaves) or node.op != "call_function":
                return False
            try:
                value = node.target(*self._static(args), **self._static(node.kwargs))
            except Exception:
                return False
            if not isinstance(value, (int, float, bool, tuple, list)) and not _is_assert(node.target):
                return False                                              # tensors stay unsupported
        self.static[node.name] = value
        return True

    def _fold_constant(self, node) -> bool:
        """A deterministic computation on constants only (parameters, shapes): evaluated now, in
        float64 (W.t(), a normalisation's reshape, torch.eye …). Random or unknown calls are not."""
        import torch

        attribute = node.target is getattr and len(node.args) == 2 and node.args[1] in ("T", "mT", "shape")
        if node.target not in _FOLDABLE and not attribute:
            return False

        def value(v):
            if hasattr(v, "name") and v.name in self.folded:       # its own dtype, as torch computed it
                return self.folded[v.name]
            if hasattr(v, "name") and v.name in self.const:
                return torch.tensor(self.const[v.name])
            return self.static[v.name] if hasattr(v, "name") else v
        args, kwargs = _map(node.args, value), _map(node.kwargs, value)
        with torch.no_grad():
            try:
                out = getattr(args[0], node.target)(*args[1:], **kwargs) if node.op == "call_method" \
                    else node.target(*args, **kwargs)
            except Exception:
                return False
        if isinstance(out, torch.Tensor):
            self.folded[node.name] = out
            self.const[node.name] = _array(out)
        elif isinstance(out, (int, tuple)):     # a parameter's shape
            self.static[node.name] = out
        else:
            return False
        return True

    def _full(self, node) -> tuple[int, ...]:
        return (1,) + self._shape(node)

    def _static(self, value):
        """`value` with shape-arithmetic nodes replaced by their Python values."""
        return _map(value, lambda v: self.static[v.name] if hasattr(v, "name") and v.name in self.static else v)

    def _selection(self, node) -> bool:
        """A data-movement call (slicing, cat, pad, permute, split … getitem) written as `Select`s
        and an `Add`: run on distinct positions per network-tensor input, it says what it copies;
        a second run on random values must give exactly those copies (else it is no selection)."""
        import torch

        pending = None
        if node.op == "call_module":
            if type(self.modules[node.target]).__name__ not in _MOVING_MODULES:
                return False
        else:
            if node.target is operator.getitem and node.args:
                pending = self.pending.get(getattr(node.args[0], "name", ""))
            if pending is None and (self._known_function(node) or
                                    (node.target not in _MOVES and node.target not in _TUPLE_MOVES)):
                return False        # the ops of _function_op (a reshape stays a Reshape) or no move at all
            meta = getattr(node.args[0], "meta", {}).get("tensor_meta") if node.args else None
            if node.target in _MATRIX_MOVES and (meta is None or len(meta.shape) < 3):
                return False        # on (batch, n) the batch axis would be one of the matrix's
        inputs: list = []

        def probe(arg):                         # fx nodes → placeholders for the probes
            if hasattr(arg, "name") and arg.name in self.dyn:
                inputs.append(arg)
                return _Slot(len(inputs) - 1)
            if hasattr(arg, "name") and arg.name in self.const:
                return torch.tensor(self.const[arg.name])
            if hasattr(arg, "name") and arg.name in self.static:
                return self.static[arg.name]
            if hasattr(arg, "name"):
                raise LookupError(arg.name)
            return arg
        try:
            if pending is not None:
                inner, (src_args, src_kwargs) = pending
                args, kwargs = _map(src_args, probe), _map(src_kwargs, probe)
                index = node.args[1]
                call = lambda xs: inner(xs, _fill(args, xs), _fill(kwargs, xs))[index]  # noqa: E731
            else:
                args, kwargs = _map(node.args, probe), _map(node.kwargs, probe)
                if node.target in _TUPLE_MOVES:       # its items are picked by getitem nodes
                    self.pending[node.name] = (_caller(node), (node.args, node.kwargs))
                    return True
                inner = _caller(node, self.modules)
                call = lambda xs: inner(xs, _fill(args, xs), _fill(kwargs, xs))  # noqa: E731
        except LookupError:
            return False
        if not inputs:
            return False
        shapes = [(1,) + self._shape(a) for a in inputs]
        sizes = [int(np.prod(sh)) for sh in shapes]
        offsets = np.cumsum([0] + sizes)
        with torch.no_grad():
            try:
                out = call([torch.arange(o + 1, o + n + 1, dtype=torch.float64).reshape(sh)
                            for o, n, sh in zip(offsets, sizes, shapes)])
                rng = np.random.default_rng(0)
                values = [rng.normal(size=sh) for sh in shapes]
                check = call([torch.tensor(v) for v in values])
            except Exception:          # not a pure data movement of these inputs
                return False
        if not isinstance(out, torch.Tensor) or out.shape != check.shape or out.dim() < 1 or out.shape[0] != 1:
            return False
        pos, check = out.numpy()[0].ravel(), check.numpy()[0].ravel()
        source = np.searchsorted(offsets, pos, side="left") - 1        # which input each copy is from
        copied = (pos == np.round(pos)) & (pos >= 1) & (pos <= offsets[-1])
        flat = np.concatenate([v.ravel() for v in values])
        expect = np.where(copied, flat[np.clip(pos.astype(np.int64) - 1, 0, flat.size - 1)], pos)
        if not np.array_equal(expect, check):     # a fill must be the same constant in both runs
            return False
        sources = [(self.dyn[arg.name], np.where(copied & (source == i), pos.astype(np.int64) - 1 - offsets[i], -1))
                   for i, arg in enumerate(inputs)]
        self.dyn[node.name] = D.gather(self._raw, node.name, sources, np.where(copied, 0.0, pos), out.shape[1:])
        return True

    def _raw(self, label: str, op, srcs) -> str:
        return D.add_op(self.g, label, op, srcs)

    def _pool(self, node, src, kind: str, kernel, stride, padding, dilation=1, ceil_mode=False,
              count_include_pad=True, one_d: bool = False) -> _Built | None:
        """Max / average pooling (torch's arguments, 2-D on (C, H, W), or `one_d` on (C, L))
        written with the graph's ops (decompose.py)."""
        shape = self._shape(src)
        if one_d != (len(shape) == 2):     # e.g. a 2-D pool on an unbatched (C, H, W) input
            return None
        if one_d:                          # the 2-D pool on (C, 1, L)
            return self._one_d(node, src, lambda x, sh: self._pool_nodes(
                node.name, x, sh, kind, (1, _single(kernel)), (1, _single(stride or kernel)),
                (0, _single(padding)), (1, _single(dilation)), ceil_mode, count_include_pad))
        if len(shape) != 3:
            return None
        kernel = _pair(kernel)
        stride = _pair(stride) if stride else kernel       # torch: no stride means the kernel's
        return _Built(self._pool_nodes(node.name, self.dyn[src.name], shape, kind, kernel, stride, _pair(padding),
                                       _pair(dilation), ceil_mode, count_include_pad))

    def _pool_nodes(self, label, x, shape, kind, kernel, stride, padding, dilation, ceil_mode, count_include_pad):
        ph, pw = padding
        args = (x, shape, kernel, stride, (ph, pw, ph, pw), dilation, bool(ceil_mode))
        if kind == "max":
            return D.max_pool(self._raw, label, *args)[0]
        return D.avg_pool(self._raw, label, *args, count_include_pad=bool(count_include_pad))[0]

    def _one_d(self, node, src, build) -> _Built:
        """A 1-D layer on (C, L) as its 2-D form `build(node, (C, 1, L))` on (C, 1, L), reshaped back."""
        c, length = self._shape(src)
        flat = self._raw(f"{node.name}/2d", O.Reshape((c, 1, length)), [self.dyn[src.name]])
        built = build(flat, (c, 1, length))
        if isinstance(built, (O.Conv2d, O.ConvTranspose2d)):
            built = self._raw(f"{node.name}/op", built, [flat])
        return _Built(self._raw(node.name, O.Reshape(self._shape(node)), [built]))

    def _adaptive(self, node, src, kind: str, size) -> _Built | None:
        """Adaptive pooling where the output size divides the input (then it is a plain pool)."""
        _, h, w = self._shape(src)
        oh, ow = _pair(size) if size is not None else (h, w)
        if h % oh or w % ow:
            return None
        kernel = (h // oh, w // ow)
        return self._pool(node, src, kind, kernel, kernel, 0)

    def _const_arg(self, v) -> np.ndarray | None:
        """A constant argument (parameter, folded constant or number) as an array, else None."""
        if hasattr(v, "name"):
            return self.const.get(v.name)
        return None if v is None or isinstance(v, bool) else np.asarray(v, dtype=np.float64)

    def _linear_reduce(self, node, src, mean: bool) -> _Built | None:
        """x.sum / x.mean over constant dims other than the batch axis: a dense Affine, reshaped."""
        args = self._static(list(node.args[1:])) + [None]
        dims = self._static(node.kwargs.get("dim", args[0]))
        if dims is None or (not isinstance(dims, int) and len(dims) == 0) or node.kwargs.get("dtype") is not None:
            return None
        shape = self._shape(src)
        dims = [dims] if isinstance(dims, int) else list(dims)
        axes = {int(d) % (len(shape) + 1) for d in dims}
        if 0 in axes:
            return None
        weight, _ = D.reduction_matrix(shape, [a - 1 for a in axes], mean)
        flat = self._raw(f"{node.name}/sum", O.Affine(weight, np.zeros(weight.shape[0])), [self.dyn[src.name]])
        return _Built(self._raw(node.name, O.Reshape(self._shape(node)), [flat]))

    def _matmul(self, node, src) -> _Built | None:
        """F.linear(x, W, b) and x @ W / W @ x with constant W (2-D): a dense Affine, reshaped."""
        import torch.nn.functional as F

        kw = node.normalized_arguments(self.traced, normalize_to_only_use_kwargs=True)
        args = dict(kw.kwargs) if kw is not None else {}
        shape = self._shape(src)
        if node.target is F.linear:
            W, b = self._const_arg(args.get("weight")), args.get("bias")
            bias = np.zeros(0) if b is None else self._const_arg(b)
            if W is None or W.ndim != 2 or bias is None:
                return None
            mat, _ = D.matmul_matrix(shape, W.T, x_left=True)
            lead = mat.shape[0] // W.shape[0]
            try:
                offset = np.tile(np.broadcast_to(bias, (W.shape[0],)), lead) if bias.size else np.zeros(mat.shape[0])
            except ValueError:
                return None
        else:
            pair = [node.args[0] if node.args else node.kwargs.get("input"),
                    node.args[1] if len(node.args) > 1 else node.kwargs.get("other")]
            x_left = pair[0] is src
            W = self._const_arg(pair[1] if x_left else pair[0])
            if W is None or W.ndim != 2 or (not x_left and len(shape) != 2):
                return None
            mat, _ = D.matmul_matrix(shape, W, x_left=x_left)
            offset = np.zeros(mat.shape[0])
        flat = self._raw(f"{node.name}/affine", O.Affine(mat, offset), [self.dyn[src.name]])
        return _Built(self._raw(node.name, O.Reshape(self._shape(node)), [flat]))

    def _einsum(self, node) -> _Built | None:
        """torch.einsum with one network operand and constant others: a dense Affine (exact),
        reshaped; the result must keep the batch axis first."""
        eq, ops = (node.args[0], list(node.args[1:])) if node.args else (None, [])
        if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
            ops = list(ops[0])
        dyn = [i for i, v in enumerate(ops) if hasattr(v, "name") and v.name in self.dyn]
        if not isinstance(eq, str) or len(dyn) != 1 or node.kwargs or tuple(node.meta["tensor_meta"].shape)[:1] != (1,):
            return None
        lhs, arrow, rhs = eq.replace(" ", "").partition("->")
        terms = lhs.split(",")
        lead = "" if len(terms) != len(ops) else "..." if terms[dyn[0]].startswith(".") else terms[dyn[0]][:1]
        if not lead or not (rhs if arrow else D.einsum_output(lhs)).startswith(lead):
            return None      # the network operand's batch axis must stay the result's first
        shapes = [self._full(v) if i == dyn[0] else self._const_arg(v) for i, v in enumerate(ops)]
        if any(v is None for v in shapes):
            return None
        mat, _ = D.einsum_matrix(eq, shapes, dyn[0])
        flat = self._raw(f"{node.name}/affine", O.Affine(mat, np.zeros(mat.shape[0])), [self.dyn[ops[dyn[0]].name]])
        return _Built(self._raw(node.name, O.Reshape(self._shape(node)), [flat]))

    def _cumsum(self, node, src) -> _Built | None:
        """torch.cumsum / x.cumsum over a constant dim other than the batch axis: a dense Affine."""
        dim = self._static(node.args[1] if len(node.args) > 1 else node.kwargs.get("dim"))
        full = self._full(src)
        if not isinstance(dim, int) or not -len(full) <= dim < len(full) or dim % len(full) == 0 or \
                node.kwargs.get("dtype") is not None:
            return None
        mat = D.cumsum_matrix(full, dim)
        flat = self._raw(f"{node.name}/affine", O.Affine(mat, np.zeros(mat.shape[0])), [self.dyn[src.name]])
        return _Built(self._raw(node.name, O.Reshape(self._shape(node)), [flat]))

    def _where(self, node, cond, *branches) -> _Built | None:
        """torch.where(mask, a, b) with a constant mask: each network branch a `Select` (the other
        side's constant as its fill), their sum when both are network tensors. Exact."""
        mask = self._const_arg(cond)
        full, shape = tuple(int(v) for v in node.meta["tensor_meta"].shape), self._shape(node)
        if mask is None or full[:1] != (1,):
            return None      # a mask computed from the input is not affine; the batch axis must stay first
        keep = np.broadcast_to(np.asarray(mask) != 0, full)
        dyn = [v for v in branches if hasattr(v, "name") and v.name in self.dyn]
        consts = [None if v in dyn else self._const_arg(v) for v in branches]
        if any(v not in dyn and c is None for v, c in zip(branches, consts)):
            return None
        parts = []
        for k, v in enumerate(branches):
            if v not in dyn:
                continue
            on = keep if k == 0 else ~keep
            src_full = tuple(int(d) for d in v.meta["tensor_meta"].shape)
            source = np.arange(int(np.prod(src_full))).reshape(src_full)
            index = np.where(on, np.broadcast_to(source, full), -1)
            other = consts[1 - k]
            fill = np.where(on, 0.0, np.broadcast_to(other, full) if other is not None else 0.0)
            parts.append(self._raw(f"{node.name}/{'then' if k == 0 else 'else'}",
                                   O.Select(index.ravel(), fill.ravel(), shape), [self.dyn[v.name]]))
        return _Built(parts[0] if len(parts) == 1 else self._raw(node.name, O.Add(), parts))

    def _conv(self, node, src) -> O.Conv2d | _Built | None:
        """F.conv2d / F.conv1d with a constant weight (and bias), zero or 'same'/'valid' padding."""
        names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
        args = self._static({**dict(zip(names, node.args)), **node.kwargs})
        one_d = len(self._shape(src)) == 2
        w = self._const_arg(args.get("weight"))
        bias = np.zeros(0) if args.get("bias") is None else self._const_arg(args.get("bias"))
        if w is None or w.ndim != (3 if one_d else 4) or bias is None or len(self._shape(src)) != w.ndim - 1:
            return None
        lift = (lambda v: (1, _single(v))) if one_d else _pair
        w = w[:, :, None, :] if one_d else w
        stride, dil, pad = lift(args.get("stride", 1)), lift(args.get("dilation", 1)), args.get("padding", 0)
        pads = _conv_pads(pad if isinstance(pad, str) else (0, _single(pad)) if one_d else pad, w.shape[2:], dil)
        op = O.Conv2d(w, bias if bias.size else np.zeros(w.shape[0]), stride, pads, dil, int(args.get("groups", 1)))
        return self._one_d(node, src, lambda x, sh: op) if one_d else op

    def _broadcast(self, node, src) -> str | None:
        """Network tensor `src` broadcast (numpy rules) to `node`'s shape: itself, or a `Select`."""
        shape, out = self._shape(src), self._shape(node)
        if shape == out:
            return self.dyn[src.name]
        try:
            index = np.broadcast_to(np.arange(int(np.prod(shape))).reshape(shape), out)
        except ValueError:
            return None
        return self._raw(f"{node.name}/{src.name}", O.Select(index.ravel(), np.zeros(index.size), out),
                         [self.dyn[src.name]])

    def _extreme_over(self, node, src, largest: bool) -> _Built | None:
        """torch.amax / amin over constant dims (not the batch axis)."""
        args = self._static(list(node.args[1:])) + [None, None]
        dims = self._static(node.kwargs.get("dim", args[0]))
        keep = bool(self._static(node.kwargs.get("keepdim", args[1] or False)))
        shape = self._shape(src)
        full = (1,) + shape
        dims = range(len(full)) if dims is None or dims == () or dims == [] else \
            [dims] if isinstance(dims, int) else list(dims)
        wanted = {int(d) % len(full) for d in dims}
        if 0 in wanted and not keep:
            return None
        index = D.reduction_index(full, sorted(wanted - {0}))
        return _Built(D.extreme_of(self._raw, node.name, self.dyn[src.name], index, self._shape(node), largest))

    def _interpolate(self, node, src, scale_factor, mode: str, align_corners, run) -> _Built | None:
        """Linear / cubic upsampling (torch's interpolate semantics) written by `resize.py`, accepted
        only when it reproduces the layer itself (`run`) on random values."""
        import torch

        shape, out = self._shape(src), self._shape(node)
        kinds = {"linear": R.ResizeMode.LINEAR, "bilinear": R.ResizeMode.LINEAR, "trilinear": R.ResizeMode.LINEAR,
                 "bicubic": R.ResizeMode.CUBIC}
        if mode not in kinds or len(out) != len(shape):
            return None
        factors = [1.0] * len(shape)
        spatial = len(shape) - 1
        given = scale_factor if isinstance(scale_factor, (tuple, list)) else [scale_factor] * spatial
        for i in range(spatial):
            factors[i + 1] = float(given[i]) if given[i] is not None else out[i + 1] / shape[i + 1]
        coords = R.Coordinates.ALIGN_CORNERS if align_corners else R.Coordinates.PYTORCH_HALF_PIXEL
        how = R.Resize(kinds[mode], coords, exact_coordinates=True)
        x = np.random.default_rng(0).normal(size=shape)
        with torch.no_grad():
            try:
                ref = run(torch.tensor(x[None])).numpy()[0]
            except (TypeError, RuntimeError, ValueError):
                return None
        if ref.shape != out or not np.allclose(R.resized(x, out, factors, how), ref, rtol=0, atol=1e-5):
            return None
        return _Built(R.resize(self._raw, node.name, self.dyn[src.name], shape, out, factors, how))

    def _unsupported(self, node) -> None:
        kind = type(self.modules[node.target]).__name__ if node.op == "call_module" else \
            getattr(node.target, "__name__", str(node.target))
        self.unsupported.append((node.name, kind))

    def _known_function(self, node) -> bool:
        import torch
        import torch.nn.functional as F

        known = {torch.relu, F.relu, torch.flatten, torch.reshape, operator.add, torch.add, operator.sub,
                 torch.sub, operator.mul, torch.mul, operator.truediv, torch.div}
        return node.target in known or node.target in ("relu", "flatten", "view", "reshape", "add", "sub",
                                                       "mul", "div")

    def _module_op(self, node, srcs=()):
        import torch.nn as nn

        m = self.modules[node.target]
        src = srcs[0] if srcs else None
        built = self._module_built(node, m, src) if src is not None else None
        if built is not None:
            return built
        if isinstance(m, nn.Linear):
            bias = _array(m.bias) if m.bias is not None else np.zeros(m.out_features)
            return O.Affine(_array(m.weight), bias)
        if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros":
            bias = _array(m.bias) if m.bias is not None else np.zeros(m.out_channels)
            pads = _conv_pads(m.padding, m.weight.shape[2:], _pair(m.dilation))
            return O.Conv2d(_array(m.weight), bias, _pair(m.stride), pads, _pair(m.dilation), m.groups)
        if isinstance(m, nn.ConvTranspose2d) and m.padding_mode == "zeros" and not isinstance(m.padding, str) \
                and len(node.args) == 1 and not node.kwargs:       # no output_size argument
            bias = _array(m.bias) if m.bias is not None else np.zeros(m.out_channels)
            ph, pw = m.padding
            return O.ConvTranspose2d(_array(m.weight), bias, _pair(m.stride), (ph, pw, ph, pw),
                                     _pair(m.output_padding), _pair(m.dilation), m.groups)
        if isinstance(m, nn.ReLU):
            return O.ReLU()
        if isinstance(m, (nn.Flatten, nn.Unflatten)):
            return O.Reshape(self._shape(node))
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.track_running_stats:
            c = m.num_features
            gamma = _array(m.weight) if m.affine else np.ones(c)
            beta = _array(m.bias) if m.affine else np.zeros(c)
            return O.BatchNorm(_array(m.running_mean), _array(m.running_var), gamma, beta, m.eps)
        if isinstance(m, (nn.Identity, nn.Dropout)):
            return O.Identity()
        return None

    def _module_built(self, node, m, src) -> _Built | None:
        """Pooling and piecewise-linear activations, written with ReLUs and Selects."""
        import torch.nn as nn

        x = self.dyn[src.name]
        if isinstance(m, (nn.MaxPool2d, nn.MaxPool1d)) and not m.return_indices:
            return self._pool(node, src, "max", m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode,
                              one_d=isinstance(m, nn.MaxPool1d))
        if isinstance(m, nn.AvgPool1d):
            return self._pool(node, src, "avg", m.kernel_size, m.stride, m.padding, 1, m.ceil_mode,
                              m.count_include_pad, one_d=True)
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)) and m.padding_mode == "zeros" and \
                len(node.args) == 1 and not node.kwargs:
            bias = _array(m.bias) if m.bias is not None else np.zeros(m.out_channels)
            weight = _array(m.weight)[:, :, None, :]
            s, d = (1, m.stride[0]), (1, m.dilation[0])
            p = _conv_pads(m.padding if isinstance(m.padding, str) else (0, m.padding[0]), weight.shape[2:], d)
            if isinstance(m, nn.Conv1d):
                return self._one_d(node, src, lambda x, sh: O.Conv2d(weight, bias, s, p, d, m.groups))
            return self._one_d(node, src, lambda x, sh: O.ConvTranspose2d(
                weight, bias, s, p, (0, m.output_padding[0]), d, m.groups))
        if isinstance(m, nn.AvgPool2d) and m.divisor_override is None:
            return self._pool(node, src, "avg", m.kernel_size, m.stride, m.padding, 1, m.ceil_mode,
                              m.count_include_pad)
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return self._adaptive(node, src, "avg", m.output_size)
        if isinstance(m, nn.AdaptiveMaxPool2d) and not m.return_indices:
            return self._adaptive(node, src, "max", m.output_size)
        if isinstance(m, nn.Upsample):   # nearest modes were taken as selections already
            return self._interpolate(node, src, m.scale_factor, m.mode, m.align_corners, lambda t: m(t))
        if isinstance(m, nn.LeakyReLU):
            return _Built(D.leaky_relu(self._raw, node.name, x, np.array(m.negative_slope)))
        if isinstance(m, nn.Hardsigmoid):
            return _Built(D.hard_sigmoid(self._raw, node.name, x, 1 / 6, 0.5))
        if isinstance(m, nn.Softshrink):
            return _Built(D.soft_shrink(self._raw, node.name, x, float(m.lambd)))
        if isinstance(m, nn.PReLU):
            shape = self._shape(src)
            slope = _array(m.weight)
            if slope.size > 1 and len(shape) > 1:
                slope = slope.reshape((-1,) + (1,) * (len(shape) - 1))
            return _Built(D.leaky_relu(self._raw, node.name, x, slope))
        if isinstance(m, nn.Hardtanh):  # ReLU6 is a Hardtanh(0, 6)
            return _Built(D.clip(self._raw, node.name, x, np.array(m.min_val), np.array(m.max_val)))
        return None

    def _function_op(self, node, srcs):
        import torch
        import torch.nn.functional as F

        t = node.target
        if t in (torch.relu, F.relu, "relu"):
            return O.ReLU()
        if t in (F.max_pool2d, F.avg_pool2d, F.max_pool1d, F.avg_pool1d, F.leaky_relu, F.interpolate,
                 F.hardsigmoid, F.softshrink) and len(srcs) == 1:
            return self._function_built(node, srcs[0])
        if t in (torch.clamp, torch.clip, "clamp", "clip", F.relu6, F.hardtanh, torch.maximum, torch.minimum,
                 "maximum", "minimum"):
            return self._piecewise(node, srcs)
        if t in (torch.abs, "abs") and len(srcs) == 1 and len(node.args) == 1:
            return _Built(D.absolute(self._raw, node.name, self.dyn[srcs[0].name]))
        if t in (torch.amax, torch.amin, "amax", "amin") and len(srcs) == 1:
            return self._extreme_over(node, srcs[0], t in (torch.amax, "amax"))
        if t in (torch.flatten, "flatten", "view", "reshape", torch.reshape):
            full = tuple(node.meta["tensor_meta"].shape)
            return O.Reshape(self._shape(node)) if full and full[0] == 1 else None   # else it eats the batch axis
        if t in (torch.neg, operator.neg, "neg") and len(srcs) == 1:
            return O.ElementwiseAffine(np.array(-1.0), np.array(0.0))
        if t in (torch.sum, torch.mean, "sum", "mean") and len(srcs) == 1 and node.args[0] is srcs[0]:
            return self._linear_reduce(node, srcs[0], mean=t in (torch.mean, "mean"))
        if t in (F.linear, torch.matmul, operator.matmul, "matmul") and len(srcs) == 1:
            return self._matmul(node, srcs[0])
        if t in (F.conv2d, F.conv1d) and len(srcs) == 1 and node.args[0] is srcs[0]:
            return self._conv(node, srcs[0])
        if t is torch.einsum:
            return self._einsum(node)
        if t in (torch.cumsum, "cumsum") and len(srcs) == 1 and node.args[0] is srcs[0]:
            return self._cumsum(node, srcs[0])
        if t in (torch.where, "where") and len(node.args) == 3 and not node.kwargs:
            cond, a, b = node.args if node.op == "call_function" else (node.args[1], node.args[0], node.args[2])
            return self._where(node, cond, a, b)      # Tensor.where(self, condition, other)
        kinds = {operator.add: "add", torch.add: "add", "add": "add", operator.sub: "sub",
                 torch.sub: "sub", "sub": "sub", operator.mul: "mul", torch.mul: "mul", "mul": "mul",
                 operator.truediv: "div", torch.div: "div", "div": "div"}
        kind = kinds.get(t)
        if kind is None or len(node.args) != 2 or node.kwargs:
            return None
        return self._arith(node, kind, srcs)

    def _function_built(self, node, src) -> _Built | None:
        import torch.nn.functional as F

        kw = node.normalized_arguments(self.traced, normalize_to_only_use_kwargs=True)
        kw = self._static(dict(kw.kwargs)) if kw is not None else None
        if kw is None:
            return None
        if node.target is F.interpolate and not kw.get("antialias", False):
            factor = None if kw.get("recompute_scale_factor") else kw.get("scale_factor")
            return self._interpolate(node, src, factor, kw.get("mode", "nearest"),
                                     kw.get("align_corners"), lambda t: F.interpolate(t, **{
                                         k: v for k, v in kw.items() if k != "input"}))
        if node.target is F.hardsigmoid:
            return _Built(D.hard_sigmoid(self._raw, node.name, self.dyn[src.name], 1 / 6, 0.5))
        if node.target is F.softshrink:
            return _Built(D.soft_shrink(self._raw, node.name, self.dyn[src.name], float(kw.get("lambd", 0.5))))
        if node.target is F.leaky_relu:
            slope = np.array(kw.get("negative_slope", 0.01))
            return _Built(D.leaky_relu(self._raw, node.name, self.dyn[src.name], slope))
        one_d = node.target in (F.max_pool1d, F.avg_pool1d)
        if node.target in (F.max_pool2d, F.max_pool1d) and not kw.get("return_indices", False):
            return self._pool(node, src, "max", kw["kernel_size"], kw.get("stride"), kw.get("padding", 0),
                              kw.get("dilation", 1), kw.get("ceil_mode", False), one_d=one_d)
        if node.target in (F.avg_pool2d, F.avg_pool1d) and kw.get("divisor_override") is None:
            return self._pool(node, src, "avg", kw["kernel_size"], kw.get("stride"), kw.get("padding", 0), 1,
                              kw.get("ceil_mode", False), kw.get("count_include_pad", True), one_d=one_d)
        return None

    def _piecewise(self, node, srcs) -> _Built | None:
        """clamp / clip / relu6 / hardtanh with constant limits, maximum / minimum (decompose.py)."""
        import torch
        import torch.nn.functional as F

        t, x = node.target, self.dyn[srcs[0].name]
        if t in (torch.maximum, torch.minimum, "maximum", "minimum"):
            other = node.args[1] if len(node.args) > 1 else node.kwargs.get("other")
            big = t in (torch.maximum, "maximum")
            if len(srcs) == 2 and self._shape(srcs[0]) == self._shape(srcs[1]):
                pair = D.maximum if big else D.minimum
                return _Built(pair(self._raw, node.name, x, self.dyn[srcs[1].name]))
            limit = self._constant(other, self._shape(node))
            if limit is None or len(srcs) != 1 or srcs[0] is not node.args[0]:
                return None
            lo, hi = (limit, np.array(np.inf)) if big else (np.array(-np.inf), limit)
            return _Built(D.clip(self._raw, node.name, x, lo, hi))
        if len(srcs) != 1 or srcs[0] is not node.args[0]:
            return None
        if t is F.relu6:
            lo, hi = np.array(0.0), np.array(6.0)
        elif t is F.hardtanh:
            lo = self._constant(node.args[1] if len(node.args) > 1 else node.kwargs.get("min_val", -1.0), ())
            hi = self._constant(node.args[2] if len(node.args) > 2 else node.kwargs.get("max_val", 1.0), ())
        else:   # clamp / clip: min, max (either may be None)
            args = list(node.args[1:3]) + [None] * (3 - len(node.args))
            lo = self._constant(node.kwargs.get("min", args[0]), self._shape(node), -np.inf)
            hi = self._constant(node.kwargs.get("max", args[1]), self._shape(node), np.inf)
        if lo is None or hi is None:
            return None
        return _Built(D.clip(self._raw, node.name, x, lo, hi))

    def _constant(self, value, shape, missing=None):
        """A number or a constant tensor (without a batch axis) as an array; `missing` for None."""
        if value is None:
            return None if missing is None else np.array(missing)
        if hasattr(value, "name"):
            if value.name not in self.const:
                return None
            value = self.const[value.name]
            if np.ndim(value) > len(shape):       # a constant carrying the batch axis
                value = np.reshape(value, np.shape(value)[np.ndim(value) - len(shape):])
        if isinstance(value, bool) or not isinstance(value, (int, float, np.ndarray, np.number)):
            return None
        return np.asarray(value, dtype=np.float64)

    def _arith(self, node, kind: str, srcs):
        a, b = node.args
        if len(srcs) == 2:
            if kind not in ("add", "sub") or not hasattr(a, "name") or not hasattr(b, "name"):
                return None
            left, right = (self._broadcast(node, v) for v in (a, b))
            if left is None or right is None:
                return None
            if kind == "sub":
                right = self._raw(f"{node.name}/neg", O.ElementwiseAffine(np.array(-1.0), np.array(0.0)), [right])
            return _Built(self._raw(node.name, O.Add(), [left, right]))
        const_first = not (hasattr(a, "name") and a.name in self.dyn)
        c = self._static(b if not const_first else a)
        c = self.const[c.name] if hasattr(c, "name") else np.asarray(c, dtype=np.float64)
        shape = self._shape(node)
        c = np.asarray(c, dtype=np.float64)
        if c.ndim > len(shape):  # a constant carrying the batch axis
            c = c.reshape(c.shape[c.ndim - len(shape):])
        if kind == "add":
            return O.ElementwiseAffine(np.array(1.0), c)
        if kind == "sub":
            return O.ElementwiseAffine(np.array(-1.0), c) if const_first else O.ElementwiseAffine(np.array(1.0), -c)
        if kind == "mul":
            return O.ElementwiseAffine(c, np.array(0.0))
        if kind == "div" and not const_first and np.all(c != 0):
            return O.ElementwiseAffine(1.0 / c, np.array(0.0))
        return None


@dataclass(frozen=True)
class _Slot:
    """Where the i-th network-tensor input goes in a data-movement call's arguments."""

    i: int


def _map(value, fn):
    """`fn` on every leaf of nested lists / tuples / dicts."""
    if isinstance(value, (list, tuple)):
        return type(value)(_map(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map(v, fn) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(_map(value.start, fn), _map(value.stop, fn), _map(value.step, fn))
    return fn(value)


def _foldable():
    import torch

    functions = {operator.getitem, operator.add, operator.sub, operator.mul, operator.truediv, operator.neg,
                 operator.matmul, operator.pow, torch.t, torch.transpose, torch.reshape, torch.flatten,
                 torch.unsqueeze, torch.squeeze, torch.cat, torch.stack, torch.matmul, torch.exp, torch.sqrt,
                 torch.sum, torch.mean, torch.diag, torch.eye, torch.zeros, torch.ones, torch.full, torch.arange,
                 torch.tensor, torch.as_tensor, torch.reciprocal, torch.rsqrt, torch.add, torch.sub, torch.mul,
                 torch.div, torch.neg}
    methods = {"t", "transpose", "permute", "reshape", "view", "flatten", "unsqueeze", "squeeze", "contiguous",
               "double", "float", "detach", "clone", "expand", "repeat", "mul", "add", "sub", "div", "neg",
               "matmul", "sum", "mean", "exp", "sqrt", "rsqrt", "reciprocal", "pow", "__getitem__", "size", "narrow",
               "to"}
    return functions | methods


def torch_size(shape: tuple[int, ...]):
    import torch

    return torch.Size(shape)


def _leaves(value) -> list:
    """Every leaf of nested lists / tuples / dicts."""
    out: list = []
    _map(value, out.append)
    return out


def _fill(value, xs):
    return _map(value, lambda v: xs[v.i] if isinstance(v, _Slot) else v)


def _caller(node, modules=None):
    """(xs, args, kwargs) → the call of `node` (a function, a tensor method or a module) on filled
    arguments."""
    if node.op == "call_module":
        module = modules[node.target]
        return lambda xs, args, kwargs: module(*args, **kwargs)
    if node.op == "call_method":
        return lambda xs, args, kwargs: getattr(args[0], node.target)(*args[1:], **kwargs)
    return lambda xs, args, kwargs: node.target(*args, **kwargs)


def _moves():
    import torch
    import torch.nn.functional as F

    functions = {operator.getitem, torch.cat, torch.concat, torch.stack, torch.flatten, torch.narrow,
                 torch.permute, torch.transpose, torch.squeeze, torch.unsqueeze, torch.reshape, torch.flip,
                 torch.roll, torch.tile, F.pad, F.interpolate, F.pixel_shuffle, F.pixel_unshuffle, torch.tril,
                 torch.triu}
    methods = {"view", "reshape", "permute", "transpose", "flatten", "narrow", "squeeze", "unsqueeze",
               "contiguous", "expand", "repeat", "tile", "flip", "roll", "__getitem__", "tril", "triu"}
    return functions | methods


def _tuple_moves():
    import torch

    return {torch.split, torch.chunk, torch.unbind, "split", "chunk", "unbind"}


class _Lazy(set):
    """A set filled on first use (torch is imported only when a module is imported)."""

    def __init__(self, make):
        super().__init__()
        self._make = make

    def __contains__(self, item) -> bool:
        if not len(self):
            self.update(self._make())
        try:
            return super().__contains__(item)
        except TypeError:          # unhashable targets
            return False


#: modules that only move data (padding), run like the functions of `_moves`
#: (and upsampling: nearest modes are selections; the others fall through to `_interpolate`)
_MOVING_MODULES = {"ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d", "ReflectionPad2d",
                   "ReplicationPad1d", "ReplicationPad2d", "CircularPad2d", "ZeroPad1d",
                   "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle"}
_MOVES = _Lazy(_moves)
#: deterministic calls evaluated when all their inputs are constants (never random ones)
_FOLDABLE = _Lazy(_foldable)
_TUPLE_MOVES = _Lazy(_tuple_moves)
#: moves acting on the last two axes (they need a rank of 3 or more, batch included)
_MATRIX_MOVES = _Lazy(lambda: {__import__("torch").tril, __import__("torch").triu, "tril", "triu"})


@dataclass(frozen=True)
class _Built:
    """A layer already written into the graph by `decompose.py`; `node` holds its result."""

    node: str


def _get_attr(module, target: str):
    obj = module
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj
