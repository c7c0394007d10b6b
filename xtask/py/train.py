#!/usr/bin/env python3
"""Train and export fmtool's shipped Fashion-MNIST models (run by `cargo xtask train`).

    cargo xtask train [--arch cnn|mlp] [--epochs N] [--seed S] [--data DIR]

* Trains with Keras on the full Fashion-MNIST training set, minus the last 5,000 images, which are
  held out for validation (all choices were made on that split; the test set is evaluated exactly once,
  at the end, for the model card).
* Saves `model/fashion_mnist.h5` (cnn) or `model/classic/fashion_mnist.h5` (mlp) with `model.save`.
* Writes the course export (`fashion_mnist.json` + `fashion_mnist.npz`) next to it: first with
  `cargo run --release -q -- convert <h5> --out <dir> --force`, falling back to the course's own Python
  export if that command fails or its output does not match the model's weights.
* Writes the model card `README.md` in the same folder.

The cnn is built from layer types the fmtool engine runs; the mlp only from Flatten, Dense (relu /
softmax) and Dropout, the layers the course template's NumPy forward pass understands, and its accuracy
in that pass is checked at the end.
"""

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers as L  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist/"
VAL_SIZE = 5000
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]


# ----------------------------------------------------------------------------------------------- data

def read_idx(path):
    """Reads a (gzipped) IDX file into a NumPy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file")
    dtype = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[data[2]]
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {dims}, found {arr.size} values")
    return arr.reshape(dims)


def find_file(data_dir, stem):
    for name in (stem + ".gz", stem):
        p = Path(data_dir) / name
        if p.exists():
            return p
    raise FileNotFoundError(f"{stem}(.gz) not found in {data_dir}")


def load_data(data_dir):
    def pair(prefix):
        x = read_idx(find_file(data_dir, f"{prefix}-images-idx3-ubyte"))
        y = read_idx(find_file(data_dir, f"{prefix}-labels-idx1-ubyte"))
        return x, y.astype(np.int64)
    (xtr, ytr), (xte, yte) = pair("train"), pair("t10k")
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28), (xtr.shape, xte.shape)
    # Inputs in [0, 1], as the course grader feeds them (pixels / 255); no other preprocessing.
    f = lambda x: (x.astype(np.float32) / 255.0)[..., None]
    return f(xtr), ytr, f(xte), yte


def make_augment(shift, flip):
    """Batched augmentation: random horizontal flip, random integer shift of up to `shift` px (zero fill)."""
    def aug(x, y):
        b = tf.shape(x)[0]
        if flip:
            m = tf.random.uniform([b, 1, 1, 1]) < 0.5
            x = tf.where(m, tf.reverse(x, axis=[2]), x)
        if shift > 0:
            xp = tf.pad(x, [[0, 0], [shift, shift], [shift, shift], [0, 0]])
            base = tf.range(28)[None, :]
            dy = tf.random.uniform([b, 1], 0, 2 * shift + 1, dtype=tf.int32)
            dx = tf.random.uniform([b, 1], 0, 2 * shift + 1, dtype=tf.int32)
            xp = tf.gather(xp, base + dy, axis=1, batch_dims=1)
            x = tf.gather(xp, base + dx, axis=2, batch_dims=1)
        return x, y
    return aug


def make_dataset(x, y, batch, seed, augment=None):
    ds = tf.data.Dataset.from_tensor_slices((x, keras.utils.to_categorical(y, 10).astype(np.float32)))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch)
    if augment is not None:
        ds = ds.map(augment)  # sequential: deterministic for a given seed
    return ds.prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------------------------- models

def conv_bn(x, filters, name, k=3, strides=1):
    x = L.Conv2D(filters, k, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = L.BatchNormalization(name=name + "_bn")(x)
    return L.ReLU(name=name + "_relu")(x)


def cnn_vgg6(inp):
    """VGG-style: two 3x3 convs (BatchNorm, ReLU) per stage at 28x28, 14x14 and 7x7, max pooling between."""
    x = conv_bn(inp, 32, "conv1a")                                 # 28x28x32
    x = conv_bn(x, 32, "conv1b")
    x = L.MaxPooling2D(name="pool1")(x)                            # 14x14x32
    x = conv_bn(x, 64, "conv2a")
    x = conv_bn(x, 64, "conv2b")
    x = L.MaxPooling2D(name="pool2")(x)                            # 7x7x64
    x = conv_bn(x, 128, "conv3a")
    x = conv_bn(x, 128, "conv3b")
    x = L.MaxPooling2D(name="pool3")(x)                            # 3x3x128
    return x


CNN_VARIANTS = {"vgg6": cnn_vgg6}
DEFAULT_CNN_VARIANT = "vgg6"


def build_cnn(variant, head_units=256, dropout=0.3):
    inp = keras.Input((28, 28, 1), name="input")
    x = CNN_VARIANTS[variant](inp)
    x = L.Flatten(name="flatten")(x)
    x = L.Dropout(dropout, name="drop1")(x)
    x = L.Dense(head_units, activation="relu", name="fc1")(x)
    x = L.Dropout(dropout, name="drop2")(x)
    out = L.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name=f"fashion_mnist_cnn_{variant}")


def build_mlp(hidden=(1024, 512), dropout=0.3):
    inp = keras.Input((28, 28, 1), name="input")
    x = L.Flatten(name="flatten")(inp)
    for i, h in enumerate(hidden):
        x = L.Dense(h, activation="relu", name=f"dense_{i + 1}")(x)
        x = L.Dropout(dropout, name=f"dropout_{i + 1}")(x)
    out = L.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name="fashion_mnist_mlp")


def flops_per_image(model):
    """2 * multiply-accumulates of the Conv2D / DepthwiseConv2D / SeparableConv2D / Dense layers."""
    macs, rows = 0, []
    for layer in model.layers:
        if isinstance(layer, (L.Conv2D, L.DepthwiseConv2D, L.SeparableConv2D, L.Dense)):
            out, cin = layer.output.shape, layer.input.shape[-1]
            if isinstance(layer, L.Dense):
                m = int(np.prod(layer.input.shape[1:-1] or [1])) * cin * layer.units
            else:
                k = int(np.prod(layer.kernel_size))
                pos = out[1] * out[2]
                if isinstance(layer, L.SeparableConv2D):
                    dm = layer.depth_multiplier
                    m = pos * (k * cin * dm + cin * dm * out[3])
                elif isinstance(layer, L.DepthwiseConv2D):
                    m = pos * k * cin * layer.depth_multiplier
                else:
                    m = pos * k * (cin // layer.groups) * out[3]
            macs += m
            rows.append((layer.name, m))
    return 2 * macs, rows


def summary_table(model):
    lines = ["| layer | type | output shape | params |", "| --- | --- | --- | --- |"]
    for layer in model.layers:
        shape = tuple(layer.output.shape[1:]) if hasattr(layer, "output") else ""
        act = ""
        if isinstance(layer, L.Dense):
            act = f" ({layer.get_config()['activation']})"
        lines.append(f"| {layer.name} | {type(layer).__name__}{act} | {shape} | {layer.count_params():,} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- export

def python_export(model, out_dir):
    """The course's export, verbatim in spirit: one JSON entry per layer, weights in an npz."""
    arch, arrays = [], {}
    for layer in model.layers:
        ws = layer.get_weights()
        names = [f"{layer.name}_{i}" for i in range(len(ws))]
        arch.append({"name": layer.name, "type": type(layer).__name__, "config": layer.get_config(),
                     "weights": names})
        for n, w in zip(names, ws):
            arrays[n] = np.asarray(w, dtype=np.float32)
    np.savez(out_dir / "fashion_mnist.npz", **arrays)
    with open(out_dir / "fashion_mnist.json", "w") as f:
        json.dump(arch, f, indent=2)


