"""Writes fmtool's test fixtures with real Keras: `cargo xtask fixtures [--only CASE,...] [--list]`.

For each case, under tests/fixtures/<writer>/<case>/:
  model.h5       model.save(...h5)  (keras3: Keras 3's legacy HDF5 layout; keras2: tf_keras' layout)
  model.keras    model.save(...keras)  (keras3 only)
  fashion_mnist.json + fashion_mnist.npz   the course notebook's export of model.layers
  io.npz         x: the first 16 test images as float32 (16, 784) rows /255,
                 y: Keras' own model.predict on them, input_shape: the model's input shape
Special cases (weights-only files, chunked layer-name attributes, nested and unsupported models)
live under tests/fixtures/special/. Every model is trained for one short epoch on 2,000 training
images so its weights (and BatchNormalization statistics) are not the initial ones.
"""

import argparse
import gzip
import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures")
DATA = os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def data():
    xtr = load_idx(f"{DATA}/train-images-idx3-ubyte.gz")[:2000].reshape(-1, 784).astype(np.float32) / 255.0
    ytr = load_idx(f"{DATA}/train-labels-idx1-ubyte.gz")[:2000].astype(np.int64)
    xte = load_idx(f"{DATA}/t10k-images-idx3-ubyte.gz")[:16].reshape(-1, 784).astype(np.float32) / 255.0
    return xtr, ytr, xte


def jsonable(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def inbound_names(model):
    """Layer name -> names of the layers feeding it, from the model config (Keras 2 and 3)."""
    out = {}
    for lc in model.get_config().get("layers", []):
        names = []
        for node in lc.get("inbound_nodes", []):
            if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {}}
                def walk(v):
                    if isinstance(v, dict) and v.get("class_name") == "__keras_tensor__":
                        names.append(v["config"]["keras_history"][0])
                    elif isinstance(v, dict):
                        for x in v.values():
                            walk(x)
                    elif isinstance(v, (list, tuple)):
                        for x in v:
                            walk(x)
                walk(node.get("args", []))
            else:  # Keras 2: [["name", node_index, tensor_index, kwargs], ...]
                for t in node:
                    names.append(t[0])
        out[lc["name"]] = names
    return out


def course_export(model, d, functional):
    """The course notebook's export, verbatim, plus `inbound` for functional models."""
    arch, arrays = [], {}
    inbound = inbound_names(model) if functional else {}
    for layer in model.layers:
        ws = layer.get_weights()
        names = [f"{layer.name}_{i}" for i in range(len(ws))]
        entry = {"name": layer.name, "type": type(layer).__name__, "config": layer.get_config(), "weights": names}
        if functional:
            entry["inbound"] = inbound.get(layer.name, [])
        arch.append(entry)
        arrays.update({n: np.asarray(w, dtype=np.float32) for n, w in zip(names, ws)})
    with open(os.path.join(d, "fashion_mnist.json"), "w") as f:
        json.dump(arch, f, default=jsonable)
    np.savez(os.path.join(d, "fashion_mnist.npz"), **arrays)


def save_case(keras, model, d, writer, xte, functional=False, train=None, keep_optimizer=False):
    os.makedirs(d, exist_ok=True)
    if train is not None:
        xtr, ytr = train
        shape = model.input_shape[1:]
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(xtr.reshape((-1,) + tuple(shape)), ytr, epochs=1, batch_size=128, verbose=0)
    shape = tuple(model.input_shape[1:])
    y = model.predict(xte.reshape((-1,) + shape), verbose=0)
    np.savez(os.path.join(d, "io.npz"), x=xte, y=np.asarray(y, np.float32), input_shape=np.array(shape, np.int64))
    if not keep_optimizer:
        # An uncompiled copy with the same weights: the files stay small. A few cases keep the
        # optimizer state, as students' files do.
        copy = model.__class__.from_config(model.get_config())
        copy.set_weights(model.get_weights())
        model = copy
    model.save(os.path.join(d, "model.h5"))
    if writer == "keras3":
        model.save(os.path.join(d, "model.keras"))
    course_export(model, d, functional)


# ---- cases: each returns (model, functional) for a given keras module, or None if unsupported --------


