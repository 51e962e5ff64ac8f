"""The model graph (IR): frozen ops, `Network`, its canonical `LayeredNet` form, and passes."""
from . import ops
from .layered import Layer, LayeredNet, to_layered
from .network import Network

__all__ = ["ops", "Network", "Layer", "LayeredNet", "to_layered"]