def check_export(model, out_dir):
    """Returns None if the export in out_dir matches the model's layers and weights, else a reason."""
    try:
        with open(out_dir / "fashion_mnist.json") as f:
            arch = json.load(f)
        npz = np.load(out_dir / "fashion_mnist.npz")
    except Exception as e:  # noqa: BLE001
        return f"cannot read export: {e}"
    by_name = {entry.get("name"): entry for entry in arch}
    for layer in model.layers:
        entry = by_name.get(layer.name)
        if entry is None:
            return f"layer {layer.name} missing from json"
        if entry.get("type") != type(layer).__name__:
            return f"layer {layer.name}: type {entry.get('type')} != {type(layer).__name__}"
        ws = layer.get_weights()
        names = entry.get("weights", [])
        if len(names) != len(ws):
            return f"layer {layer.name}: {len(names)} weight names, expected {len(ws)}"
        for n, w in zip(names, ws):
            if n not in npz.files:
                return f"weight {n} missing from npz"
            if npz[n].shape != w.shape or not np.allclose(npz[n], w, rtol=0, atol=1e-7):
                return f"weight {n} differs from the model's"
    return None


def export(model, h5, out_dir, use_converter=True):
    if use_converter:
        cmd = ["cargo", "run", "--release", "-q", "--", "convert", str(h5), "--out", str(out_dir), "--force"]
        print("export: trying", " ".join(cmd), flush=True)
        try:
            r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1200)
            if r.returncode == 0:
                problem = check_export(model, out_dir)
                if problem is None:
                    print("export: used fmtool convert", flush=True)
                    return "fmtool convert"
                print(f"export: fmtool convert succeeded but its output does not match: {problem}", flush=True)
            else:
                tail = (r.stderr or r.stdout).strip().splitlines()[-5:]
                print(f"export: fmtool convert failed (exit {r.returncode}):", *tail, sep="\n  ", flush=True)
        except (OSError, subprocess.TimeoutExpired) as e:
            print(f"export: fmtool convert could not run: {e}", flush=True)
    python_export(model, out_dir)
    problem = check_export(model, out_dir)
    if problem is not None:
        raise RuntimeError(f"Python export does not verify: {problem}")
    print("export: used the Python course export (fallback)", flush=True)
    return "Python course export (fallback: fmtool convert unavailable or failed)"