def mlp_flatten(k):
    L = k.layers
    return k.Sequential([k.Input((28, 28)), L.Flatten(), L.Dense(16, activation="relu"), L.Dropout(0.2), L.Dense(10, activation="softmax")]), False


def mlp_784(k):
    L = k.layers
    return k.Sequential([k.Input((784,)), L.Dense(24, activation="relu"), L.Dense(10, activation="softmax")]), False


def mlp_input_layer(k):
    # A functional MLP: Keras keeps the InputLayer in model.layers, so the export carries the input shape.
    L = k.layers
    inp = k.Input((784,), name="pixels")
    x = L.Dense(16, activation="relu")(inp)
    out = L.Dense(10, activation="softmax")(x)
    return k.Model(inp, out), True


ACTIVATIONS = ["linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "hard_sigmoid", "tanh",
               "softplus", "softsign", "swish", "silu", "hard_swish", "hard_silu", "mish", "exponential", "log_softmax",
               "softmax"]


def supported_activations(k):
    ok = []
    for a in ACTIVATIONS:
        try:
            k.activations.get(a)
            ok.append(a)
        except Exception:
            pass
    return ok


def activations(k):
    # Each activation on its own small Dense, fed through tanh so exponential stays finite.
    L = k.layers
    inp = k.Input((784,))
    h = L.Dense(8, activation="tanh")(inp)
    outs = [L.Dense(4, activation=a, name=f"act_{a}")(h) for a in supported_activations(k)]
    x = L.Concatenate()(outs)
    out = L.Dense(10, activation="softmax")(x)
    return k.Model(inp, out), True


def activation_layers(k):
    L = k.layers
    leaky = L.LeakyReLU(negative_slope=0.2) if "negative_slope" in L.LeakyReLU.__init__.__code__.co_varnames else L.LeakyReLU(alpha=0.2)
    return k.Sequential([
        k.Input((784,)), L.Dense(12), L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.05),
        L.Dense(32), L.ReLU(), L.Dense(32), leaky, L.Dense(32), L.PReLU(), L.Dense(32), L.ELU(alpha=0.7),
        L.Dense(16), L.Activation("tanh"), L.Dense(10), L.Softmax(),
    ]), False


def identities(k):
    L = k.layers
    layers = [k.Input((784,)), L.Reshape((28, 28)), L.SpatialDropout1D(0.1), L.Reshape((28, 28, 1)),
              L.RandomFlip("horizontal"), L.RandomRotation(0.05), L.RandomTranslation(0.1, 0.1), L.RandomZoom(0.1),
              L.RandomContrast(0.1), L.GaussianNoise(0.1), L.SpatialDropout2D(0.1), L.Flatten(),
              L.GaussianDropout(0.1), L.AlphaDropout(0.1), L.ActivityRegularization(l1=0.01), L.Dropout(0.3),
              L.Dense(10, activation="softmax")]
    # RandomBrightness is left out: Keras 3.15 cannot save it to .h5 ("cannot pickle 'module' object").
    return k.Sequential(layers), False


def normalization(k):
    L = k.layers
    norm = L.Normalization()
    xtr = data()[0]
    norm.adapt(xtr[:500])
    return k.Sequential([
        k.Input((784,)), L.Rescaling(2.0, offset=-1.0), norm, L.Dense(12), L.BatchNormalization(), L.Activation("relu"),
        L.Dense(32), L.LayerNormalization(), L.BatchNormalization(center=False), L.BatchNormalization(scale=False),
        L.Dense(10, activation="softmax"),
    ]), False


def conv_basic(k):
    L = k.layers
    return k.Sequential([
        k.Input((28, 28, 1)), L.Conv2D(8, 3, padding="same", activation="relu"), L.BatchNormalization(),
        L.MaxPooling2D(2), L.Conv2D(8, 3, strides=2, padding="valid"), L.AveragePooling2D(2, padding="same"),
        L.Flatten(), L.Dense(10, activation="softmax"),
    ]), False


def conv_variants(k):
    L = k.layers
    return k.Sequential([
        k.Input((28, 28, 1)), L.Conv2D(4, 3, dilation_rate=2, padding="same", activation="elu"),
        L.Conv2D(8, (3, 2), groups=2, padding="valid", use_bias=False), L.BatchNormalization(axis=-1),
        L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"), L.SeparableConv2D(8, 3, padding="same", activation="relu"),
        L.MaxPooling2D(pool_size=3, strides=2, padding="same"), L.AveragePooling2D(pool_size=3, strides=1, padding="valid"),
        L.SeparableConv2D(6, 2, strides=2, padding="valid", depth_multiplier=2), L.GlobalAveragePooling2D(),
        L.Dense(10, activation="softmax"),
    ]), False


