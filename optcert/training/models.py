"""Small fully connected ReLU classifiers for MNIST (784 inputs, 10 classes).

`Architecture` names the hidden widths, e.g. `mlp-100x2` = 784-100-100-10 (the size of the shared
salman_mnist seed nets) and `mlp-32x2` = 784-32-32-10 (64 ReLUs: exact verification takes seconds).
Models are plain `torch.nn.Sequential` stacks of Linear and ReLU, so every training regime, the
ONNX export and optcert's importers see the same affine/ReLU network.
"""
from __future__ import annotations

from dataclasses import dataclass

from optcert.errors import InvalidOptionError

INPUTS = 784
CLASSES = 10


@dataclass(frozen=True)
class Architecture:
    """Hidden layer widths of a 784-…-10 MLP."""

    hidden: tuple[int, ...]

    def __post_init__(self):
        if not self.hidden or any(int(w) < 1 for w in self.hidden):
            raise InvalidOptionError(f"architecture needs at least one hidden layer of width ≥ 1, got {self.hidden}")

    @classmethod
    def parse(cls, text: str) -> "Architecture":
        """"mlp-100x2", "100x2", "100,50" or "784-100-100-10" → Architecture."""
        body = str(text).strip().lower().removeprefix("mlp-")
        try:
            if "x" in body:
                width, _, count = body.partition("x")
                return cls((int(width),) * int(count))
            parts = [int(p) for p in body.replace("-", ",").split(",") if p]
        except ValueError:
            raise InvalidOptionError(f"architecture {text!r} is not like mlp-100x2 or 100,50") from None
        if len(parts) >= 3 and parts[0] == INPUTS and parts[-1] == CLASSES:
            parts = parts[1:-1]
        return cls(tuple(parts))

    @property
    def name(self) -> str:
        widths = set(self.hidden)
        if len(widths) == 1:
            return f"mlp-{self.hidden[0]}x{len(self.hidden)}"
        return "mlp-" + "-".join(map(str, self.hidden))

    @property
    def sizes(self) -> tuple[int, ...]:
        return (INPUTS, *self.hidden, CLASSES)


def build_mlp(arch: Architecture, seed: int):
    """A freshly initialised `nn.Sequential` (Linear, ReLU, …, Linear) in float32; torch's default
    initialisation drawn from a generator seeded with `seed`."""
    import torch

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        mods: list = []
        sizes = arch.sizes
        for k in range(len(sizes) - 1):
            mods.append(torch.nn.Linear(sizes[k], sizes[k + 1]))
            if k < len(sizes) - 2:
                mods.append(torch.nn.ReLU())
        return torch.nn.Sequential(*mods)
    finally:
        torch.random.set_rng_state(state)


def linear_layers(model) -> list:
    """The nn.Linear modules of a Linear/ReLU stack, input to output."""
    import torch

    return [m for m in model if isinstance(m, torch.nn.Linear)]
