"""Writes fmtool's test fixtures with real Keras: `cargo xtask fixtures [--only CASE,...] [--list]`.

Every model is built, trained for one short epoch and saved by real Keras: Keras 3 (`import keras`,
writer `keras3`) and tf_keras (`import tf_keras as keras`, writer `keras2`, the Keras 2 HDF5 layout).
Per case, in tests/fixtures/<writer>/<case>/ (or tests/fixtures/special/<case>_<writer>/):

  model.h5            model.save("model.h5")  (keras3: Keras 3's legacy HDF5 layout)
  model.keras         model.save("model.keras")  (keras3 only)
  fashion_mnist.json  the course notebook's export of model.layers (+ "inbound" for functional models)
  fashion_mnist.npz   its weights, np.savez layout, float32
  io.npz              x: the first 64 test images (64, 784) float32 /255, y: Keras' own
                      model.predict on them (64, 10) float32, input_shape: int64 (np.savez_compressed)

Keras 3 and tf_keras cannot share a process (TF_USE_LEGACY_KERAS is read when TensorFlow loads), so
the script re-runs itself once per writer (`--child WRITER`); the parent then writes VERSIONS.txt,
README.md and LAYOUTS.md (both partly generated from the files on disk) and verifies everything
with plain json/NumPy/h5py (`--verify` runs only that). Deterministic: fixed seeds, op determinism,
Keras' name counters reset per case, so `--only` rewrites a case exactly as a full run does.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The IDX reader, the course notebook's export and the course template's forward pass, shared with the
# cross-check tests.
sys.path.insert(0, os.path.join(ROOT, "tests", "numpy"))
from course import IMAGES_MAGIC, LABELS_MAGIC, course_export, load_export, load_idx, template_outputs, write_export  # noqa: E402

OUT = os.path.join(ROOT, "tests", "fixtures")
DATA = os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
WRITERS = ("keras3", "keras2")
SEED = 7
N_TRAIN = 3000  # training images
N_IO = 64  # test images in io.npz
EPOCHS = 1
BATCH = 128

# The activation strings of the issue, in the order the `activations` case uses them.
ACTIVATIONS = [
    "linear",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "softplus",
    "softsign",
    "swish",
    "silu",
    "hard_swish",
    "hard_silu",
    "mish",
    "exponential",
    "log_softmax",
    "softmax",
]

# Every layer class the fixtures must hold between them (checked by --verify, per writer).
REQUIRED_LAYERS = [
    "InputLayer",
    "Dense",
    "Flatten",
    "Dropout",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "Softmax",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "RandomContrast",
    "BatchNormalization",
    "LayerNormalization",
    "Rescaling",
    "Normalization",
    "Conv2D",
    "DepthwiseConv2D",
    "SeparableConv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Reshape",
    "Permute",
    "ZeroPadding2D",
    "Cropping2D",
    "UpSampling2D",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
]


# ---- data ----------------------------------------------------------------------------------------------


def load_data():
    xtr = (
        load_idx(f"{DATA}/train-images-idx3-ubyte.gz", IMAGES_MAGIC)[:N_TRAIN].reshape(-1, 784).astype(np.float32)
        / 255.0
    )
    ytr = load_idx(f"{DATA}/train-labels-idx1-ubyte.gz", LABELS_MAGIC)[:N_TRAIN].astype(np.int64)
    xte = load_idx(f"{DATA}/t10k-images-idx3-ubyte.gz", IMAGES_MAGIC)[:N_IO].reshape(-1, 784).astype(np.float32) / 255.0
    return xtr, ytr, xte


# ---- cases ---------------------------------------------------------------------------------------------
#
# A builder takes a Ctx and returns (model, functional). `writers` says who can write it; the README's
# gap list is generated from that, and a builder that fails for a listed writer is an error.


class Ctx:
    def __init__(self, k, writer, xtr):
        self.k, self.L, self.writer, self.xtr = k, k.layers, writer, xtr

    @property
    def keras2(self):
        return self.writer == "keras2"


class Case:
    def __init__(
        self,
        name,
        build,
        covers,
        special=False,
        kind="full",
        keep_optimizer=False,
        keras_file=True,
        writers=WRITERS,
        gaps=None,
        suffix=True,
    ):
        self.name, self.build, self.covers, self.special, self.kind = name, build, covers, special, kind
        self.suffix = suffix
        self.keep_optimizer, self.keras_file, self.writers, self.gaps = keep_optimizer, keras_file, writers, gaps or {}

    def dir(self, writer):
        if self.special:
            return os.path.join(OUT, "special", f"{self.name}_{writer}" if self.suffix else self.name)
        return os.path.join(OUT, writer, self.name)


def mlp_flatten(c):
    L = c.L
    # tf_keras: the course notebook's own style, Flatten(input_shape=...): the export's Flatten config
    # then carries batch_input_shape. Keras 3 accepts the argument too but never puts it in a config.
    first = [L.Flatten(input_shape=(28, 28))] if c.keras2 else [c.k.Input((28, 28)), L.Flatten()]
    return c.k.Sequential(
        first + [L.Dense(16, activation="relu"), L.Dropout(0.2), L.Dense(10, activation="softmax")]
    ), False


def mlp_784(c):
    L = c.L
    first = (
        [L.Dense(8, activation="relu", input_shape=(784,))]
        if c.keras2
        else [c.k.Input((784,)), L.Dense(8, activation="relu")]
    )
    return c.k.Sequential(first + [L.Dense(10, activation="softmax")]), False


def mlp_input_layer(c):
    # A functional MLP: the InputLayer stays in model.layers, so the export carries the input shape.
    L = c.L
    inp = c.k.Input((784,), name="pixels")
    x = L.Dense(8, activation="relu", name="hidden")(inp)
    out = L.Dense(10, activation="softmax", name="scores")(x)
    return c.k.Model(inp, out), True


def accepted_activations(k):
    """activation string -> the name Keras serializes it as, or None if this Keras rejects it."""
    out = {}
    for a in ACTIVATIONS:
        try:
            out[a] = k.layers.Dense(1, activation=a).get_config()["activation"]
        except Exception:
            out[a] = None
    return out


def activations(c):
    # Each activation string on its own small Dense, fed through tanh so exponential stays small.
    L = c.L
    inp = c.k.Input((784,))
    x = L.Flatten()(L.AveragePooling2D(4)(L.Reshape((28, 28, 1))(inp)))  # 49 inputs: small files
    h = L.Dense(8, activation="tanh")(x)
    outs = [
        L.Dense(4, activation=a, name=f"act_{a}")(h) for a, got in accepted_activations(c.k).items() if got is not None
    ]
    x = L.Concatenate()(outs)
    out = L.Dense(10, activation="softmax")(x)
    return c.k.Model(inp, out), True


def activation_layers(c):
    L = c.L
    leaky = L.LeakyReLU(alpha=0.2) if c.keras2 else L.LeakyReLU(negative_slope=0.2)
    return c.k.Sequential(
        [
            c.k.Input((784,)),
            L.Reshape((28, 28, 1)),
            L.AveragePooling2D(4),
            L.Flatten(),
            L.Dense(8),
            L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.05),
            L.Dense(12),
            L.ReLU(),
            L.Dense(12),
            leaky,
            L.Dense(12),
            L.PReLU(),
            L.Dense(12),
            L.ELU(alpha=0.7),
            L.Dense(12),
            L.ReLU(max_value=6.0),
            L.Dense(12),
            L.Activation("tanh"),
            L.Dense(12),
            L.Activation("gelu"),
            L.Dense(10),
            L.Softmax(),
        ]
    ), False


def identities(c):
    L = c.L
    layers = [
        c.k.Input((784,)),
        L.Reshape((28, 28)),
        L.SpatialDropout1D(0.1),
        L.Reshape((28, 28, 1)),
        L.RandomFlip("horizontal"),
        L.RandomRotation(0.05),
        L.RandomTranslation(0.1, 0.1),
        L.RandomZoom(0.1),
        L.RandomContrast(0.1),
    ]
    if c.keras2:
        layers.append(L.RandomBrightness(0.1))  # Keras 3.15 cannot write it to .h5 (see README)
    layers += [
        L.GaussianNoise(0.1),
        L.SpatialDropout2D(0.1),
        L.Conv2D(2, 3, strides=2),
        L.Flatten(),
        L.GaussianDropout(0.1),
        L.AlphaDropout(0.1),
        L.ActivityRegularization(l1=0.01),
        L.Dropout(0.3),
        L.Dense(10, activation="softmax"),
    ]
    return c.k.Sequential(layers), False


def normalization(c):
    L = c.L
    adapted = L.Normalization()
    adapted.adapt(c.xtr[:500])
    # mean/variance given: kept in the config (tf_keras keeps the NumPy scalar: the json default= hook).
    given = (
        L.Normalization(mean=np.float32(0.25), variance=np.float32(0.5))
        if c.keras2
        else L.Normalization(mean=0.25, variance=0.5)
    )
    return c.k.Sequential(
        [
            c.k.Input((784,)),
            L.Rescaling(2.0, offset=-1.0),
            adapted,
            L.Dense(8),
            L.BatchNormalization(name="bn_dense"),
            L.Activation("relu"),
            L.Dense(16),
            L.LayerNormalization(),
            L.BatchNormalization(center=False),
            L.BatchNormalization(scale=False),
            L.Dense(16),
            given,
            L.LayerNormalization(center=False, scale=False),
            L.Dense(10, activation="softmax"),
        ]
    ), False


def conv_basic(c):
    L = c.L
    first = (
        [L.Conv2D(8, 3, padding="same", activation="relu", input_shape=(28, 28, 1), name="stem")]
        if c.keras2
        else [c.k.Input((28, 28, 1)), L.Conv2D(8, 3, padding="same", activation="relu", name="stem")]
    )
    return c.k.Sequential(
        first
        + [
            L.BatchNormalization(name="stem_bn"),
            L.MaxPooling2D(2, name="pool"),
            L.Conv2D(8, 3, strides=2, padding="valid", name="down"),
            L.AveragePooling2D(2, padding="same", name="avg"),
            L.Flatten(name="flat"),
            L.Dense(10, activation="softmax", name="head"),
        ]
    ), False


def conv_variants(c):
    L = c.L
    return c.k.Sequential(
        [
            c.k.Input((28, 28, 1)),
            L.Conv2D(4, 3, dilation_rate=2, padding="same", activation="elu"),
            L.Conv2D(8, (3, 2), groups=2, padding="valid", use_bias=False),
            L.BatchNormalization(axis=-1),
            L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
            L.SeparableConv2D(8, 3, padding="same", activation="relu"),
            L.MaxPooling2D(pool_size=3, strides=2, padding="same"),
            L.AveragePooling2D(pool_size=3, strides=1, padding="valid"),
            L.SeparableConv2D(6, 2, strides=2, padding="valid", depth_multiplier=2),
            L.DepthwiseConv2D(2, strides=1, padding="valid", use_bias=False),
            L.GlobalAveragePooling2D(),
            L.Dense(10, activation="softmax"),
        ]
    ), False


def pooling(c):
    L = c.L
    return c.k.Sequential(
        [
            c.k.Input((28, 28, 1)),
            L.Conv2D(6, 5, strides=(2, 1), padding="same"),
            L.MaxPooling2D((3, 2), strides=(1, 2), padding="valid"),
            L.AveragePooling2D((2, 3), strides=2, padding="same"),
            L.MaxPooling2D(2, padding="same"),
            L.AveragePooling2D(2, strides=1, padding="valid"),
            L.Conv2D(8, 2, padding="same"),
            L.GlobalMaxPooling2D(keepdims=True),
            L.Flatten(),
            L.Dense(10, activation="softmax"),
        ]
    ), False


def pooling_global(c):
    # Functional so both global poolings (keepdims default) feed one Dense through Concatenate.
    L = c.L
    inp = c.k.Input((28, 28, 1))
    x = L.Conv2D(6, 3, strides=2, activation="relu")(inp)
    out = L.Dense(10, activation="softmax")(L.Concatenate()([L.GlobalAveragePooling2D()(x), L.GlobalMaxPooling2D()(x)]))
    return c.k.Model(inp, out), True


def reshaping(c):
    L = c.L
    return c.k.Sequential(
        [
            c.k.Input((784,)),
            L.Reshape((28, 28, 1)),
            L.ZeroPadding2D(((1, 2), (3, 0))),
            L.Cropping2D(((2, 1), (0, 3))),
            L.Conv2D(4, 3, strides=2),
            L.UpSampling2D(2),
            L.Conv2D(4, 3),
            L.UpSampling2D((2, 3), interpolation="bilinear"),
            L.Permute((2, 1, 3)),
            L.ZeroPadding2D(1),
            L.Cropping2D(2),
            L.MaxPooling2D(8),
            L.Reshape((-1,)),
            L.Dense(10, activation="softmax"),
        ]
    ), False


def merge(c):
    L = c.L
    inp = c.k.Input((28, 28, 1), name="image")
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="branch_a")(inp)
    b = L.Conv2D(4, 3, padding="same", activation="tanh", name="branch_b")(inp)
    added = L.Add(name="add")([a, b])
    m = [
        added,
        L.Subtract(name="sub")([a, b]),
        L.Multiply(name="mul")([a, b]),
        L.Average(name="avg")([a, b, added]),
        L.Maximum(name="max")([a, b]),
        L.Minimum(name="min")([b, a]),
    ]
    x = L.Concatenate(axis=-1, name="channels")(m + [inp])
    x = L.MaxPooling2D(7)(x)
    x = L.Flatten()(x)
    out = L.Dense(10, activation="softmax")(x)
    return c.k.Model(inp, out), True


def conv_first_no_input(c):
    # Sequential without Input, built with build(): neither Keras puts an InputLayer in model.layers nor
    # an input shape into the first layer's config, so the export carries no input shape at all.
    L = c.L
    m = c.k.Sequential(
        [L.Conv2D(6, 3, activation="relu"), L.MaxPooling2D(4), L.Flatten(), L.Dense(10, activation="softmax")]
    )
    m.build((None, 28, 28, 1))
    return m, False


# ---- special cases (tests/fixtures/special/<case>_<writer>/) --------------------------------------------


def chunked_names(c):
    # Keras stores layer_names as a fixed-width byte-string array: its size is
    # (number of layers) x (longest name). Past HDF5_OBJECT_HEADER_LIMIT (64512 bytes) Keras splits it
    # with np.array_split into layer_names0, layer_names1, ... 20 layers x a 3400-character name is
    # 68000 bytes: two chunks of 10 names, while the file stays small (few layers, one long name).
    L = c.L
    layers = [c.k.Input((784,)), L.Dense(8, activation="relu", name="d_in")]
    layers += [L.Activation("linear", name=("long_" + "n" * 3395) if i == 9 else f"a{i:02d}") for i in range(18)]
    layers += [L.Dense(10, activation="softmax", name="d_out")]
    return c.k.Sequential(layers), False


def dropout_batchnorm(c):
    L = c.L
    return c.k.Sequential(
        [
            c.k.Input((28, 28)),
            L.Flatten(),
            L.Dense(8),
            L.BatchNormalization(),
            L.Activation("relu"),
            L.Dropout(0.3),
            L.Dense(16, activation="relu"),
            L.BatchNormalization(),
            L.Dropout(0.3),
            L.Dense(10, activation="softmax"),
        ]
    ), False


def separate_activations(c):
    L = c.L
    return c.k.Sequential(
        [c.k.Input((28, 28)), L.Flatten(), L.Dense(8), L.Activation("relu"), L.Dense(10), L.Activation("softmax")]
    ), False


def nested(c):
    L = c.L
    inner = c.k.Sequential(
        [c.k.Input((784,)), L.Dense(8, activation="relu"), L.Dense(12, activation="relu")], name="inner"
    )
    inp = c.k.Input((784,))
    out = L.Dense(10, activation="softmax")(inner(inp))
    return c.k.Model(inp, out), True


def unsupported(c):
    L = c.L
    return c.k.Sequential([c.k.Input((28, 28)), L.Conv1D(4, 3), L.LSTM(4), L.Dense(10, activation="softmax")]), False


CASES = [
    Case(
        "mlp_flatten",
        mlp_flatten,
        "Input (28, 28), Flatten, Dense relu, Dropout, Dense softmax (keras2: "
        "`Flatten(input_shape=(28, 28))` as the course notebook writes it)",
    ),
    Case("mlp_784", mlp_784, "Input (784,), Dense relu, Dense softmax (keras2: `Dense(..., input_shape=(784,))`)"),
    Case(
        "mlp_input_layer",
        mlp_input_layer,
        "functional MLP on Input (784,) named `pixels`: the InputLayer is in "
        "`model.layers`, so the export carries the input shape",
    ),
    Case(
        "activations",
        activations,
        "every activation string of the issue that the writer accepts, each as "
        "`Dense(4, activation=...)` on a tanh Dense (after Reshape, AveragePooling2D(4), Flatten: 49 inputs), "
        "joined by Concatenate (functional)",
        gaps={"keras2": "tf_keras 2.21 rejects `hard_swish` and `hard_silu`; it writes `silu` as `swish`"},
    ),
    Case(
        "activation_layers",
        activation_layers,
        "(after Reshape, AveragePooling2D(4), Flatten) "
        "ReLU(max_value, negative_slope, threshold), ReLU(), "
        "ReLU(max_value=6), LeakyReLU, PReLU, ELU(alpha), Activation(tanh), Activation(gelu), Softmax",
    ),
    Case(
        "identities",
        identities,
        "inference-time identities: Reshape (28, 28), SpatialDropout1D, Reshape "
        "(28, 28, 1), RandomFlip/Rotation/Translation/Zoom/Contrast (keras2: + RandomBrightness), "
        "GaussianNoise, SpatialDropout2D, GaussianDropout, AlphaDropout, ActivityRegularization, Dropout",
        gaps={"keras3": "no RandomBrightness: Keras 3.15 cannot save it to .h5 (\"cannot pickle 'module' object\")"},
    ),
    Case(
        "normalization",
        normalization,
        "Rescaling(scale, offset), Normalization adapted (784 means), "
        "BatchNormalization on Dense output (default, center=False, scale=False), LayerNormalization (default "
        "and center=scale=False), Normalization(mean=0.25, variance=0.5) given in the config",
    ),
    Case(
        "conv_basic",
        conv_basic,
        "Conv2D same + relu, BatchNormalization on a feature map, MaxPooling2D 2, Conv2D "
        "strides 2 valid, AveragePooling2D same; custom layer names (`stem`, `head`...); compiled, so the files "
        "keep the Adam state (keras2: `Conv2D(..., input_shape=(28, 28, 1))`)",
        keep_optimizer=True,
    ),
    Case(
        "conv_variants",
        conv_variants,
        "Conv2D dilation_rate 2, groups 2 with a (3, 2) kernel and use_bias=False, "
        "BatchNormalization(axis=-1), DepthwiseConv2D depth_multiplier 2 (and use_bias=False), SeparableConv2D "
        "(same; strides 2 valid depth_multiplier 2), MaxPooling2D 3/2 same, AveragePooling2D 3/1 valid, "
        "GlobalAveragePooling2D",
    ),
    Case(
        "pooling",
        pooling,
        "pool/stride combinations that are not 2x2/2: MaxPooling2D (3, 2)/(1, 2) valid, "
        "AveragePooling2D (2, 3)/2 same, MaxPooling2D 2 same, AveragePooling2D 2/1 valid, "
        "GlobalMaxPooling2D(keepdims=True) + Flatten",
    ),
    Case(
        "pooling_global",
        pooling_global,
        "GlobalAveragePooling2D and GlobalMaxPooling2D (keepdims=False) joined by Concatenate (functional)",
    ),
    Case(
        "reshaping",
        reshaping,
        "Reshape (784,)->(28, 28, 1), ZeroPadding2D and Cropping2D asymmetric and "
        "symmetric, UpSampling2D nearest (2) and bilinear (2, 3), Permute (2, 1, 3), Reshape((-1,))",
    ),
    Case(
        "merge",
        merge,
        "functional, two Conv2D branches: Add, Subtract, Multiply, Maximum, "
        "Minimum (operands swapped), "
        "Average of 3 inputs (one of them the Add), Concatenate(axis=-1) of all of them and the input; custom "
        "layer names",
    ),
    Case(
        "conv_first_no_input",
        conv_first_no_input,
        "Sequential without Input whose first layer is a Conv2D, "
        "built with `build((None, 28, 28, 1))`: the export carries no input shape; fmtool must infer (28, 28, 1)",
    ),
    Case(
        "chunked_names",
        chunked_names,
        "20 layers, one named with 3400 characters: the h5 `layer_names` "
        "attribute (20 x 3400 bytes, fixed width) exceeds 64512 bytes, so Keras writes `layer_names0` and "
        "`layer_names1` (10 names each) instead (no model.keras: the zip format has no such limit)",
        special=True,
        keras_file=False,
    ),
    Case(
        "weights_only",
        mlp_784,
        "`save_weights` files of the mlp_784 model (keras3: `model.weights.h5`, "
        "keras2: `model.h5`): no model config, to be refused",
        special=True,
        kind="weights_only",
    ),
    Case(
        "dropout_batchnorm",
        dropout_batchnorm,
        "Flatten, Dense + BatchNormalization + Activation + Dropout "
        "twice; compiled, files keep the Adam state (the course template skips BN)",
        special=True,
        keep_optimizer=True,
    ),
    Case(
        "separate_activations",
        separate_activations,
        "activations as separate `Activation` layers (relu, softmax) after linear Dense layers",
        special=True,
    ),
    Case(
        "nested",
        nested,
        "a Sequential (`inner`, Dense relu x2) used as a layer of a functional model: model.h5 "
        "(+ model.keras) and io.npz. The notebook export of such a model has one entry of type `Sequential` "
        "holding all of the inner weights (`inner_0`..`inner_3`), which no flat engine runs (`fmtool convert` "
        "inlines nested models instead), so it lives in `course_export/`, where the fixture scanners do not look",
        special=True,
        kind="nested",
    ),
    Case(
        "numpy_variants",
        None,
        "`keras3/mlp_784`'s export (json, io.npz) with its npz re-saved the ways "
        "students' notebooks do: float64, Fortran-ordered arrays, `np.savez_compressed` "
        "(dir `special/numpy_variants`)",
        special=True,
        kind="numpy_variants",
        writers=("keras3",),
        suffix=False,
    ),
    Case(
        "unsupported",
        unsupported,
        "Conv1D + LSTM (untrained, model.h5 only): to be refused naming the layers",
        special=True,
        kind="refused",
        keras_file=False,
    ),
]
CASE_BY_NAME = {c.name: c for c in CASES}


# ---- the child: build, train and save with one writer ---------------------------------------------------


def fix_batchnorm_stats(model, log):
    """BatchNormalization moving statistics must not be the initial 0/1: training for one epoch moves
    them; if some did not move, give them random positive values."""
    for layer in all_layers(model):
        if type(layer).__name__ != "BatchNormalization":
            continue
        ws = layer.get_weights()
        mean, var = ws[-2], ws[-1]
        if np.allclose(mean, 0) or np.allclose(var, 1):
            rng = np.random.default_rng(SEED)
            ws[-2] = rng.uniform(0.1, 0.5, mean.shape).astype(np.float32)
            ws[-1] = rng.uniform(0.5, 2.0, var.shape).astype(np.float32)
            layer.set_weights(ws)
            log.append(f"{layer.name}: moving statistics set by hand")


def all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def predict(model, xte):
    shape = tuple(int(s) for s in model.input_shape[1:])
    return np.asarray(model.predict(xte.reshape((-1,) + shape), verbose=0), np.float32), shape


def finalize(model):
    """set_weights does not recompute what Normalization derives from its adapted mean/variance
    (Keras calls finalize_state after adapt() and after loading, not after set_weights)."""
    for layer in all_layers(model):
        if type(layer).__name__ == "Normalization" and layer.get_weights():
            layer.finalize_state()


def same(a, b, what, tol=1e-6):
    diff = float(np.abs(a - b).max())
    if not diff <= tol:
        raise SystemExit(f"{what}: differs from the trained model by {diff}")
    return diff


def numpy_variants(d):
    """The keras3/mlp_784 export re-saved the ways students' notebooks do: float64, Fortran order,
    np.savez_compressed."""
    src = CASE_BY_NAME["mlp_784"].dir("keras3")
    if not os.path.exists(os.path.join(src, "fashion_mnist.npz")):
        raise SystemExit(f"numpy_variants is made from {src}: generate mlp_784 first")
    shutil.copy(os.path.join(src, "fashion_mnist.json"), d)
    shutil.copy(os.path.join(src, "io.npz"), d)
    with np.load(os.path.join(src, "fashion_mnist.npz"), allow_pickle=False) as z:
        arrays = {k: np.asfortranarray(z[k].astype(np.float64)) for k in z.files}
    np.savez_compressed(os.path.join(d, "fashion_mnist.npz"), **arrays)


def make_case(case, ctx, data):
    k, writer = ctx.k, ctx.writer
    xtr, ytr, xte = data
    d = case.dir(writer)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    notes = []
    if case.kind == "numpy_variants":
        numpy_variants(d)
        return notes
    model, functional = case.build(ctx)
    if case.kind != "refused":
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        shape = tuple(model.input_shape[1:])
        model.fit(xtr.reshape((-1,) + shape), ytr, epochs=EPOCHS, batch_size=BATCH, verbose=0, shuffle=True)
        fix_batchnorm_stats(model, notes)
    if case.kind == "weights_only":
        model.save_weights(os.path.join(d, "model.weights.h5" if writer == "keras3" else "model.h5"))
        return notes
    if case.kind == "refused":
        model.save(os.path.join(d, "model.h5"))
        return notes
    y, shape = predict(model, xte)  # Keras' own output, from the trained model itself
    if not case.keep_optimizer:
        # An uncompiled copy with the same weights: the files stay small. Cases with keep_optimizer
        # save the compiled model itself, with its Adam state, as students' files are.
        copy = model.__class__.from_config(model.get_config())
        copy.set_weights(model.get_weights())
        finalize(copy)
        same(predict(copy, xte)[0], y, f"{writer}/{case.name}: the uncompiled copy")
        model = copy
    np.savez_compressed(os.path.join(d, "io.npz"), x=xte, y=y, input_shape=np.array(shape, np.int64))
    files = ["model.h5"] + (["model.keras"] if writer == "keras3" and case.keras_file else [])
    for f in files:
        model.save(os.path.join(d, f))
    write_export(export_dir(case, d), *course_export(model, inbound=functional))
    # What was written loads back in Keras and predicts y.
    for f in files:
        back = k.models.load_model(os.path.join(d, f), compile=False)
        notes.append(f"{f} reloaded: {same(predict(back, xte)[0], y, f'{writer}/{case.name}/{f} reloaded'):.1e}")
    return notes


_K = None  # the Keras module, a global so the probe's lambda captures no module in a closure


def short(e):
    """An exception as one short line without memory addresses (the README must not change per run)."""
    import re

    msg = re.sub(r" at 0x[0-9a-f]+", "", str(e).splitlines()[0] if str(e) else "")
    return f"{type(e).__name__}: {msg[:80]}{'...' if len(msg) > 80 else ''}"


def probe_gelu(k):
    """Can approximate GELU be written at all? Returns findings as text lines."""
    import functools

    global _K
    _K = k
    lines = []
    L = k.layers
    try:
        L.Dense(2, activation=functools.partial(k.activations.gelu, approximate=True)).get_config()
        lines.append("`functools.partial(gelu, approximate=True)`: serialized")
    except Exception as e:
        lines.append(f"`functools.partial(gelu, approximate=True)`: get_config fails ({short(e)})")
    d = L.Dense(2, activation=lambda x: _K.activations.gelu(x, approximate=True))
    act = d.get_config()["activation"]
    lines.append(
        f"`lambda x: keras.activations.gelu(x, approximate=True)`: the config's activation is a "
        f"{type(act).__name__} with keys {sorted(act) if isinstance(act, dict) else act!r} holding "
        "marshalled Python bytecode (base64): no name a reader could map to approximate GELU"
    )
    with tempfile.TemporaryDirectory() as t:
        m = k.Sequential([k.Input((4,)), d])
        for ext in ("h5", "keras") if k.__version__.startswith("3") else ("h5",):
            p = os.path.join(t, "m." + ext)
            try:
                m.save(p)
            except Exception as e:
                lines.append(f"  model.save(.{ext}) fails ({short(e)})")
                continue
            try:
                k.models.load_model(p)
                lines.append(f"  model.save(.{ext}) works and loads back (by running the bytecode)")
            except Exception as e:
                lines.append(f"  model.save(.{ext}) works but load_model fails ({short(e)})")
    cfg = L.Dense(2, activation="gelu").get_config()["activation"]
    lines.append(
        f'`activation="gelu"` serializes as {cfg!r}: the exact (erf) form; '
        f"`keras.activations.gelu` defaults to approximate=False"
    )
    return lines


def child(writer, only, facts_path):
    import tensorflow as tf

    if writer == "keras2":
        import tf_keras as k
    else:
        import keras as k
    tf.config.experimental.enable_op_determinism()
    # One thread: op determinism alone still let multi-branch convolution training differ by 1e-7
    # between runs. The models are tiny, so this costs little.
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    import logging
    import warnings

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    data = load_data()
    facts = {
        "writer": writer,
        "version": k.__version__,
        "activations": accepted_activations(k),
        "gelu": probe_gelu(k),
        "cases": {},
    }
    for case in CASES:
        if (only is not None and case.name not in only) or writer not in case.writers:
            continue
        t0 = time.time()
        k.backend.clear_session()  # names restart at dense, dense_1, ... whatever ran before
        k.utils.set_random_seed(SEED)
        notes = make_case(case, Ctx(k, writer, data[0]), data)
        facts["cases"][case.name] = {"seconds": round(time.time() - t0, 1), "notes": notes}
        print(f"{writer}/{case.name}: {time.time() - t0:.1f}s {' '.join(notes)}", flush=True)
    with open(facts_path, "w") as f:
        json.dump(facts, f)


# ---- the parent: versions, README, LAYOUTS, verification ------------------------------------------------


def write_versions():
    code = (
        "import tensorflow as tf, keras, tf_keras, numpy, h5py; "
        "print(f'tensorflow {tf.__version__}\\nkeras {keras.__version__}\\ntf_keras {tf_keras.__version__}\\n"
        "numpy {numpy.__version__}\\nh5py {h5py.__version__}')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write(out)
    return out


def model_dirs():
    """Every (writer, case, dir) on disk."""
    for case in CASES:
        for w in case.writers:
            d = case.dir(w)
            if os.path.isdir(d):
                yield w, case, d


def export_dir(case, d):
    return os.path.join(d, "course_export") if case.kind == "nested" else d


def shape_keys(d, case):
    """Where the export and model.h5 carry the input shape: (export, model_config) descriptions."""
    import h5py

    arch = json.load(open(os.path.join(export_dir(case, d), "fashion_mnist.json")))
    first = arch[0]
    export = "none"
    for key in ("batch_shape", "batch_input_shape"):
        if key in first["config"]:
            export = f"{first['type']}.{key} {first['config'][key]}"
    with h5py.File(os.path.join(d, "model.h5"), "r") as f:
        mc = json.loads(f.attrs["model_config"])
    layers = mc["config"]["layers"]
    found = []
    for lc in layers[:2]:
        for key in ("batch_shape", "batch_input_shape"):
            if key in lc["config"]:
                found.append(f"{lc['class_name']}.{key}")
    if "build_config" in mc:
        found.append("model build_config.input_shape")
    kz = os.path.join(d, "model.keras")
    kinfo = "-"
    if os.path.exists(kz):
        cfg = json.loads(zipfile.ZipFile(kz).read("config.json"))
        ks = [f"{lc['class_name']}.batch_shape" for lc in cfg["config"]["layers"][:1] if "batch_shape" in lc["config"]]
        if "build_config" in cfg:
            ks.append(f"build_config.input_shape {cfg['build_config'].get('input_shape')}")
        kinfo = ", ".join(ks) or "none"
    return export, ", ".join(found) or "none", kinfo


def h5_type(obj, name):
    """The HDF5 type of attribute `name` of `obj`, in words."""
    import h5py

    a = obj.attrs.get_id(name)
    t = a.get_type()
    if isinstance(t, h5py.h5t.TypeStringID):
        pad = {
            h5py.h5t.STR_NULLPAD: "null-padded",
            h5py.h5t.STR_NULLTERM: "null-terminated",
            h5py.h5t.STR_SPACEPAD: "space-padded",
        }.get(t.get_strpad(), "?")
        kind = "vlen string" if t.is_variable_str() else f"fixed string of {t.get_size()} bytes, {pad}"
        kind += ", " + ("UTF-8" if t.get_cset() == h5py.h5t.CSET_UTF8 else "ASCII") + " cset"
    else:
        kind = f"{type(t).__name__[4:-2].lower()} of {t.get_size()} bytes"
    return f"{kind}, shape {a.shape}"


def h5_example(path):
    """A few real paths and attributes of a model .h5, for LAYOUTS.md."""
    import h5py

    lines = []
    with h5py.File(path, "r") as f:
        lines.append("root attributes: " + "; ".join(f"{n} ({h5_type(f, n)})" for n in sorted(f.attrs)))
        g = f["model_weights"] if "model_weights" in f else f
        names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["layer_names"]]
        lines.append(
            f"`{g.name}` attributes: {', '.join(sorted(g.attrs))}; layer_names "
            f"({h5_type(g, 'layer_names')}) = {names[:4]}{' ...' if len(names) > 4 else ''}"
        )
        shown_empty = shown_full = False
        for n in names:
            wn = g[n].attrs["weight_names"]
            if len(wn) == 0 and not shown_empty:
                lines.append(f"`{g[n].name}` (no weights): weight_names ({h5_type(g[n], 'weight_names')}) = {wn!r}")
                shown_empty = True
            elif len(wn) and not shown_full:
                wn = [x.decode() if isinstance(x, bytes) else x for x in wn]
                lines.append(f"`{g[n].name}`: weight_names ({h5_type(g[n], 'weight_names')}) = {wn}")
                lines.append(f"dataset: `{g[n][wn[0]].name}` {g[n][wn[0]].shape} {g[n][wn[0]].dtype}")
                shown_full = True
        if "optimizer_weights" in f:
            ds = []
            f["optimizer_weights"].visititems(lambda name, o: ds.append(name) if isinstance(o, h5py.Dataset) else None)
            lines.append(f"`/optimizer_weights`: {len(ds)} datasets, e.g. `{ds[min(1, len(ds) - 1)]}`")
    return lines


def keras_zip_example(path):
    import io

    import h5py

    z = zipfile.ZipFile(path)
    lines = [f"members: {', '.join(z.namelist())}"]
    cfg = json.loads(z.read("config.json"))
    lines.append(
        f"config.json top-level keys: {', '.join(sorted(cfg))}; class_name {cfg['class_name']}; "
        f"layers: {[lc['class_name'] + ':' + lc['config']['name'] for lc in cfg['config']['layers']][:5]}"
    )
    with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
        ds = []
        f.visititems(lambda name, o: ds.append(f"{name} {o.shape}") if isinstance(o, h5py.Dataset) else None)
        lines.append(
            f"model.weights.h5 root attributes: {sorted(f.attrs) or 'none'}; datasets: "
            + "; ".join(f"`{x}`" for x in ds[:6])
            + (" ..." if len(ds) > 6 else "")
        )
    return lines


def weights_only_example(path):
    import h5py

    with h5py.File(path, "r") as f:
        ds = []
        f.visititems(lambda name, o: ds.append(name) if isinstance(o, h5py.Dataset) else None)
        return [
            f"root attributes: {sorted(f.attrs) or 'none'}; top-level keys: {sorted(f.keys())}; datasets e.g. `{ds[0]}`"
        ]


LAYOUTS_PROSE = """\
# How each Keras writer lays out a model

