"""Regenerates the malformed ONNX files of tests/data/malformed (run by hand; outputs committed)."""
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent / "malformed"


def _model(nodes, inits, inputs=(("x", [1, 3]),), out=("y", [1, 2])):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(out[0], TensorProto.FLOAT, out[1])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def main():
    HERE.mkdir(exist_ok=True)
    w, b = np.ones((2, 3)), np.zeros(2)
    good = _model([helper.make_node("Gemm", ["x", "W", "b"], ["h"], transB=1),
                   helper.make_node("Relu", ["h"], ["y"])], {"W": w, "b": b})
    onnx.save(good, HERE.parent / "tiny.onnx")  # a valid 3-input, 2-output net
    data = (HERE.parent / "tiny.onnx").read_bytes()
    (HERE / "truncated.onnx").write_bytes(data[: len(data) // 2])
    onnx.save(_model([helper.make_node("Gemm", ["x", "W", "b"], ["h"], transB=1, name="gemm"),
                      helper.make_node("Sigmoid", ["h"], ["s"], name="squash"),
                      helper.make_node("Tanh", ["s"], ["y"], name="bend")], {"W": w, "b": b}),
              HERE / "unknown_op.onnx")
    bad = w.copy()
    bad[1, 2] = np.nan
    onnx.save(_model([helper.make_node("Gemm", ["x", "W", "b"], ["y"], transB=1, name="gemm")],
                     {"W": bad, "b": b}), HERE / "nan_weight.onnx")
    onnx.save(_model([helper.make_node("Gemm", ["x", "W", "b"], ["y"], transB=1, name="gemm")],
                     {"W": np.ones((2, 4)), "b": b}), HERE / "shape_mismatch.onnx")
    onnx.save(_model([helper.make_node("Add", ["x", "z"], ["y"], name="add")], {},
                     inputs=(("x", [1, 2]), ("z", [1, 2]))), HERE / "two_inputs.onnx")
    (HERE / "not_onnx.onnx").write_text("this is not a protobuf\n")


if __name__ == "__main__":
    main()