def pooling(k):
    L = k.layers
    return k.Sequential([
        k.Input((28, 28, 1)), L.Conv2D(6, 5, strides=(2, 1), padding="same"), L.MaxPooling2D((3, 2), strides=(1, 2), padding="valid"),
        L.AveragePooling2D((2, 3), strides=2, padding="same"), L.Conv2D(8, 2), L.GlobalMaxPooling2D(keepdims=True),
        L.Flatten(), L.Dense(10, activation="softmax"),
    ]), False


def reshaping(k):
    L = k.layers
    return k.Sequential([
        k.Input((784,)), L.Reshape((28, 28, 1)), L.ZeroPadding2D(((1, 2), (3, 0))), L.Cropping2D(((2, 1), (0, 3))),
        L.Conv2D(4, 3, strides=2), L.UpSampling2D(2), L.Conv2D(4, 3), L.UpSampling2D((2, 3), interpolation="bilinear"),
        L.Permute((2, 1, 3)), L.MaxPooling2D(4), L.Reshape((-1,)), L.Dense(10, activation="softmax"),
    ]), False


def merge(k):
    L = k.layers
    inp = k.Input((28, 28, 1))
    a = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    b = L.Conv2D(4, 3, padding="same", activation="tanh")(inp)
    m = [L.Add()([a, b]), L.Subtract()([a, b]), L.Multiply()([a, b]), L.Average()([a, b]), L.Maximum()([a, b]),
         L.Minimum()([a, b])]
    x = L.Concatenate(axis=-1)(m + [inp])
    x = L.MaxPooling2D(4)(x)
    x = L.Flatten()(x)
    out = L.Dense(10, activation="softmax")(x)
    return k.Model(inp, out), True


