"""Every regime trains (one short epoch on a small slice), runs are reproducible from the seed,
exports load back into optcert with the same outputs, model cards round-trip, the CLI works."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from optcert.errors import InvalidOptionError
from optcert.training import Architecture, ModelCard, Partition, Regime, Schedule, default_config, export, train
from optcert.training.config import TrainConfig

TINY = Architecture((8,))


def _config(regime: Regime, **kw) -> TrainConfig:
    cfg = default_config(regime, TINY, epochs=2, train=Partition(0, 200), evaluate=Partition(300, 400), **kw)
    return replace(cfg, batch=50, schedule=Schedule(0, 1, cfg.schedule.kappa, cfg.schedule.beta))


def _params(model) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("regime", list(Regime))
def test_every_regime_trains_reproducibly_and_exports(regime, mnist_dir, tmp_path):
    cfg = _config(regime)
    first = train(cfg, mnist_dir)
    again = train(cfg, mnist_dir)
    assert all(np.array_equal(a, b) for a, b in zip(_params(first.model), _params(again.model)))
    other = train(replace(cfg, seed=1), mnist_dir)
    assert not all(np.array_equal(a, b) for a, b in zip(_params(first.model), _params(other.model)))
    onnx_path, card_path = export(first, tmp_path)
    card = ModelCard.read(card_path)
    assert card.regime == regime.value and card.onnx == onnx_path.name and len(card.onnx_sha256) == 64
    assert card.architecture == (784, 8, 10) and card.epochs == 2 and card.seed == 0
    assert "images 0–199" in card.data["train"] and "images 300–399" in card.data["evaluate"]
    assert 0 <= card.pgd["accuracy"] <= card.clean_accuracy + 0.05 and card.pgd["norm"] == regime.norm.value
    assert card.training_seconds >= 0


def test_normal_training_learns_the_synthetic_task(mnist_dir):
    trained = train(replace(_config(Regime.NORMAL), epochs=15, lr=1e-2), mnist_dir)
    assert trained.card.clean_accuracy > 0.8


def test_certified_training_improves_the_ibp_bound(mnist_dir):
    """IBP training makes the IBP-certified share on the training slice larger than normal training."""
    import torch

    from optcert.training.bounds import ibp_margins, margin_matrix, weights
    from optcert.training.data import load_mnist
    from optcert.training.models import linear_layers

    x, y = (torch.as_tensor(a) for a in load_mnist(mnist_dir, Partition(0, 200)))
    shares = {}
    for regime in (Regime.NORMAL, Regime.IBP):
        cfg = replace(_config(regime, eps=0.05), epochs=8, lr=1e-2, schedule=Schedule(1, 3, (1.0, 0.5)))
        model = train(cfg, mnist_dir).model
        with torch.no_grad():
            low = ibp_margins(weights(linear_layers(model)), (x - 0.05).clamp(0, 1), (x + 0.05).clamp(0, 1),
                              margin_matrix(y, 10))
        shares[regime] = float(((low + torch.eye(10)[y] * 1e9) > 0).all(1).float().mean())
    assert shares[Regime.IBP] > shares[Regime.NORMAL]


def test_gloro_logits_and_mixtrain_alpha():
    import torch

    from optcert.training.gloro import gloro_logits
    from optcert.training.losses import Trainer
    from optcert.training.models import build_mlp

    logits = torch.tensor([[3.0, 1.0, 0.0]])
    K = torch.tensor([[0.0, 2.0, 1.0], [2.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    out = gloro_logits(logits, K, 0.5)
    assert out.tolist() == [[3.0, 1.0, 0.0, 2.0]]          # max(1 + 0.5·2, 0 + 0.5·1)
    cfg = replace(_config(Regime.MIXTRAIN), schedule=Schedule(warmup=1, ramp=2))
    trainer = Trainer(cfg, build_mlp(TINY, 0), torch.Generator())
    for epoch, accuracy, alpha in ((0, 0.9, 1.0), (1, 0.95, 0.9), (2, 0.89, 0.8), (3, 0.85, 0.9)):
        trainer.tally.correct, trainer.tally.seen = int(accuracy * 100), 100
        trainer.end_epoch(epoch)
        assert trainer.alpha == pytest.approx(alpha)


def test_bad_settings_are_typed_errors():
    with pytest.raises(InvalidOptionError, match="overlaps"):
        default_config(Regime.IBP, train=Partition(0, 100), evaluate=Partition(50, 150))
    with pytest.raises(InvalidOptionError):
        Architecture.parse("mlp-axb")
    with pytest.raises(InvalidOptionError):
        default_config(Regime.IBP, epochs=0)
    assert Architecture.parse("784-100-100-10") == Architecture.parse("mlp-100x2") == Architecture((100, 100))
    assert Architecture.parse("100,50").name == "mlp-100-50"


def test_cli_train_writes_net_card_and_images(mnist_dir, tmp_path, capsys):
    from optcert.cli.main import main
    from optcert.ir.load import load_network

    code = main(["train", "--regime", "crown-ibp", "--arch", "8x1", "--epochs", "1", "--data", str(mnist_dir),
                 "--train", "0-99", "--evaluate", "300-349", "--out", str(tmp_path), "--images-out",
                 str(tmp_path / "eval.npz")])
    assert code == 0
    card = json.loads((tmp_path / "crown-ibp_mlp-8x1_eps0.1_s0.json").read_text())
    assert card["regime"] == "crown-ibp" and "clean accuracy" in capsys.readouterr().out
    assert load_network(tmp_path / card["onnx"]).n_inputs == 784
    assert np.load(tmp_path / "eval.npz")["X"].shape == (50, 784)
    assert main(["train", "--regime", "nope"]) == 7
    assert main(["train", "--regime", "ibp", "--data", str(tmp_path / "none")]) == 3
