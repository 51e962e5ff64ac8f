"""`optcert info NET`: layers, neurons, parameters, input shape and fingerprint of a network."""
from __future__ import annotations

import argparse

from optcert.cli.common import parse_shape
from optcert.cli.stdout import emit

NAME = "info"
HELP = "describe a network: layers, neurons, parameters, input shape"


def add_arguments(i: argparse.ArgumentParser) -> None:
    i.add_argument("network", help="ONNX file (or .pt/.pth torch module with --input-shape)")
    i.add_argument("--input-shape", type=parse_shape, help="input shape for torch models, e.g. 1,28,28")


def run(args) -> int:
    from optcert.ir.load import load_network

    net = load_network(args.network, args.input_shape)
    s = net.summary()
    ops = ", ".join(f"{k} x{v}" for k, v in s.op_counts.items())
    emit(f"{net.name}: input {s.input_shape} -> output {s.output_shape}\n"
         f"  ReLU layers: {s.relu_layers}, neurons: {s.neurons}, parameters: {s.parameters}\n"
         f"  ops: {ops}\n  fingerprint: {net.fingerprint()}")
    return 0
