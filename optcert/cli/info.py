"""`optcert info NET`: layers, neurons, parameters, input shape and fingerprint of a network."""
from __future__ import annotations

from optcert.cli.common import parse_shape

NAME = "info"


def add_subcommand(sub) -> None:
    i = sub.add_parser(NAME, help="describe a network")
    i.add_argument("network")
    i.add_argument("--input-shape", type=parse_shape)


def run(args) -> int:
    from optcert.ir.load import load_network

    net = load_network(args.network, args.input_shape)
    s = net.summary()
    ops = ", ".join(f"{k} x{v}" for k, v in s.op_counts.items())
    print(f"{net.name}: input {s.input_shape} -> output {s.output_shape}\n"
          f"  ReLU layers: {s.relu_layers}, neurons: {s.neurons}, parameters: {s.parameters}\n"
          f"  ops: {ops}\n  fingerprint: {net.fingerprint()}")
    return 0