def conv_first_no_input(k):
    # Keras 3 drops the InputLayer from a Sequential's model.layers: the export has no input shape.
    L = k.layers
    m = k.Sequential([L.Conv2D(6, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(), L.Dense(10, activation="softmax")])
    m.build((None, 28, 28, 1))
    return m, False


def dropout_batchnorm(k):
    L = k.layers
    return k.Sequential([
        k.Input((28, 28)), L.Flatten(), L.Dense(16), L.BatchNormalization(), L.Activation("relu"), L.Dropout(0.3),
        L.Dense(32, activation="relu"), L.BatchNormalization(), L.Dropout(0.3), L.Dense(10, activation="softmax"),
    ]), False


def separate_activations(k):
    L = k.layers
    return k.Sequential([k.Input((28, 28)), L.Flatten(), L.Dense(12), L.Activation("relu"), L.Dense(10), L.Activation("softmax")]), False


CASES = {
    "mlp_flatten": mlp_flatten, "mlp_784": mlp_784, "mlp_input_layer": mlp_input_layer, "activations": activations,
    "activation_layers": activation_layers, "identities": identities, "normalization": normalization,
    "conv_basic": conv_basic, "conv_variants": conv_variants, "pooling": pooling, "reshaping": reshaping,
    "merge": merge, "conv_first_no_input": conv_first_no_input, "dropout_batchnorm": dropout_batchnorm,
    "separate_activations": separate_activations,
}


KEEP_OPTIMIZER = {"mlp_flatten", "conv_basic"}


# ---- special fixtures ----------------------------------------------------------------------------------


def special(k, writer, xte, train, only):
    L = k.layers
    base = os.path.join(OUT, "special")

    def want(name):
        return only is None or name in only

    if want("chunked_names"):
        # 150 linear Activation layers with 450-character names: the layer_names attribute exceeds
        # HDF5's 64 KB attribute limit, so Keras splits it into layer_names0, layer_names1, ...
        layers = [k.Input((784,)), L.Dense(12, activation="relu", name="first_" + "d" * 444)]
        layers += [L.Activation("linear", name=f"act{i:03d}_" + "x" * 443) for i in range(150)]
        layers += [L.Dense(10, activation="softmax", name="last_" + "e" * 445)]
        d = os.path.join(base, f"chunked_names_{writer}")
        shutil.rmtree(d, ignore_errors=True)
        save_case(k, k.Sequential(layers), d, writer, xte, train=train)
        os.remove(os.path.join(d, "model.keras")) if os.path.exists(os.path.join(d, "model.keras")) else None
    if want("weights_only"):
        m, _ = mlp_784(k)
        d = os.path.join(base, f"weights_only_{writer}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        m.save_weights(os.path.join(d, "model.weights.h5") if writer == "keras3" else os.path.join(d, "model.h5"))
    if want("nested"):
        inner = k.Sequential([k.Input((784,)), L.Dense(16, activation="relu"), L.Dense(12, activation="relu")], name="inner")
        inp = k.Input((784,))
        out = L.Dense(10, activation="softmax")(inner(inp))
        d = os.path.join(base, f"nested_{writer}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        m = k.Model(inp, out)
        m.save(os.path.join(d, "model.h5"))
        y = m.predict(xte, verbose=0)
        np.savez(os.path.join(d, "io.npz"), x=xte, y=np.asarray(y, np.float32), input_shape=np.array((784,), np.int64))
    if want("numpy_variants") and writer == "keras3":
        # The same MLP export re-saved the ways students' notebooks do: float64, Fortran order,
        # np.savez_compressed.
        src = os.path.join(OUT, "keras3", "mlp_784")
        d = os.path.join(base, "numpy_variants")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        shutil.copy(os.path.join(src, "fashion_mnist.json"), d)
        shutil.copy(os.path.join(src, "io.npz"), d)
        with np.load(os.path.join(src, "fashion_mnist.npz")) as z:
            arrays = {k: np.asfortranarray(z[k].astype(np.float64)) for k in z.files}
        np.savez_compressed(os.path.join(d, "fashion_mnist.npz"), **arrays)
    if want("unsupported"):
        m = k.Sequential([k.Input((28, 28)), L.Conv1D(4, 3), L.LSTM(4), L.Dense(10, activation="softmax")])
        d = os.path.join(base, f"unsupported_{writer}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        m.save(os.path.join(d, "model.h5"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--writer", choices=["keras3", "keras2", "both"], default="both")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.list:
        print("\n".join(list(CASES) + ["chunked_names", "weights_only", "nested", "unsupported", "numpy_variants"]))
        return
    only = set(args.only.split(",")) if args.only else None
    if args.child is None:
        # Keras 3 and tf_keras cannot share a process (TF_USE_LEGACY_KERAS is read at import).
        writers = ["keras3", "keras2"] if args.writer == "both" else [args.writer]
        for w in writers:
            env = dict(os.environ, TF_USE_LEGACY_KERAS="1" if w == "keras2" else "0")
            cmd = [sys.executable, __file__, "--child", w] + (["--only", args.only] if args.only else [])
            import subprocess
            subprocess.run(cmd, env=env, check=True)
        write_versions()
        return
    writer = args.child
    if writer == "keras2":
        import tf_keras as keras
    else:
        import keras
    keras.utils.set_random_seed(7)
    xtr, ytr, xte = data()
    for name, build in CASES.items():
        if only is not None and name not in only:
            continue
        keras.utils.set_random_seed(7)
        try:
            model, functional = build(keras)
        except Exception as e:  # a layer this Keras lacks
            print(f"{writer}/{name}: skipped ({type(e).__name__}: {e})")
            continue
        d = os.path.join(OUT, writer, name)
        shutil.rmtree(d, ignore_errors=True)
        save_case(keras, model, d, writer, xte, functional=functional, train=(xtr, ytr),
                  keep_optimizer=name in KEEP_OPTIMIZER)
        print(f"{writer}/{name}: {len(model.layers)} layers")
    special(keras, writer, xte, (xtr, ytr), only)


def write_versions():
    import subprocess
    code = ("import tensorflow as tf, keras, tf_keras, numpy, h5py; "
            "print(f'tensorflow {tf.__version__}\\nkeras {keras.__version__}\\ntf_keras {tf_keras.__version__}\\n"
            "numpy {numpy.__version__}\\nh5py {h5py.__version__}')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write(out)


if __name__ == "__main__":
    main()
