"""Hand-trimmed variants of a real Keras export, as students write them, for fmtool's
"never stricter than the grader" tests (tests/it/lenient.rs).

Usage: python make_lenient_fixtures.py [OUT_DIR]   (default: tests/fixtures/lenient)

Needs only NumPy. Every variant starts from tests/fixtures/keras3/mlp_flatten (Flatten, Dense(16,
relu), Dropout, Dense(10, softmax), written by real Keras) and changes what students change by
hand: config keys left out, weight names on layers without weights, biases saved as (1, n) or
(n, 1), float64 and Fortran-order arrays, a Dense without bias, entries without "config" or
"weights". Deterministic: the same inputs give byte-identical files.
"""

import copy
import json
import os
import sys

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BASE = os.path.join(ROOT, "tests", "fixtures", "keras3", "mlp_flatten")
sys.path.insert(0, os.path.join(ROOT, "tests", "numpy"))
from course import load_export  # noqa: E402


def entry(arch, name):
    return next(e for e in arch if e["name"] == name)


def no_units(arch, w):
    """Dense configs with only the activation (no units, no use_bias); Flatten and Dropout list
    weight names that the npz does not have."""
    for e in arch:
        if e["type"] == "Dense":
            e["config"] = {"activation": e["config"]["activation"]}
    entry(arch, "flatten")["weights"] = ["flatten_0"]
    entry(arch, "dropout")["weights"] = ["dropout_0", "dropout_1"]
    return arch, w


def bias_1n_float64(arch, w):
    """Biases saved as (1, n), every array float64, kernels in Fortran order."""
    out = {}
    for k, a in w.items():
        a = a.astype(np.float64)
        out[k] = a.reshape(1, -1) if a.ndim == 1 else np.asfortranarray(a)
    return arch, out


def config_empty(arch, w):
    """The last Dense has "config": {} (no activation: the argmax is softmax's)."""
    entry(arch, "dense_1")["config"] = {}
    return arch, w


def bias_n1(arch, w):
    """The first Dense's bias saved as (n, 1): NumPy broadcasts x @ W + b to (n, n)."""
    w["dense_1"] = w["dense_1"].reshape(-1, 1)
    return arch, w


def bias_mismatch(arch, w):
    """The first Dense's 16 bias values saved as (2, 8): no broadcast with (1, 16)."""
    w["dense_1"] = w["dense_1"].reshape(2, 8)
    return arch, w


def dense_no_bias(arch, w):
    """The last Dense saved without its bias (use_bias=False): the template reads wnames[1]."""
    e = entry(arch, "dense_1")
    e["config"]["use_bias"] = False
    e["weights"] = ["dense_1_0"]
    del w["dense_1_1"]
    return arch, w


def no_config_key(arch, w):
    """The Dropout entry has no "config" key."""
    del entry(arch, "dropout")["config"]
    return arch, w


def no_weights_key(arch, w):
    """The Flatten entry has no "weights" key."""
    del entry(arch, "flatten")["weights"]
    return arch, w


VARIANTS = [
    no_units,
    bias_1n_float64,
    config_empty,
    bias_n1,
    bias_mismatch,
    dense_no_bias,
    no_config_key,
    no_weights_key,
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fixtures", "lenient")
    base_arch, base_w = load_export(BASE)
    for make in VARIANTS:
        arch, w = make(copy.deepcopy(base_arch), {k: v.copy() for k, v in base_w.items()})
        d = os.path.join(out, make.__name__)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "fashion_mnist.json"), "w") as f:
            json.dump(arch, f)
        np.savez(os.path.join(d, "fashion_mnist.npz"), **w)
        print(f"{make.__name__}: {make.__doc__.split(chr(10))[0]}")


if __name__ == "__main__":
    main()
