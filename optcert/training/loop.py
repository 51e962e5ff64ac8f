"""`train(config)`: one reproducible training run on a MNIST partition, evaluated for its model
card; `export(trained, folder)`: the net as ONNX plus its card (JSON).

Reproducible: every random draw (initialisation, shuffling, noise, PGD starts, MixTrain samples)
comes from generators seeded with `config.seed`; on one thread the weights are identical run to run.
"""
from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from optcert.training.attacks import Pgd
from optcert.training.card import ModelCard
from optcert.training.config import Regime, TrainConfig
from optcert.training.data import load_mnist

#: PGD used for every model card: 40 steps of 0.1·eps (L∞: signed), 2 random restarts.
CARD_PGD = dict(steps=40, step=0.1, restarts=2)


@dataclass
class TrainedNet:
    config: TrainConfig
    model: Any          # torch.nn.Sequential, float32, eval mode
    card: ModelCard


def train(config: TrainConfig, root: str | Path | None = None,
          log: Callable[[str], None] | None = None) -> TrainedNet:
    """Train `config` on its training partition of the MNIST folder `root`; card figures on its
    evaluation partition. `log` receives one line per epoch."""
    import torch

    from optcert.training.losses import Trainer
    from optcert.training.models import build_mlp

    x, y = load_mnist(root, config.train)
    gen = torch.Generator().manual_seed(config.seed)
    model = build_mlp(config.arch, config.seed)
    trainer = Trainer(config, model, gen)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    steps = -(-len(y) // config.batch)
    wall, cpu = time.monotonic(), time.process_time()
    for epoch in range(config.epochs):
        _set_lr(opt, config, epoch)
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        for s in range(steps):
            idx = order[s * config.batch:(s + 1) * config.batch]
            loss = trainer.loss(xt[idx], yt[idx], epoch + s / steps)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        trainer.end_epoch(epoch)
        if log:
            log(f"{config.name} epoch {epoch + 1}/{config.epochs} loss {total / steps:.4f}"
                + (f" alpha {trainer.alpha:.1f}" if config.regime is Regime.MIXTRAIN else ""))
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    model.eval()
    return TrainedNet(config, model, _card(config, model, root, wall, cpu))


def _set_lr(opt, config: TrainConfig, epoch: int) -> None:
    decayed = epoch >= config.epochs * (1 - config.schedule.decay) and config.schedule.decay > 0
    for group in opt.param_groups:
        group["lr"] = config.lr * (0.1 if decayed else 1.0)


def _card(config: TrainConfig, model, root, wall: float, cpu: float) -> ModelCard:
    import torch

    from optcert.training.evaluate import clean_accuracy, pgd_accuracy

    x, y = load_mnist(root, config.evaluate)
    attack = Pgd(config.eps, config.regime.norm, **CARD_PGD)  # type: ignore[arg-type]
    robust = pgd_accuracy(model, x, y, attack, seed=config.seed)
    sched = config.schedule
    return ModelCard(
        name=config.name, regime=config.regime.value, architecture=config.arch.sizes,
        norm=config.regime.norm.value, eps=config.eps, epochs=config.epochs, seed=config.seed,
        data={"source": "MNIST test split (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)",
              "train": config.train.describe(), "evaluate": config.evaluate.describe(),
              "scaling": "pixel / 255, flattened to 784"},
        clean_accuracy=clean_accuracy(model, x, y),
        pgd={"norm": config.regime.norm.value, "eps": config.eps, **CARD_PGD, "accuracy": robust,
             "measured_on": config.evaluate.describe()},
        training_seconds=round(wall, 2), training_cpu_seconds=round(cpu, 2),
        schedule={"warmup": sched.warmup, "ramp": sched.ramp, "kappa": list(sched.kappa),
                  "beta": list(sched.beta), "lr_decay_share": sched.decay},
        settings={"batch": config.batch, "lr": config.lr, "sigma": config.sigma, "pgd_steps": config.pgd_steps,
                  "tight": list(config.tight), "tight_sample": config.tight_sample, "mix_sample": config.mix_sample,
                  "mix_tolerance": config.mix_tolerance, "noise_samples": config.noise_samples},
        versions={"torch": torch.__version__, "numpy": np.__version__})


def export(trained: TrainedNet, folder: str | Path) -> tuple[Path, Path]:
    """Write `<name>.onnx` (torch.onnx.export, dynamo=False, input (1, 784)) and `<name>.json` (the
    card with the ONNX file name and SHA-256) into `folder`; check that optcert reads the ONNX back
    with the same outputs."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / f"{trained.config.name}.onnx"
    example = torch.zeros(1, trained.config.arch.sizes[0])
    with warnings.catch_warnings():   # the TorchScript exporter is deprecated; dynamo needs onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(trained.model, (example,), str(onnx_path), dynamo=False,
                          input_names=["input"], output_names=["logits"])
    _check_roundtrip(trained.model, onnx_path)
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    card = ModelCard(**{**asdict(trained.card), "onnx": onnx_path.name, "onnx_sha256": digest})
    return onnx_path, card.write(folder / f"{trained.config.name}.json")


def _check_roundtrip(model, path: Path) -> None:
    """optcert's importer must give the torch model's outputs (float64 vs float32: 1e-4 slack)."""
    import torch

    from optcert.errors import InvalidModelError
    from optcert.ir.load import load_network

    net = load_network(path)
    x = np.random.default_rng(0).random((4, net.n_inputs))
    with torch.no_grad():
        ref = model(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    diff = float(np.abs(net.forward(x) - ref).max())
    if diff > 1e-4 * (1 + float(np.abs(ref).max())):
        raise InvalidModelError(f"{path}: exported ONNX differs from the torch model by {diff:g}")