Read off the fixtures with h5py by `xtask/py/make_fixtures.py` (the "Real examples" section is
regenerated from the files on every full run). Read weights by following the `layer_names` and
`weight_names` attributes, never by guessing paths: the paths differ between writers and even
between two files of the same writer.

## Keras 2 / tf_keras `.h5` (`keras2/*/model.h5`)
- Root attributes: `backend`, `keras_version` ("2.21.0"), `model_config` (a JSON string:
  `{"class_name": "Sequential"|"Functional", "config": {"name", "layers": [...]}}`), and
  `training_config` when the model was compiled. Sequential configs list an `InputLayer` with
  `batch_input_shape` first (not in `layer_names`); a layer created with `input_shape=` also has
  `batch_input_shape` in its own config. Functional configs carry `inbound_nodes` as
  `[[[layer, node_index, tensor_index, kwargs], ...]]`.
- HDF5 types (both writers): `model_config`/`training_config` are scalar variable-length strings
  (ASCII cset; the JSON inside may hold UTF-8), `backend`/`keras_version` scalar variable-length
  UTF-8 strings.
- `/model_weights` attributes: `backend`, `keras_version`, `layer_names`: a 1-D array of
  variable-length byte strings (vlen, ASCII cset), `model.layers` order, no InputLayer for
  Sequential; functional models include it.
