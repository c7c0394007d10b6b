"""A batched float32 NumPy forward pass over the layer types of fmtool's shipped models, for the
cross-check test (tests/it/numpy_crosscheck.rs) and the benchmark (xtask/py/bench.py).

Usage: python numpy_forward.py MODEL_DIR DATA_DIR OUT.npz

Reads MODEL_DIR/fashion_mnist.json + .npz with json.load / numpy.load and the test set from
DATA_DIR/t10k-images-idx3-ubyte.gz, runs every image (float32, divided by 255) through Conv2D
(im2col + one matmul), BatchNormalization, ReLU, MaxPooling2D, Flatten, Reshape, Permute, Dense,
Dropout and Average, following `inbound` for functional models, and saves `predictions` and `outputs`.
"""

import sys

import numpy as np

from course import load_export, load_idx


def conv2d(x, k, b, stride, padding):
    """im2col + one matmul; x (N, H, W, C), k (kh, kw, C, F)."""
    kh, kw, c, f = k.shape
    n, h, w, _ = x.shape
    if padding == "same":
        oh, ow = -(-h // stride), -(-w // stride)
        ph = max((oh - 1) * stride + kh - h, 0)
        pw = max((ow - 1) * stride + kw - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    # win: (N, OH, OW, C, kh, kw) -> rows of (kh, kw, C)
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(-1, kh * kw * c)
    y = cols @ k.reshape(-1, f)
    if b is not None:
        y += b
    return y.reshape(n, win.shape[1], win.shape[2], f)


def maxpool(x, p, s):
    win = np.lib.stride_tricks.sliding_window_view(x, (p, p), axis=(1, 2))[:, ::s, ::s]
    return win.max(axis=(-1, -2))


def activation(x, name):
    if name == "relu":
        return np.maximum(x, 0)
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name in (None, "linear"):
        return x
    raise NotImplementedError(name)


def batchnorm_scale_shift(cfg, ws):
    """BatchNormalization at inference as x * scale + shift, from its config and weights (gamma and
    beta only when `scale` and `center` say so)."""
    i = 0
    g = ws[i] if cfg.get("scale", True) else 1.0
    i += cfg.get("scale", True)
    b = ws[i] if cfg.get("center", True) else 0.0
    i += cfg.get("center", True)
    inv = g / np.sqrt(ws[i + 1] + cfg["epsilon"])
    return inv, b - ws[i] * inv


def layer_forward(e, w, x):
    """One layer of the batched float32 pass; `x` is its input (a list of inputs for a merge)."""
    t, cfg, names = e["type"], e["config"], e["weights"]
    ws = [w[n] for n in names]
    if t == "Average":
        return sum(x) / len(x)
    if t in ("InputLayer", "Dropout"):
        return x
    if t == "Flatten":
        return x.reshape(x.shape[0], -1)
    if t == "Permute":
        return x.transpose((0,) + tuple(cfg["dims"]))
    if t == "Reshape":
        return x.reshape((x.shape[0],) + tuple(cfg["target_shape"]))
    if t == "Dense":
        return activation(x @ ws[0] + (ws[1] if len(ws) > 1 else 0), cfg.get("activation"))
    if t == "Conv2D":
        s = cfg["strides"][0] if isinstance(cfg["strides"], list) else cfg["strides"]
        return activation(conv2d(x, ws[0], ws[1] if len(ws) > 1 else None, s, cfg["padding"]), cfg.get("activation"))
    if t == "BatchNormalization":
        inv, shift = batchnorm_scale_shift(cfg, ws)
        return x * inv + shift
    if t == "ReLU":
        return np.maximum(x, 0)
    if t == "Activation":
        return activation(x, cfg["activation"])
    if t == "MaxPooling2D":
        p = cfg["pool_size"][0] if isinstance(cfg["pool_size"], list) else cfg["pool_size"]
        st = cfg.get("strides") or p
        st = st[0] if isinstance(st, list) else st
        return maxpool(x, p, st)
    raise NotImplementedError(f"bench NumPy pass: {t}")


def numpy_forward(arch, w, x, input_shape, on_layer=None):
    """A batched float32 pass over the layer types the shipped and benchmark models use. Follows
    `inbound` (functional models, such as the ensemble) where the entries have it; calls
    `on_layer(entry, input, output)` after each layer."""
    x = x.reshape((x.shape[0],) + tuple(input_shape))
    outputs, last = {}, x
    for i, e in enumerate(arch):
        inbound = e.get("inbound")
        if inbound:
            inp = [outputs[n] for n in inbound]
            inp = inp if e["type"] == "Average" else inp[0]
        else:
            inp = x if inbound is not None or i == 0 else last
        last = layer_forward(e, w, inp)
        outputs[e["name"]] = last
        if on_layer:
            on_layer(e, inp, last)
    return last


def input_shape(arch, w):
    for e in arch:
        cfg = e["config"]
        for k in ("batch_shape", "batch_input_shape"):
            if cfg.get(k):
                return cfg[k][1:]
    first = arch[0]
    if first["type"] == "Conv2D":
        return (28, 28, w[first["weights"][0]].shape[2])
    return (784,)


def main(model_dir, data_dir, out):
    images = load_idx(f"{data_dir}/t10k-images-idx3-ubyte.gz").reshape(-1, 784)
    arch, w = load_export(model_dir)
    x = images.astype(np.float32) / 255.0
    outputs = np.concatenate(
        [numpy_forward(arch, w, x[i : i + 1000], input_shape(arch, w)) for i in range(0, len(x), 1000)]
    )
    np.savez(out, predictions=np.argmax(outputs, axis=1), outputs=outputs.reshape(len(x), -1))


if __name__ == "__main__":
    main(*sys.argv[1:4])