def template_forward_accuracy(out_dir, x_test_u8, y_test):
    """The course template's NumPy forward pass: float64 rows / 255, one image at a time; Dense is
    x @ W + b with relu / softmax, Flatten reshapes, every other layer is skipped."""
    with open(out_dir / "fashion_mnist.json") as f:
        arch = json.load(f)
    w = np.load(out_dir / "fashion_mnist.npz")
    correct = 0
    for img, label in zip(x_test_u8, y_test):
        x = img.astype(np.float64).reshape(1, -1) / 255.0
        for layer in arch:
            if layer["type"] == "Flatten":
                x = x.reshape(x.shape[0], -1)
            elif layer["type"] == "Dense":
                W, b = (w[n] for n in layer["weights"])
                x = x @ W + b
                act = layer["config"].get("activation")
                if act == "relu":
                    x = np.maximum(x, 0)
                elif act == "softmax":
                    e = np.exp(x - x.max(axis=-1, keepdims=True))
                    x = e / e.sum(axis=-1, keepdims=True)
        correct += int(np.argmax(x) == label)
    return correct / len(y_test)


# ----------------------------------------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=["cnn", "mlp"], default="cnn")
    p.add_argument("--epochs", type=int, default=None, help="default: 40 (cnn), 60 (mlp)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--data", default=DEFAULT_DATA, help="folder with the Fashion-MNIST IDX (.gz) files")
    p.add_argument("--out", default=None, help="output folder (default: model/ or model/classic/)")
    p.add_argument("--variant", choices=sorted(CNN_VARIANTS), default=DEFAULT_CNN_VARIANT,
                   help="cnn body (default: %(default)s, chosen on validation accuracy)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: 2e-3 cnn, 1e-3 mlp)")
    p.add_argument("--subset", type=int, default=0, help="pilot: train on only the first N training images")
    p.add_argument("--no-convert", action="store_true", help="skip `fmtool convert`, use the Python export")
    args = p.parse_args()

    t_start = time.time()
    is_cnn = args.arch == "cnn"
    epochs = args.epochs or (40 if is_cnn else 60)
    lr = args.lr or (2e-3 if is_cnn else 1e-3)
    out_dir = Path(args.out) if args.out else REPO / ("model" if is_cnn else "model/classic")
    out_dir = out_dir if out_dir.is_absolute() else REPO / out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()

    xtr_all, ytr_all, xte, yte = load_data(args.data)
    xtr, ytr = xtr_all[:-VAL_SIZE], ytr_all[:-VAL_SIZE]
    xva, yva = xtr_all[-VAL_SIZE:], ytr_all[-VAL_SIZE:]
    if args.subset:
        xtr, ytr = xtr[:args.subset], ytr[:args.subset]
    print(f"data: train {len(xtr)}, validation {len(xva)} (last {VAL_SIZE} of the training set), "
          f"test {len(xte)}", flush=True)

    if is_cnn:
        model = build_cnn(args.variant)
        shift, flip, smoothing, wd = 2, True, 0.1, 0.02
    else:
        model = build_mlp()
        # Shifts hurt the MLP (it has no translation invariance and underfits with them); flips help.
        shift, flip, smoothing, wd = 0, True, 0.1, 0.02
    augment = make_augment(shift, flip)
    train_ds = make_dataset(xtr, ytr, args.batch_size, args.seed, augment)
    val_ds = make_dataset(xva, yva, 1000, args.seed)

    steps = int(np.ceil(len(xtr) / args.batch_size))
    warmup = min(2 * steps, epochs * steps // 10)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / 10, decay_steps=max(1, epochs * steps - warmup), alpha=0.0,
        warmup_target=lr, warmup_steps=warmup)
    opt = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=wd)
    opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    model.compile(optimizer=opt, loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing),
                  metrics=["accuracy"])
    flops, _ = flops_per_image(model)
    print(f"model {model.name}: {model.count_params():,} params, {flops / 1e6:.2f} MFLOP/image", flush=True)
    model.summary(line_length=110)

    t_fit = time.time()
    hist = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=2)
    fit_s = time.time() - t_fit
    print(f"training: {epochs} epochs in {fit_s:.0f} s ({fit_s / epochs:.1f} s/epoch)", flush=True)

    # Final weights (no checkpoint selection); validation, then the test set exactly once.
    val_loss, val_acc = model.evaluate(xva, keras.utils.to_categorical(yva, 10), batch_size=1000, verbose=0)
    test_loss, test_acc = model.evaluate(xte, keras.utils.to_categorical(yte, 10), batch_size=1000, verbose=0)
    print(f"validation accuracy {val_acc:.4f}, test accuracy {test_acc:.4f}", flush=True)

    h5 = out_dir / "fashion_mnist.h5"
    # Without the optimizer state: the file is a third of the size, and fmtool needs only the weights.
    model.save(h5, include_optimizer=False)
    reloaded = keras.models.load_model(h5, compile=False)
    diff = np.abs(reloaded.predict(xte[:1000], verbose=0) - model.predict(xte[:1000], verbose=0)).max()
    print(f"saved {h5.relative_to(REPO) if h5.is_relative_to(REPO) else h5} (reload max |diff| {diff:.2e})",
          flush=True)
    if diff > 1e-5:
        raise RuntimeError("the saved .h5 does not reproduce the model's predictions")

    exporter = export(model, h5, out_dir, use_converter=not args.no_convert)
    template_acc = None
    if not is_cnn:
        xte_u8 = read_idx(find_file(args.data, "t10k-images-idx3-ubyte"))
        template_acc = template_forward_accuracy(out_dir, xte_u8, yte)
        print(f"course template NumPy forward pass: test accuracy {template_acc:.4f}", flush=True)

    write_card(out_dir, args, model, epochs, lr, wd, shift, flip, smoothing, hist.history, fit_s,
               time.time() - t_start, val_acc, test_acc, template_acc, exporter)
    print(f"done in {time.time() - t_start:.0f} s", flush=True)