- `/model_weights/<layer>` attribute `weight_names`: vlen byte strings `<layer>/<var>:0`
  (`dense/kernel:0`); dataset at `/model_weights/<layer>/<weight_name>`, i.e.
  `/model_weights/dense/dense/kernel:0`. A layer without weights stores `weight_names` as an
  EMPTY float64 array (shape (0,)), not an empty string array.
- Weight order per layer is `layer.get_weights()` order (Dense: kernel, bias; BatchNormalization:
  gamma, beta, moving_mean, moving_variance, minus what center/scale turn off; SeparableConv2D:
  depthwise_kernel, pointwise_kernel, bias; PReLU: alpha; Normalization (adapted): mean,
  variance, count).
- Optimizer state of compiled models: `/optimizer_weights/...` (not model weights).

## Keras 3 legacy `.h5` (`keras3/*/model.h5`)
- The same group/attribute scheme; `keras_version` "3.15.1"; `model_config` layers have a
  `module`/`registered_name`, the InputLayer uses `batch_shape`, `dtype` is a DTypePolicy dict, and
  functional `inbound_nodes` are `[{"args": [...], "kwargs": {...}}]` with tensors as
  `{"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, tensor]}}`.
  Sequential and functional configs both list the InputLayer (even for a Sequential built with
  `build()`); there is no `build_config` in the `.h5` `model_config` (the `.keras` `config.json`
  has one at the top and on layers).
