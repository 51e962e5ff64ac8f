"""The model graph (IR): frozen ops, `Network`, its canonical `LayeredNet` form, and passes."""
from optcert.ir import ops
from optcert.ir.layered import Layer, LayeredNet, to_layered
from optcert.ir.network import Network

__all__ = ["ops", "Network", "Layer", "LayeredNet", "to_layered"]