def write_card(out_dir, args, model, epochs, lr, wd, shift, flip, smoothing, history, fit_s, total_s,
               val_acc, test_acc, template_acc, exporter):
    is_cnn = args.arch == "cnn"
    flops, rows = flops_per_image(model)
    kinds = sorted({type(l).__name__ for l in model.layers})
    best_val = max(history.get("val_accuracy", [0]))
    lines = [
        f"# Fashion-MNIST {'CNN' if is_cnn else 'MLP (course-template compatible)'}: `{model.name}`",
        "",
        f"Trained by `cargo xtask train --arch {args.arch} --epochs {epochs} --seed {args.seed}`"
        + (f" (variant `{args.variant}`)" if is_cnn else "") + " (`xtask/py/train.py`).",
        "",
        "## Results",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| validation accuracy (last {VAL_SIZE} training images, held out; Keras) | {val_acc:.4f} |",
        f"| test accuracy (10,000 test images, evaluated once; Keras `evaluate`) | {test_acc:.4f} |",
    ]
    if template_acc is not None:
        lines.append(f"| test accuracy in the course template's NumPy forward pass (float64, /255, "
                     f"one image at a time) | {template_acc:.4f} |")
    lines += [
        f"| parameters | {model.count_params():,} |",
        f"| FLOPs per image (2 x MACs of conv/dense layers) | {flops:,} ({flops / 1e6:.2f} MFLOP) |",
        f"| epochs | {epochs} |",
        f"| training wall time (`fit`) | {fit_s:.0f} s ({fit_s / epochs:.1f} s/epoch) |",
        f"| total wall time (load, train, evaluate, save, export) | {total_s:.0f} s |",
        "",
        "fmtool score: (filled in by cargo xtask bench)",
        "",
        "## Training",
        "",
        f"- seed: {args.seed} (`keras.utils.set_random_seed`, `tf.config.experimental.enable_op_determinism`)",
        f"- versions: Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"NumPy {np.__version__}",
        f"- machine: {os.cpu_count()} CPU cores, CPU only",
        f"- data: the {60000 - VAL_SIZE:,} first training images for training, the last {VAL_SIZE:,} for "
        "validation (every choice was made on validation accuracy; the test set was only evaluated once, "
        "for this card); inputs are pixels / 255, no other preprocessing",
        f"- augmentation (tf.data, outside the saved model): random horizontal flip: {'yes' if flip else 'no'}, "
        f"random integer shifts of up to ±{shift} px (zero fill)",
        f"- optimizer: AdamW, peak learning rate {lr:g}, weight decay {wd:g} (not on biases / BatchNorm), "
        f"batch {args.batch_size}, linear warmup then cosine decay to 0",
        f"- loss: categorical cross-entropy with label smoothing {smoothing:g}",
        f"- best per-epoch validation accuracy during training: {best_val:.4f} (the shipped weights are the final "
        "ones, not a checkpoint)",
        f"- course export (`fashion_mnist.json` + `fashion_mnist.npz`) written by: {exporter}",
        "",
        "## Architecture",
        "",
        "Input 28x28x1 in [0, 1]. Layer types: " + ", ".join(kinds) + ".",
        "",
        summary_table(model),
        "",
        "FLOPs by layer (2 x MACs):",
        "",
        "| layer | MFLOP |",
        "| --- | --- |",
    ]
    lines += [f"| {n} | {2 * m / 1e6:.3f} |" for n, m in rows]
    lines += ["", "## Per-epoch history", "", "| epoch | loss | accuracy | val_loss | val_accuracy |",
              "| --- | --- | --- | --- | --- |"]
    for i in range(len(history["loss"])):
        lines.append(f"| {i + 1} | {history['loss'][i]:.4f} | {history['accuracy'][i]:.4f} | "
                     f"{history['val_loss'][i]:.4f} | {history['val_accuracy'][i]:.4f} |")
    (out_dir / "README.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out_dir / 'README.md'}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