- `weight_names` have no `:0`, and their prefix depends on how the variable was created: a model
  trained as built has `<model name>/<layer>/<var>` (`sequential/stem/kernel`, dataset
  `/model_weights/stem/sequential/stem/kernel`); a model re-created with `from_config` (the
  uncompiled fixtures) has `<layer>/<var>` (`dense/kernel`, dataset
  `/model_weights/dense/dense/kernel`).
- Layers without weights: `weight_names` is an empty float64 array, as in Keras 2.
- Both writers also write an empty group `/model_weights/top_level_model_weights` (empty float64
  `weight_names`) that is not in `layer_names`: skip groups that `layer_names` does not list.

## Chunked name lists (`special/chunked_names_*`)
Keras sizes `layer_names` as `np.asarray(names)`, a fixed-width array: (number of layers) x
(longest name) bytes. When that exceeds HDF5_OBJECT_HEADER_LIMIT = 64512 bytes, both writers split
it with `np.array_split` into `layer_names0`, `layer_names1`, ... (no plain `layer_names` then);
concatenate them in numeric order. The chunks are FIXED-width strings (`|S<longest>`, HDF5 fixed
string, null-padded, ASCII cset), unlike the unchunked vlen `layer_names`: strip the trailing NULs.
`weight_names` are split the same way (not exercised).

