"""What fmtool's Python scripts share about the course: the IDX reader, the course notebook's export
(`fashion_mnist.json` + `fashion_mnist.npz`) and the course template's NumPy forward pass.

Used by tests/numpy/'s scripts (a sibling module) and by xtask/py/'s scripts, which put tests/numpy/
first on sys.path. Needs NumPy only: `course_export` takes a Keras model but imports no Keras.
"""

import gzip
import json
import os

import numpy as np

# IDX magic numbers: 0x0000 (always zero), 0x08 (unsigned bytes), the number of dimensions.
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

# ---- data -----------------------------------------------------------------------------------------------


def load_idx(path, magic=None):
    """An IDX file, gzip-compressed or raw, as a uint8 array shaped by its header. Its magic number must be
    `magic` when given (IMAGES_MAGIC, LABELS_MAGIC), else any unsigned-byte one (00 00 08 ndim)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    got = int.from_bytes(data[:4], "big")
    ok = got == magic if magic is not None else data[:3] == b"\x00\x00\x08"
    if len(data) < 4 or not ok:
        raise ValueError(f"{path}: magic {got}, expected {magic or 'an unsigned-byte IDX magic (0x000008nn)'}")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


# ---- the course notebook's export -----------------------------------------------------------------------


def jsonable(o):
    """json.dump's default= hook: layer configs can hold NumPy scalars/arrays (e.g. tf_keras'
    Normalization(mean=np.float32(...)) keeps the NumPy value in its config)."""
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def inbound_names(model):
    """Layer name -> names of the layers feeding it, in call order, from the model config.

    Keras 3: inbound_nodes = [{"args": [...], "kwargs": {...}}], tensors appear (nested in lists) as
    {"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, tensor]}}.
    Keras 2: inbound_nodes = [[[layer, node, tensor, kwargs], ...], ...] (one list per call)."""
    out = {}
    for lc in model.get_config().get("layers", []):
        names = []

        def walk(v):
            if isinstance(v, dict) and v.get("class_name") == "__keras_tensor__":
                names.append(v["config"]["keras_history"][0])
            elif isinstance(v, dict):
                for x in v.values():
                    walk(x)
            elif isinstance(v, (list, tuple)):
                for x in v:
                    walk(x)

        for node in lc.get("inbound_nodes", []):
            if isinstance(node, dict):
                walk(node.get("args", []))
                walk(node.get("kwargs", {}))
            else:
                for t in node:
                    names.append(t[0])
        out[lc["name"]] = names
    return out


def course_export(model, inbound=False):
    """The course notebook's export of `model.layers`: (arch, arrays), arch the fashion_mnist.json list of
    {"name", "type", "config", "weights"} (weights named <layer>_<i>), arrays those names' float32 arrays.
    With `inbound` (functional models) every entry also gets "inbound": the names of the layers feeding it."""
    arch, arrays = [], {}
    feeds = inbound_names(model) if inbound else {}
    for layer in model.layers:
        ws = layer.get_weights()
        names = [f"{layer.name}_{i}" for i in range(len(ws))]
        entry = {"name": layer.name, "type": type(layer).__name__, "config": layer.get_config(), "weights": names}
        if inbound:
            entry["inbound"] = feeds.get(layer.name, [])
        arch.append(entry)
        arrays.update({n: np.asarray(w, dtype=np.float32) for n, w in zip(names, ws)})
    return arch, arrays


def write_export(d, arch, arrays, indent=None):
    """Writes d/fashion_mnist.json (json.dump, NumPy values through `jsonable`) and d/fashion_mnist.npz (np.savez)."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "fashion_mnist.json"), "w") as f:
        json.dump(arch, f, default=jsonable, indent=indent)
    np.savez(os.path.join(d, "fashion_mnist.npz"), **arrays)


def load_export(d):
    """d/fashion_mnist.json and .npz as (arch, {name: array}), read with json.load and numpy.load."""
    with open(os.path.join(d, "fashion_mnist.json")) as f:
        arch = json.load(f)
    with np.load(os.path.join(d, "fashion_mnist.npz")) as z:
        weights = {k: z[k] for k in z.files}
    return arch, weights


# ---- the course template's forward pass (nn_predict.py with relu and softmax done) ------------------------


def relu(x):
    return np.maximum(0, x)


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def flatten(x):
    return x.reshape(x.shape[0], -1)


def dense(x, W, b):
    return x @ W + b


def nn_forward_h5(model_arch, weights, data):
    """The template's loop, as distributed: Flatten and Dense (relu/softmax by config["activation"]); every
    other layer type is silently skipped. Reads every entry's name, type, config and weights (a missing key
    raises KeyError, as in the grader); the arithmetic is in the dtypes it is given."""
    x = data
    for layer in model_arch:
        lname = layer["name"]  # noqa: F841 (read, as the template reads it)
        ltype = layer["type"]
        cfg = layer["config"]
        wnames = layer["weights"]
        if ltype == "Flatten":
            x = flatten(x)
        elif ltype == "Dense":
            W = weights[wnames[0]]
            b = weights[wnames[1]]
            x = dense(x, W, b)
            if cfg.get("activation") == "relu":
                x = relu(x)
            elif cfg.get("activation") == "softmax":
                x = softmax(x)
    return x


def template_outputs(arch, weights, images):
    """The template's pass over (N, 784) float64 `images`, one (1, 784) row at a time, rows concatenated."""
    return np.concatenate([nn_forward_h5(arch, weights, images[i : i + 1]) for i in range(len(images))])


def model_test_accuracy(arch, weights, images, labels):
    """model_test.py's test_inference without the shuffle (which does not change the accuracy): the outputs of
    each (1, 784) row of `images` (float64, divided by 255) in one np.array, squeeze(axis=1), argmax, the share
    equal to `labels`. Raises what the grader's run raises."""
    outputs = np.array([nn_forward_h5(arch, weights, np.expand_dims(img, axis=0)) for img in images])
    predictions = np.argmax(outputs.squeeze(axis=1), axis=-1)
    return float(np.sum(predictions == labels) / len(labels))
