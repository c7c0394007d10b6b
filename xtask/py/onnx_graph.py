"""The course export (fashion_mnist.json + .npz) as an ONNX graph, for `cargo xtask bench`'s ONNX
Runtime column: built with the `onnx` package's helpers over the layer types that
tests/numpy/numpy_forward.py runs (the shipped and benchmark models), following `inbound` for
functional models. The graph takes the (N, 784) float32 rows fmtool's engine takes.

ONNX convolutions and pooling are NCHW, Keras' are NHWC: every 4-D tensor is kept NCHW inside the
graph, Permute's axes are mapped to that order, and Flatten transposes back to NHWC first, so that
the Dense after it sees Keras' order.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from numpy_forward import batchnorm_scale_shift

# Keras' (N, H, W, C) axis k is the graph's axis TO_GRAPH[k]; the graph's axis i is Keras' FROM_GRAPH[i].
TO_GRAPH = [0, 2, 3, 1]
FROM_GRAPH = [0, 3, 1, 2]


class Builder:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, hint):
        self.n += 1
        return f"{hint}_{self.n}"

    def const(self, array, hint="c"):
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def const_i64(self, values, hint="shape"):
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), name))
        return name

    def op(self, op_type, inputs, hint=None, **attrs):
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out


def _first(v):
    return v[0] if isinstance(v, (list, tuple)) else v


def _activation(b, x, name):
    if name in (None, "linear"):
        return x
    if name == "relu":
        return b.op("Relu", [x])
    if name == "softmax":
        return b.op("Softmax", [x], axis=-1)
    raise NotImplementedError(f"ONNX graph: activation {name}")


def _layer(b, e, w, x, rank):
    """One layer: returns (output name, its rank). 4-D tensors are NCHW in the graph."""
    t, cfg = e["type"], e["config"]
    ws = [w[n] for n in e["weights"]]
    if t == "Average":
        return b.op("Mean", x), rank
    if t in ("InputLayer", "Dropout"):
        return x, rank
    if t == "Flatten":
        if rank == 4:
            x = b.op("Transpose", [x], perm=TO_GRAPH)  # out axis k (Keras') = graph axis TO_GRAPH[k]
        return b.op("Flatten", [x], axis=1), 2
    if t == "Permute":
        keras_perm = [0] + list(cfg["dims"])
        return b.op("Transpose", [x], perm=[TO_GRAPH[keras_perm[FROM_GRAPH[i]]] for i in range(4)]), rank
    if t == "Dense":
        y = b.op("MatMul", [x, b.const(ws[0], "kernel")])
        if len(ws) > 1:
            y = b.op("Add", [y, b.const(ws[1].reshape(-1), "bias")])
        return _activation(b, y, cfg.get("activation")), rank
    if t == "Conv2D":
        k = ws[0].transpose(3, 2, 0, 1)  # (kh, kw, C, F) -> (F, C, kh, kw)
        s = _first(cfg.get("strides", 1))
        pad = "SAME_UPPER" if cfg.get("padding") == "same" else "VALID"
        inputs = [x, b.const(k, "kernel")] + ([b.const(ws[1].reshape(-1), "bias")] if len(ws) > 1 else [])
        y = b.op("Conv", inputs, kernel_shape=list(k.shape[2:]), strides=[s, s], auto_pad=pad)
        return _activation(b, y, cfg.get("activation")), rank
    if t == "BatchNormalization":
        inv, shift = batchnorm_scale_shift(cfg, ws)
        c = ws[-1].shape
        shape = (1, -1, 1, 1) if rank == 4 else (1, -1)
        y = b.op("Mul", [x, b.const(np.broadcast_to(inv, c).reshape(shape), "scale")])
        return b.op("Add", [y, b.const(np.broadcast_to(shift, c).reshape(shape), "shift")]), rank
    if t == "ReLU":
        return b.op("Relu", [x]), rank
    if t == "Activation":
        return _activation(b, x, cfg["activation"]), rank
    if t == "MaxPooling2D":
        p = _first(cfg["pool_size"])
        st = _first(cfg.get("strides") or p)
        return b.op("MaxPool", [x], kernel_shape=[p, p], strides=[st, st]), rank
    raise NotImplementedError(f"ONNX graph: layer type {t}")


def onnx_model(arch, w, input_shape):
    """The model as an onnx.ModelProto with input `images` (N, 784) and output `scores`."""
    b = Builder()
    shape = tuple(input_shape)
    if len(shape) == 3:
        x = b.op("Reshape", ["images", b.const_i64((-1,) + shape)])
        x, rank = b.op("Transpose", [x], perm=FROM_GRAPH), 4  # graph axis i = Keras axis FROM_GRAPH[i]
    elif len(shape) == 2:
        x, rank = b.op("Reshape", ["images", b.const_i64((-1,) + shape)]), 3
    elif len(shape) == 1:
        x, rank = "images", 2
    else:
        raise NotImplementedError(f"ONNX graph: input shape {shape}")
    outputs, ranks, last, last_rank = {}, {}, x, rank
    for i, e in enumerate(arch):
        inbound = e.get("inbound")
        if inbound:
            inp = [outputs[n] for n in inbound]
            inp = inp if e["type"] == "Average" else inp[0]
            r = ranks[inbound[0]]
        elif inbound is not None or i == 0:
            inp, r = x, rank
        else:
            inp, r = last, last_rank
        last, last_rank = _layer(b, e, w, inp, r)
        outputs[e["name"]], ranks[e["name"]] = last, last_rank
    b.nodes.append(helper.make_node("Identity", [last], ["scores"]))
    graph = helper.make_graph(
        b.nodes,
        "fashion_mnist",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 10])],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def matmul_model(n):
    """One (n, n) @ (n, n) MatMul, for measuring ONNX Runtime's float32 peak."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model
