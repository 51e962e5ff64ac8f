"""Training small MNIST classifiers under the regimes of the certified-training literature, with
ONNX export and model cards (see `config.Regime`). The modules import torch inside functions.

    from optcert.training import Regime, default_config, train, export
    net = train(default_config(Regime.IBP, epochs=40), root="../shared/datasets/mnist")
    export(net, "zoo/")     # zoo/ibp_mlp-100x2_eps0.1_s0.onnx and .json
"""
from optcert.training.card import ModelCard
from optcert.training.config import Regime, Schedule, TrainConfig, default_config
from optcert.training.data import EVALUATE, TRAIN, Partition, load_mnist
from optcert.training.loop import TrainedNet, export, train
from optcert.training.models import Architecture

__all__ = ["EVALUATE", "TRAIN", "Architecture", "ModelCard", "Partition", "Regime", "Schedule", "TrainConfig",
           "TrainedNet", "default_config", "export", "load_mnist", "train"]