## Keras 3 `.keras` zip (`keras3/*/model.keras`)
- Members: `metadata.json` (keras_version, date_saved), `config.json` (the serialized model:
  `{"module": "keras", "class_name": "Sequential"|"Functional", "config": {"layers": [...]},
  "build_config": ..., "compile_config": ...}`), `model.weights.h5`. The zip entries are stored
  (not deflated); their timestamps, `date_saved` and (compiled models) `config.json`'s
  `shared_object_id` (a Python `id()`) change on every save, so never compare them byte for byte.
- `model.weights.h5` paths: `layers/<snake_case class name, uniquified within the model>/vars/<i>`
  (`layers/dense/vars/0`, `layers/dense_1/vars/0`, `layers/batch_normalization/vars/3`), NOT the
  layer's own name: `conv_basic`'s layer `stem` is stored under `layers/conv2d`. `<i>` follows the
  layer's weight order. Nested models nest: `layers/sequential/layers/dense/vars/0`. Compiled
  models add `optimizer/vars/<i>`. Layers without weights still get an empty `layers/<x>/vars` group,
  and the model's own (empty) variables a top-level `vars` group. Datasets are float32, no
  attributes are needed to read them.

## Weights-only files (`special/weights_only_*`)
- Keras 3 `save_weights("x.weights.h5")`: the `.keras` weights layout (`layers/<x>/vars/<i>`, plus
  `optimizer/vars/<i>` when the model was compiled and trained), no root attributes, no
  `model_config` anywhere.
- tf_keras `save_weights("x.h5")`: `layer_names`, `backend`, `keras_version` on the root, layer
  groups directly under the root (`/dense/dense/kernel:0`), no `model_config`.
"""


def write_layouts():
    out = [LAYOUTS_PROSE, "## Real examples (generated)\n"]
    examples = [
        ("keras2 `.h5`, uncompiled (`keras2/mlp_784/model.h5`)", h5_example, "keras2/mlp_784/model.h5"),
        (
            "keras2 `.h5`, compiled with Adam state (`keras2/conv_basic/model.h5`)",
            h5_example,
            "keras2/conv_basic/model.h5",
        ),
        ("keras3 `.h5`, uncompiled (`keras3/mlp_784/model.h5`)", h5_example, "keras3/mlp_784/model.h5"),
        (
            "keras3 `.h5`, compiled with Adam state (`keras3/conv_basic/model.h5`)",
            h5_example,
            "keras3/conv_basic/model.h5",
        ),
        ("keras3 `.keras` (`keras3/conv_basic/model.keras`)", keras_zip_example, "keras3/conv_basic/model.keras"),
        (
            "keras3 `.keras`, nested (`special/nested_keras3/model.keras`)",
            keras_zip_example,
            "special/nested_keras3/model.keras",
        ),
        (
            "keras3 weights only (`special/weights_only_keras3/model.weights.h5`)",
            weights_only_example,
            "special/weights_only_keras3/model.weights.h5",
        ),
        (
            "keras2 weights only (`special/weights_only_keras2/model.h5`)",
            weights_only_example,
            "special/weights_only_keras2/model.h5",
        ),
    ]
    for title, fn, rel in examples:
        p = os.path.join(OUT, rel)
        if os.path.exists(p):
            out.append(f"### {title}")
            out += [f"- {line}" for line in fn(p)]
            out.append("")
    import h5py

    for w in WRITERS:
        p = os.path.join(OUT, "special", f"chunked_names_{w}", "model.h5")
        if os.path.exists(p):
            with h5py.File(p, "r") as f:
                a = f["model_weights"].attrs
                desc = [
                    f"`{n}` ({h5_type(f['model_weights'], n)}) = {a[n].nbytes} bytes"
                    for n in sorted(a)
                    if n.startswith("layer_names")
                ]
                names = sorted(a)
            out.append(f"### chunked `layer_names` (`special/chunked_names_{w}/model.h5`)")
            out.append(f"- `/model_weights` attributes: {', '.join(names)}; " + "; ".join(desc))
            out.append("")
    with open(os.path.join(OUT, "LAYOUTS.md"), "w") as f:
        f.write("\n".join(out).rstrip() + "\n")


def write_readme(versions, facts):
    L = []
    L.append("# Test fixtures written by real Keras\n")
    L.append(
        "Regenerate with `cargo xtask fixtures` (all), `cargo xtask fixtures --only merge,nested` (some "
        "cases, both writers; add `--writer keras3` for one writer), `cargo xtask fixtures --list`, or "
        "`cargo xtask fixtures --verify` (only the checks at the end of this file), `cargo xtask fixtures --docs` "
        "(only README.md and LAYOUTS.md). It runs `xtask/py/make_fixtures.py` in "
        "`.venv`. Deterministic: seed 7, TensorFlow op determinism, Keras name counters reset per "
        "case, one TensorFlow thread. Two runs give byte-identical files except `model.keras`: its zip "
        "timestamps, "
        "`metadata.json`'s `date_saved` and, for compiled models, `config.json`'s `shared_object_id` (a Python "
        "`id()`) change on every save.\n"
    )
    L.append("Written by (also in `VERSIONS.txt`):\n")
    L.append("```\n" + versions.strip() + "\n```\n")
    L.append(
        f"Every model ends in Dense(10) and is trained for {EPOCHS} epoch on the first {N_TRAIN} training "
        f"images (Adam, batch {BATCH}), so weights and BatchNormalization moving statistics are real "
        "(checked not to be 0/1). `LAYOUTS.md` describes how each writer lays out the files.\n"
    )
    L.append("## Files per case\n")
    L.append(
        "`keras3/<case>/` is written by Keras 3 (`import keras`), `keras2/<case>/` by tf_keras "
        "(`import tf_keras as keras`, the Keras 2 HDF5 layout), `special/<case>_<writer>/` by either.\n"
    )
    L.append("| file | what |\n|---|---|")
    L.append('| `model.h5` | `model.save("model.h5")` (keras3: Keras 3\'s legacy HDF5 layout) |')
    L.append('| `model.keras` | `model.save("model.keras")` (keras3 only) |')
    L.append(
        "| `fashion_mnist.json`, `fashion_mnist.npz` | the course notebook's export of `model.layers`: "
        '`[{name, type, config, weights: ["<layer>_<i>"]}]` + `np.savez` of float32 arrays; '
        "functional models add `inbound` (names of the layers feeding each layer, in call order, [] for "
        "InputLayer, from `model.get_config()` inbound_nodes); Sequential models have no `inbound` |"
    )
    L.append(
        f"| `io.npz` | `x`: the first {N_IO} test images, float32 ({N_IO}, 784) /255; `y`: Keras' own "
        f"`model.predict(x.reshape(({N_IO},) + input_shape))`, float32 ({N_IO}, 10); `input_shape`: int64. "
        "Written with `np.savez_compressed` (keeps the fixtures small) |"
    )
    L.append("")
    L.append(
        "The json is written with `json.dump(arch, f, default=hook)`: the hook turns NumPy arrays and "
        "scalars into lists/numbers. It matters for tf_keras' `Normalization(mean=np.float32(0.25), ...)` "
        "(normalization case), whose config keeps the NumPy scalar; tuples become JSON lists as usual.\n"
    )
    L.append("## Cases\n")
    L.append("| case | input | covers |\n|---|---|---|")
    for case in CASES:
        if case.special:
            continue
        shape = io_shape(case)
        L.append(f"| `{case.name}` | {shape} | {case.covers} |")
    L.append("\n## Special cases (`special/<case>_keras3`, `special/<case>_keras2`)\n")
    L.append("| case | input | what |\n|---|---|---|")
    for case in CASES:
        if case.special:
            L.append(f"| `{case.name}` | {io_shape(case)} | {case.covers} |")
    L.append("")
    L.append("## Gaps: what a writer cannot express\n")
    for case in CASES:
        for w, g in case.gaps.items():
            L.append(f"- `{w}/{case.name}`: {g}.")
    L.append(
        "- RandomCrop is not used: it changes the shape at inference unless the crop is the whole image, "
        "and fmtool does not implement it."
    )
    L.append(
        "- Keras 2 and Keras 3 define `hard_sigmoid` differently (Keras 2: clip(0.2x + 0.5, 0, 1); Keras 3: "
        "relu6(x + 3) / 6): the same string in keras2/ and keras3/ fixtures means two functions."
    )
    L.append("")
    L.append("### Activation strings: what each writer accepts and writes into the config\n")
    L.append("| string | " + " | ".join(WRITERS) + " |\n|---|" + "---|" * len(WRITERS))
    for a in ACTIVATIONS:
        cells = []
        for w in WRITERS:
            got = facts.get(w, {}).get("activations", {}).get(a, "?") if w in facts else "?"
            cells.append("rejected" if got is None else (f"`{got}`" if got == a else f"written as `{got}`"))
        L.append(f"| `{a}` | " + " | ".join(cells) + " |")
    L.append("")
    L.append("### Approximate GELU\n")
    L.append(
        'There is no string for the tanh approximation: `activation="gelu"` is the exact form in both '
        "writers, and the approximate one cannot be serialized as a name. Probed:\n"
    )
    for w in WRITERS:
        for line in facts.get(w, {}).get("gelu", []):
            L.append(f"- {w}: {line}")
    L.append("")
    L.append("## Where the input shape is\n")
    L.append(
        "Keras 3 never puts an input shape into a layer's own `get_config()` and drops the InputLayer from "
        "a Sequential's `model.layers`, so a keras3 Sequential export carries no input shape at all "
        "(fmtool infers it from the first layer: Dense kernel rows, Conv2D -> (28, 28, 1), Flatten/Reshape). "
        "tf_keras writes `batch_input_shape` into the first layer's config only when it was created with "
        "`input_shape=`. Functional models keep the InputLayer in `model.layers` in both writers "
        "(`batch_shape` in Keras 3, `batch_input_shape` in Keras 2). In `model.h5`'s `model_config` the "
        "InputLayer is always listed. Per fixture:\n"
    )
    L.append(
        "| fixture | first entry of fashion_mnist.json | model.h5 `model_config` | model.keras `config.json` |\n"
        "|---|---|---|---|"
    )
    for w, case, d in model_dirs():
        if case.kind in ("full", "nested") and os.path.exists(os.path.join(export_dir(case, d), "fashion_mnist.json")):
            e, m, kz = shape_keys(d, case)
            L.append(f"| `{os.path.relpath(d, OUT)}` | {e} | {m} | {kz} |")
    L.append("")
    L.append("## Checks (`--verify`, after every run)\n")
    L.append(
        "With plain `json.load` and `numpy.load(allow_pickle=False)` only: every json/npz loads, the json's "
        "weight names are exactly the npz keys, arrays are float32 (numpy_variants: float64, Fortran order, "
        "deflated), `io.npz` holds the first 64 test images and finite (64, 10) outputs, functional exports "
        "have `inbound` on every entry (naming existing layers) and Sequential ones on none, BatchNormalization "
        "moving statistics are not 0/1, the chunked files have `layer_names0`/`layer_names1` and no "
        "`layer_names`, and together each writer's fixtures hold every layer and activation string of the "
        "issue. While generating, every saved `model.h5`/`model.keras` is loaded back with Keras and must "
        "predict `y` exactly. For the models the course template can run exactly (Flatten, Dense with "
        "relu/softmax/linear, InputLayer, Dropout), its NumPy forward pass (float64, one image at a time) "
        "must reproduce Keras' `y` within 1e-5:\n"
    )
    errors, report = verify()
    L += [
        f"- {line.replace('course template vs Keras, ', '`').replace(': max', '`: max')}"
        for line in report
        if line.startswith("course template")
    ]
    L.append("")
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("\n".join(L))


def io_shape(case):
    for w in case.writers:
        p = os.path.join(case.dir(w), "io.npz")
        if os.path.exists(p):
            return str(tuple(int(v) for v in np.load(p, allow_pickle=False)["input_shape"]))
    return "-"


# ---- verification (plain json / NumPy / h5py) -----------------------------------------------------------


def verify():
    import h5py

    errors, report = [], []
    xte = load_data()[2]
    types = {w: set() for w in WRITERS}
    acts = {w: set() for w in WRITERS}

    def check(cond, msg):
        if not cond:
            errors.append(msg)

    def one(w, case, d, rel):
        if case.kind == "weights_only":
            f = os.path.join(d, "model.weights.h5" if w == "keras3" else "model.h5")
            with h5py.File(f, "r") as h:
                check("model_config" not in h.attrs, f"{rel}: weights-only file has a model_config")
            return
        if case.kind != "numpy_variants":
            check(os.path.exists(os.path.join(d, "model.h5")), f"{rel}: no model.h5")
        if case.kind == "refused":
            return
        if w == "keras3" and case.keras_file and case.kind != "numpy_variants":
            check(zipfile.is_zipfile(os.path.join(d, "model.keras")), f"{rel}: no model.keras")
        ed = export_dir(case, d)
        arch, weights = load_export(ed)
        with np.load(os.path.join(d, "io.npz"), allow_pickle=False) as z:
            x, y, shape = z["x"], z["y"], z["input_shape"]
        check(x.dtype == np.float32 and x.shape == (N_IO, 784) and np.array_equal(x, xte), f"{rel}: io x")
        check(y.dtype == np.float32 and y.shape == (N_IO, 10) and np.isfinite(y).all(), f"{rel}: io y")
        check(shape.dtype == np.int64 and int(np.prod(shape)) == 784, f"{rel}: io input_shape {shape}")
        named = [n for e in arch for n in e["weights"]]
        check(sorted(named) == sorted(weights), f"{rel}: json weight names != npz keys")
        if case.kind == "numpy_variants":
            check(
                all(
                    a.dtype == np.float64 and (a.ndim < 2 or (a.flags.f_contiguous and not a.flags.c_contiguous))
                    for a in weights.values()
                ),
                f"{rel}: npz not float64 Fortran order",
            )
            with zipfile.ZipFile(os.path.join(ed, "fashion_mnist.npz")) as z:
                check(all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist()), f"{rel}: npz not compressed")
        else:
            check(all(a.dtype == np.float32 for a in weights.values()), f"{rel}: npz not float32")
        functional = any("inbound" in e for e in arch)
        check(all(("inbound" in e) == functional for e in arch), f"{rel}: inbound on some entries only")
        if functional:
            names = {e["name"] for e in arch}
            for e in arch:
                check(
                    e["type"] == "InputLayer" or (e["inbound"] and set(e["inbound"]) <= names),
                    f"{rel}: inbound of {e['name']} = {e['inbound']}",
                )
        for e in arch:
            types[w].add(e["type"])
            if "activation" in e["config"]:
                acts[w].add(e["config"]["activation"])
            if e["type"] == "BatchNormalization":
                mean, var = weights[e["weights"][-2]], weights[e["weights"][-1]]
                check(
                    not np.allclose(mean, 0) and not np.allclose(var, 1) and (var > 0).all(),
                    f"{rel}: {e['name']} moving statistics are the initial ones",
                )
        # The template runs Flatten and Dense and skips everything else: exact for these (Dropout is
        # the identity at inference).
        template_ok = all(
            e["type"] in ("Dense", "Flatten", "InputLayer", "Dropout")
            and e["config"].get("activation", "linear") in ("relu", "softmax", "linear")
            for e in arch
        )
        if template_ok:
            diff = float(np.abs(template_outputs(arch, weights, x.astype(np.float64)) - y).max())
            report.append(f"course template vs Keras, {rel}: max |diff| = {diff:.2e}")
            check(diff <= 1e-5, f"{rel}: course template differs from Keras by {diff}")
        if case.name == "chunked_names":
            with h5py.File(os.path.join(d, "model.h5"), "r") as h:
                a = h["model_weights"].attrs
                check(
                    "layer_names" not in a and "layer_names0" in a and "layer_names1" in a,
                    f"{rel}: layer_names is not chunked: {sorted(a)}",
                )
                report.append(f"{rel}: model_weights attributes {sorted(a)}")

    for w, case, d in model_dirs():
        rel = os.path.relpath(d, OUT)
        try:
            one(w, case, d, rel)
        except Exception as e:  # a missing or unreadable file
            errors.append(f"{rel}: {type(e).__name__}: {e}")
    for w in WRITERS:
        if not types[w]:
            continue
        need = REQUIRED_LAYERS + (["RandomBrightness"] if w == "keras2" else [])
        missing = [t for t in need if t not in types[w]]
        check(not missing, f"{w}: no fixture has the layers {missing}")
        canon = {"swish": "silu", "hard_swish": "hard_silu"}
        have = {canon.get(a, a) for a in acts[w] if isinstance(a, str)}
        wanted = {canon.get(a, a) for a in ACTIVATIONS} - ({"hard_silu"} if w == "keras2" else set())
        check(wanted <= have, f"{w}: no fixture has the activations {sorted(wanted - have)}")
    return errors, report


def du(path):
    total = 0
    for dp, _, fs in os.walk(path):
        total += sum(os.path.getsize(os.path.join(dp, f)) for f in fs)
    return total


# ---- main -----------------------------------------------------------------------------------------------


def clean_stale():
    """Before a full run: empty keras3/ and keras2/ (this script owns them) and remove this script's
    special/ cases, so nothing stale survives. Anything else under tests/fixtures (another tool's
    fixtures) is left alone."""
    for w in WRITERS:
        shutil.rmtree(os.path.join(OUT, w), ignore_errors=True)
    for case in CASES:
        if case.special:
            for w in case.writers:
                shutil.rmtree(case.dir(w), ignore_errors=True)
    ours = {os.path.basename(c.dir(w)) for c in CASES if c.special for w in c.writers}
    others = (
        sorted(set(os.listdir(os.path.join(OUT, "special"))) - ours)
        if os.path.isdir(os.path.join(OUT, "special"))
        else []
    )
    if others:
        print(f"left alone in special/ (not made by this script): {others}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated case names (see --list)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--writer", choices=["keras3", "keras2", "both"], default="both")
    ap.add_argument("--verify", action="store_true", help="only verify the fixtures on disk")
    ap.add_argument("--docs", action="store_true", help="only rewrite README.md and LAYOUTS.md (and verify)")
    ap.add_argument("--child", choices=WRITERS, help=argparse.SUPPRESS)
    ap.add_argument("--facts", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.list:
        for c in CASES:
            where = os.path.relpath(c.dir("<writer>"), OUT)
            print(f"{c.name:22} {where:38} {'+'.join(c.writers)}")
        return
    only = None
    if args.only:
        only = set(args.only.split(","))
        unknown = sorted(only - set(CASE_BY_NAME))
        if unknown:
            raise SystemExit(f"unknown case(s) {unknown}; --list shows them")
    if args.docs:
        only = set()  # the children only probe their Keras (activation strings, GELU)
    if args.child:
        child(args.child, only, args.facts)
        return
    if not args.verify:
        t0 = time.time()
        writers = list(WRITERS) if args.writer == "both" else [args.writer]
        if only is None and len(writers) == len(WRITERS):
            clean_stale()
        facts = {}
        with tempfile.TemporaryDirectory() as tmp:
            for w in writers:
                env = dict(os.environ, TF_USE_LEGACY_KERAS="1" if w == "keras2" else "0")
                fp = os.path.join(tmp, f"{w}.json")
                cmd = [sys.executable, os.path.abspath(__file__), "--child", w, "--facts", fp]
                cmd += ["--only", args.only] if args.only else ["--docs"] if args.docs else []
                subprocess.run(cmd, env=env, check=True)
                with open(fp) as f:
                    facts[w] = json.load(f)
        versions = write_versions()
        if (only is None or args.docs) and len(writers) == len(WRITERS):
            write_readme(versions, facts)
            write_layouts()
        else:
            print("partial run: README.md and LAYOUTS.md left as they are (a full run or --docs rewrites them)")
        print(f"generated in {time.time() - t0:.0f}s")
    errors, report = verify()
    print("\n".join(report))
    print(f"tests/fixtures: {du(OUT) / 1e6:.2f} MB")
    if errors:
        print("VERIFY FAILED:\n  " + "\n  ".join(errors), file=sys.stderr)
        sys.exit(1)
    print("verify: ok")


if __name__ == "__main__":
    main()
