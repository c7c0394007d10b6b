"""Trains the shipped models with real Keras: `cargo xtask train [--arch distilled|ensemble|cnn|mlp]
[--towers R:S,...] [--mirror|--no-mirror] [--epochs N] [--seed S] [--data DIR] [--threads N] [--tower I]
[--teacher DIR] [--teacher-weight W] [--views K]`.

Trains on the full Fashion-MNIST training set minus a validation split (the last 5,000 training
images; the test set is never used for any decision), saves the Keras model as `.h5`, converts it
with `fmtool convert` (falling back to the course notebook's own export when fmtool cannot), and
writes a model card. The distilled CNN (the default model) goes to model/, the ensemble that
teaches it to model/ensemble/, the course-template-compatible MLP to model/classic/.

`--arch distilled` (the default) trains one CNN tower (about 30 MFLOP per image, a sixth of the
ensemble) on soft targets: the teacher's (by default the ensemble in model/ensemble/) class
probabilities, mixed with the one-hot labels (`--teacher-weight` of the teacher, the rest the
label). With `--views K` (default 8) the training images are fixed in K views each (the image, and
copies shifted by up to 2 px, half of them with a rectangle erased), the teacher's outputs on every
view are computed by `fmtool predict` and cached in target/distill/, and each epoch the student
sees every image in one view drawn at random, with the teacher's outputs on that very view (its
targets match what it sees). With `--views 1` the teacher's outputs on the plain images
(`fmtool predict --split train`) go with random shifts and flips. The teacher averages over the
image and its mirror image, so its targets hold for the flipped images too.

`--arch ensemble` (the teacher) trains the CNN towers that `--towers` lists as
recipe:seed pairs and averages their class probabilities in one functional model (Keras' Average
layer), which fmtool runs like any other. With `--mirror` (the default) every tower also sees the
image mirrored left to right (a fixed 1x28 Conv2D that reverses each row, then a Permute), and
the average is taken over both views. Trained towers are cached in target/towers/ under a name
that carries the recipe, seed and epochs, so the towers can train side by side on a 2-core
machine and be put together afterwards: `train --tower 0 --threads 1 & train --tower 1
--threads 1; wait; train`.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np  # noqa: E402

# The CNN's training recipes, part of the tower cache's file names. r1: random shifts and flips;
# r2 adds random erasing and label smoothing 0.1.
RECIPES = {"r1": {"erase": False, "smoothing": 0.0}, "r2": {"erase": True, "smoothing": 0.1}}
# The shipped ensemble's towers (recipe:seed), and the mirrored second view of each.
SHIPPED_TOWERS = "r1:20261124,r2:20261124,r2:20261125"

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The IDX reader, the course notebook's export and the course template's forward pass, shared with the
# cross-check tests.
sys.path.insert(0, os.path.join(ROOT, "tests", "numpy"))
from course import course_export, load_export, load_idx, template_outputs, write_export  # noqa: E402


def cnn_tower(keras, inp, prefix=""):
    """The CNN's layers applied to `inp`; returns the output tensor. Layer names get `prefix`."""
    L = keras.layers
    n = {"i": 0}

    def name(kind):
        if not prefix:
            return None
        n["i"] += 1
        return f"{prefix}{kind}_{n['i']}"

    def block(x, filters):
        x = L.Conv2D(filters, 3, padding="same", use_bias=False, name=name("conv"))(x)
        x = L.BatchNormalization(name=name("bn"))(x)
        return L.ReLU(name=name("relu"))(x)

    x = block(inp, 32)
    x = L.MaxPooling2D(2, name=name("pool"))(x)
    x = block(x, 64)
    x = block(x, 64)
    x = L.MaxPooling2D(2, name=name("pool"))(x)
    x = block(x, 128)
    x = L.MaxPooling2D(2, name=name("pool"))(x)
    x = L.Flatten(name=name("flatten"))(x)
    x = L.Dropout(0.3, name=name("dropout"))(x)
    x = L.Dense(256, use_bias=False, name=name("dense"))(x)
    x = L.BatchNormalization(name=name("bn"))(x)
    x = L.ReLU(name=name("relu"))(x)
    x = L.Dropout(0.4, name=name("dropout"))(x)
    return L.Dense(10, activation="softmax", name=name("scores"))(x)


def build_cnn(keras):
    inp = keras.Input((28, 28, 1), name="image")
    return keras.Model(inp, cnn_tower(keras, inp), name="fashion_cnn")


def mirror(keras, inp):
    """The image mirrored left to right, exactly: a fixed Conv2D with a 1x28 kernel whose output
    channel j picks column 27 - j (weights 0 and 1, so every value is copied bit for bit), then a
    Permute back to (28, 28, 1)."""
    conv = keras.layers.Conv2D(28, (1, 28), use_bias=False, trainable=False, name="mirror")
    x = conv(inp)  # (28, 1, 28): row r, channel j = pixel (r, 27 - j)
    kernel = np.zeros((1, 28, 1, 28), np.float32)
    kernel[0, 27 - np.arange(28), 0, np.arange(28)] = 1.0
    conv.set_weights([kernel])
    return keras.layers.Permute((1, 3, 2), name="mirror_rows")(x)


def build_ensemble(keras, towers, mirrored):
    """One functional model averaging the towers' class probabilities (over the image and, with
    `mirrored`, its mirror image); weights copied from the trained towers."""
    inp = keras.Input((28, 28, 1), name="image")
    views = [("", inp)]
    if mirrored:
        views.append(("m", mirror(keras, inp)))
    outs = [cnn_tower(keras, x, prefix=f"t{i}{v}_") for i in range(len(towers)) for v, x in views]
    name = "fashion_cnn_ensemble" + ("_mirrored" if mirrored else "")
    model = keras.Model(inp, keras.layers.Average(name="ensemble")(outs), name=name)
    for i, tower in enumerate(towers):
        old_layers = [layer for layer in tower.layers if type(layer).__name__ != "InputLayer"]
        for v, _ in views:
            # Tower i's layers are named t{i}{v}_{kind}_{n}, n counting in the order cnn_tower made
            # them, which is the order of the saved tower's own layers (a chain). Keras 3 lists the
            # towers' layers interleaved in model.layers, so they are matched by name, not position.
            mine = [layer for layer in model.layers if layer.name.startswith(f"t{i}{v}_")]
            new_layers = sorted(mine, key=lambda layer: int(layer.name.rsplit("_", 1)[1]))
            assert len(new_layers) == len(old_layers), (len(new_layers), len(old_layers))
            for new, old in zip(new_layers, old_layers):
                assert type(new) is type(old), (new, old)
                new.set_weights(old.get_weights())
    return model


def describe_recipe(r):
    return (
        "random shifts of up to 2 px, horizontal flips"
        + (", random erasing (p = 0.5, 4 to 12 px a side)" if RECIPES[r]["erase"] else "")
        + (f", label smoothing {RECIPES[r]['smoothing']}" if RECIPES[r]["smoothing"] else "")
    )


def outs_of(model):
    """The tensors the ensemble's Average layer averages."""
    return model.get_layer("ensemble").input


def build_mlp(keras):
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            L.Flatten(),
            L.Dense(1024, activation="relu"),
            L.Dropout(0.3),
            L.Dense(512, activation="relu"),
            L.Dropout(0.3),
            L.Dense(10, activation="softmax"),
        ],
        name="fashion_mlp",
    )


def flops_per_image(model):
    total = 0
    for layer in model.layers:
        name = type(layer).__name__
        if name == "Dense" and layer.kernel is not None:
            total += 2 * int(np.prod(layer.kernel.shape))
        elif name == "Conv2D":
            oh, ow = layer.output.shape[1:3]
            total += 2 * int(np.prod(layer.kernel.shape)) * oh * ow
    return total


def augment(tf, x, y, flips, erase):
    # Random shifts of up to 2 pixels (pad, then crop back), optionally horizontal flips and, for
    # the CNN, random erasing: with probability 1/2 a rectangle of 4 to 12 pixels a side is set to 0.
    x = tf.pad(x, [[2, 2], [2, 2], [0, 0]])
    x = tf.image.random_crop(x, (28, 28, 1))
    if flips:
        x = tf.image.random_flip_left_right(x)
    if erase:
        h = tf.random.uniform((), 4, 13, dtype=tf.int32)
        w = tf.random.uniform((), 4, 13, dtype=tf.int32)
        top = tf.random.uniform((), 0, 28 - h + 1, dtype=tf.int32)
        left = tf.random.uniform((), 0, 28 - w + 1, dtype=tf.int32)
        rows = tf.range(28)[:, None]
        cols = tf.range(28)[None, :]
        inside = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
        inside &= tf.random.uniform(()) < 0.5
        x = tf.where(inside[..., None], tf.zeros_like(x), x)
    return x, y


def teacher_outputs(teacher, data):
    """The teacher's (N, 10) outputs on the 60,000 training images, by `fmtool predict --split train`,
    cached in target/distill/ under a name carrying a hash of the teacher's weights."""
    import hashlib

    with open(os.path.join(ROOT, teacher, "fashion_mnist.npz"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    cache = os.path.join(ROOT, "target", "distill")
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"teacher-{digest}-train.npy")
    if not os.path.exists(path):
        cmd = ["cargo", "run", "--release", "-q", "--", "predict", "--model", teacher, "--data", data]
        subprocess.run(cmd + ["--split", "train", "--out", path + ".part.npy", "--force"], cwd=ROOT, check=True)
        os.replace(path + ".part.npy", path)
    return np.load(path)


def make_views(x, k, seed):
    """`k` views of each image in `x` (N, 28, 28) uint8, as (k, N, 28, 28): view 0 is the image itself;
    the others are shifted by up to 2 px (zeros enter at the edge, as `augment` pads) and, with
    probability 1/2, have a rectangle of 4 to 12 px a side set to 0. Deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    n = len(x)
    views = np.empty((k, n, 28, 28), np.uint8)
    views[0] = x
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    rows = np.arange(28)[None, :, None]
    cols = np.arange(28)[None, None, :]
    for v in range(1, k):
        dy, dx = rng.integers(0, 5, n), rng.integers(0, 5, n)
        idx_r = dy[:, None, None] + rows
        idx_c = dx[:, None, None] + cols
        out = padded[np.arange(n)[:, None, None], idx_r, idx_c]
        h, w = rng.integers(4, 13, n), rng.integers(4, 13, n)
        top, left = rng.integers(0, 29 - h), rng.integers(0, 29 - w)
        erase = rng.random(n) < 0.5
        inside = (
            (rows >= top[:, None, None])
            & (rows < (top + h)[:, None, None])
            & (cols >= left[:, None, None])
            & (cols < (left + w)[:, None, None])
            & erase[:, None, None]
        )
        out[inside] = 0
        views[v] = out
    return views


def write_idx(path, a):
    """`a` as an uncompressed IDX file (unsigned bytes), the format fmtool reads."""
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, a.ndim]))
        for d in a.shape:
            f.write(int(d).to_bytes(4, "big"))
        f.write(np.ascontiguousarray(a, np.uint8).tobytes())


def teacher_view_outputs(teacher, views, labels):
    """The teacher's (k, N, 10) outputs on every view (see `make_views`), by `fmtool predict` on IDX
    files of the views, one view at a time; cached in target/distill/ under a name carrying a hash of
    the teacher's weights and of the views."""
    import hashlib
    import tempfile

    with open(os.path.join(ROOT, teacher, "fashion_mnist.npz"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    vdigest = hashlib.sha256(views.tobytes()).hexdigest()[:16]
    cache = os.path.join(ROOT, "target", "distill")
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"teacher-{digest}-views-{vdigest}.npy")
    if not os.path.exists(path):
        outs = []
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            write_idx(os.path.join(tmp, "train-labels-idx1-ubyte"), labels)
            for v, view in enumerate(views):
                write_idx(os.path.join(tmp, "train-images-idx3-ubyte"), view)
                out = os.path.join(tmp, f"view{v}.npy")
                cmd = ["cargo", "run", "--release", "-q", "--", "predict", "--model", teacher, "--data", tmp]
                subprocess.run(cmd + ["--split", "train", "--out", out], cwd=ROOT, check=True)
                outs.append(np.load(out))
                print(f"teacher: view {v + 1} of {len(views)}", flush=True)
        np.save(path + ".part.npy", np.stack(outs))
        os.replace(path + ".part.npy", path)
    return np.load(path)


def teacher_card_title(teacher):
    with open(os.path.join(ROOT, teacher, "README.md")) as f:
        return f.readline().lstrip("# ").strip()


def template_accuracy(out_dir, x_test, y_test):
    """The course template's NumPy pass: float64, one image at a time, Flatten and Dense only."""
    arch, w = load_export(out_dir)
    x = x_test.reshape(-1, 784).astype(np.float64) / 255.0
    return float(np.mean(np.argmax(template_outputs(arch, w, x), axis=1) == y_test))


def main():
    ap = argparse.ArgumentParser()
    # The default is the shipped model: model/ holds the distilled CNN, taught by the ensemble of
    # SHIPPED_TOWERS (mirrored) in model/ensemble/.
    ap.add_argument("--arch", choices=["ensemble", "distilled", "cnn", "mlp"], default="distilled")
    ap.add_argument(
        "--towers",
        default=SHIPPED_TOWERS,
        help="with --arch ensemble: the CNN towers averaged, as recipe:seed pairs (recipes: %s; default %%(default)s)"
        % ", ".join(RECIPES),
    )
    ap.add_argument(
        "--mirror",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --arch ensemble: average over the image and its mirror image (default: on)",
    )
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--subset", type=int, default=None, help="train on the first N images (pilot runs)")
    ap.add_argument("--threads", type=int, default=None, help="TensorFlow threads (default: all cores)")
    ap.add_argument(
        "--tower",
        type=int,
        default=None,
        help="with --arch ensemble: train (and cache) only tower I of --towers, then stop; lets towers train in parallel",
    )
    ap.add_argument(
        "--teacher",
        default="model/ensemble",
        help="with --arch distilled: the teacher model folder (default %(default)s)",
    )
    ap.add_argument(
        "--teacher-weight",
        type=float,
        default=0.75,
        help="with --arch distilled: the teacher's share of each target, the label's is the rest (default %(default)s)",
    )
    ap.add_argument(
        "--views",
        type=int,
        default=8,
        help="with --arch distilled: K > 1 fixes K views of each training image (the image, then shifted and "
        "partly erased copies) and takes the teacher's outputs on each view, so that the student's targets "
        "match what it sees (default %(default)s); 1: the teacher's outputs on the images themselves, with random "
        "shifts and flips",
    )
    args = ap.parse_args()
    # The distilled CNN learns from its teacher for longer (80 epochs) than the towers did (40):
    # 80 reached validation 0.9494 where 60 reached 0.9470 (same recipe and seed).
    epochs = args.epochs or (80 if args.arch == "distilled" else 40)
    try:
        specs = [(r, int(s)) for r, s in (t.split(":") for t in args.towers.split(","))]
        assert all(r in RECIPES for r, _ in specs)
    except (ValueError, AssertionError):
        ap.error(
            f"--towers {args.towers!r}: expected recipe:seed pairs such as r2:20261124, recipes {', '.join(RECIPES)}"
        )
    if args.tower is not None and not 0 <= args.tower < len(specs):
        ap.error(f"--tower {args.tower}: --towers lists {len(specs)} towers (0 to {len(specs) - 1})")

    import keras
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    keras.utils.set_random_seed(args.seed)
    x_all = load_idx(f"{args.data}/train-images-idx3-ubyte.gz")
    y_all = load_idx(f"{args.data}/train-labels-idx1-ubyte.gz").astype(np.int64)
    x_test = load_idx(f"{args.data}/t10k-images-idx3-ubyte.gz")
    y_test = load_idx(f"{args.data}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    x_train, y_train = x_all[:-5000], y_all[:-5000]
    x_val, y_val = x_all[-5000:], y_all[-5000:]
    if args.subset:
        x_train, y_train = x_train[: args.subset], y_train[: args.subset]

    def prep(x):
        return (x.astype(np.float32) / 255.0)[..., None]

    batch = 128
    curve = []  # (epoch, validation accuracy, test accuracy, seconds since the start), distilled only

    def train(arch, seed, recipe="r2", targets=None, views=None):
        """`targets`: the training images' soft targets (distillation); one-hot labels when None.
        `views`: the training images in k views, (k, N, 28, 28), with `targets` (k, N, 10) the targets
        of each view; each epoch then takes every image in one view drawn at random, flipped at random
        (the teacher's outputs do not change under a flip), in an order drawn at random."""
        keras.utils.set_random_seed(seed)
        model = build_cnn(keras) if arch == "cnn" else build_mlp(keras)
        steps = int(np.ceil(len(x_train) / batch)) * epochs
        schedule = keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps, alpha=0.02, warmup_target=None)
        # Recipe r2's CNN learns from one-hot labels smoothed by 0.1 (it generalizes better for
        # this data set); the MLP keeps plain labels, as it was trained for model/classic.
        smoothing = 0.0 if arch == "mlp" else RECIPES[recipe]["smoothing"]
        model.compile(
            optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
        onehot = np.eye(10, dtype=np.float32)
        y_fit = onehot[y_train] if targets is None else targets
        # With `views`, each epoch makes its own dataset (below).
        ds = tf.data.Dataset.from_tensor_slices((prep(x_train), y_fit if views is None else onehot[y_train]))
        ds = ds.shuffle(60000, seed=seed)
        if arch != "mlp":
            # The MLP sees every image as it is: shifted images hurt a model without convolutions.
            ds = ds.map(
                lambda x, y: augment(tf, x, y, flips=True, erase=RECIPES[recipe]["erase"]), num_parallel_calls=2
            )
        ds = ds.batch(batch).prefetch(2)
        val = (prep(x_val), onehot[y_val])
        if arch == "mlp":
            val = (val[0][..., 0], val[1])
            ds = ds.map(lambda x, y: (x[..., 0], y))
        callbacks = []
        if targets is not None:
            # The accuracy curve for the model card: the test accuracy after each epoch is reported
            # only (no choice is made from it; training always runs all the epochs).
            xt = prep(x_test)

            class Curve(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    acc = float(
                        np.mean(np.argmax(self.model.predict(xt, verbose=0, batch_size=1000), axis=1) == y_test)
                    )
                    curve.append((epoch + 1, float(logs["val_accuracy"]), acc, time.time() - start))
                    print(f"epoch {epoch + 1}: validation {logs['val_accuracy']:.4f}, test {acc:.4f} (reported only)")

            callbacks.append(Curve())
        start = time.time()
        if views is None:
            hist = model.fit(ds, validation_data=val, epochs=epochs, verbose=2, callbacks=callbacks)
            return model, float(hist.history["val_accuracy"][-1]), time.time() - start
        rng = np.random.default_rng(seed)
        n = views.shape[1]
        for e in range(epochs):
            pick, order = rng.integers(0, len(views), n), rng.permutation(n)
            x, t = views[pick, np.arange(n)][order], targets[pick, np.arange(n)][order]
            flip = rng.random(n) < 0.5
            x[flip] = x[flip, :, ::-1]
            ds = tf.data.Dataset.from_tensor_slices((x[..., None], t)).batch(batch)
            ds = ds.map(lambda x, t: (tf.cast(x, tf.float32) / 255.0, t)).prefetch(2)
            hist = model.fit(ds, validation_data=val, initial_epoch=e, epochs=e + 1, verbose=2, callbacks=callbacks)
        return model, float(hist.history["val_accuracy"][-1]), time.time() - start

    teacher_note = ""
    if args.arch == "distilled":
        teacher = teacher_outputs(args.teacher, args.data)[: len(x_all) - 5000]
        if args.subset:
            teacher = teacher[: args.subset]
        agree = float(np.mean(np.argmax(teacher, axis=1) == y_train))
        onehot = np.eye(10, dtype=np.float32)[y_train]
        if args.views > 1:
            xv = make_views(x_train, args.views, args.seed)
            tv = teacher_view_outputs(args.teacher, xv, y_train)
            targets = (args.teacher_weight * tv + (1 - args.teacher_weight) * onehot[None]).astype(np.float32)
            model, val_acc, wall = train("cnn", args.seed, "r1", targets, views=xv)
        else:
            targets = (args.teacher_weight * teacher + (1 - args.teacher_weight) * onehot).astype(np.float32)
            model, val_acc, wall = train("cnn", args.seed, "r1", targets)
        teacher_note = (
            f"- teacher: {args.teacher} ({teacher_card_title(args.teacher)}); its outputs on the training images "
            f"(`fmtool predict --split train`) agree with the labels on {agree:.4f} of them\n"
        )
        tower_notes = []
    elif args.arch == "ensemble":
        # Each tower is a full CNN trained on its own seed; trained towers are cached in
        # target/towers/ so that adding a tower does not retrain the others.
        # The file name carries the recipe, so a changed recipe never reuses an old tower.
        towers, wall, tower_notes = [], 0.0, []
        cache = os.path.join(ROOT, "target", "towers")
        os.makedirs(cache, exist_ok=True)
        wanted = range(len(specs)) if args.tower is None else [args.tower]
        for i in wanted:
            recipe, seed = specs[i]
            path = os.path.join(cache, f"cnn-{recipe}-s{seed}-e{epochs}.h5")
            if not os.path.exists(path):
                m, v, w = train("cnn", seed, recipe)
                m.save(path + ".part.h5", include_optimizer=False)
                os.replace(path + ".part.h5", path)
                meta = {"seed": seed, "epochs": epochs, "wall_s": w, "val_accuracy": v}
                meta["threads"] = args.threads or os.cpu_count()
                with open(path + ".json", "w") as f:
                    json.dump(meta, f)
            towers.append(keras.models.load_model(path, compile=False))
            with open(path + ".json") as f:
                meta = json.load(f)
            wall += meta["wall_s"]
            tower_notes.append(
                f"tower {i}: recipe {recipe}, seed {meta['seed']}, validation accuracy {meta['val_accuracy']:.4f}, "
                f"trained in {meta['wall_s']:.0f} s on {meta['threads']} thread(s)"
            )
        if args.tower is not None:
            print(f"cached in {cache}: {tower_notes[0]}")
            return 0
        model = build_ensemble(keras, towers, args.mirror)
        val_acc = float(np.mean(np.argmax(model.predict(prep(x_val), verbose=0, batch_size=512), axis=1) == y_val))
        test_towers = [
            float(np.mean(np.argmax(t.predict(prep(x_test), verbose=0, batch_size=512), axis=1) == y_test))
            for t in towers
        ]
        tower_notes = [f"{n}; test accuracy {a:.4f} (reported only)" for n, a in zip(tower_notes, test_towers)]
    else:
        model, val_acc, wall = train(args.arch, args.seed)
        tower_notes = []

    out_dir = os.path.join(ROOT, {"mlp": "model/classic", "ensemble": "model/ensemble"}.get(args.arch, "model"))
    os.makedirs(out_dir, exist_ok=True)
    h5 = os.path.join(out_dir, "fashion_mnist.h5")
    # Without the optimizer state: the file is a third of the size, and fmtool needs only the weights.
    model.save(h5, include_optimizer=False)
    xt = prep(x_test)[..., 0] if args.arch == "mlp" else prep(x_test)
    test_acc = float(np.mean(np.argmax(model.predict(xt, verbose=0, batch_size=512), axis=1) == y_test))

    converter = "fmtool convert"
    r = subprocess.run(["cargo", "run", "--release", "-q", "--", "convert", h5, "--out", out_dir, "--force"], cwd=ROOT)
    if r.returncode != 0:
        converter = "the course notebook's export (fmtool convert failed)"
        write_export(out_dir, *course_export(model))
    print(f"exported with {converter}")
    extra = ""
    if args.arch == "mlp":
        extra = f"- course template NumPy pass (float64, one image at a time): test accuracy {template_accuracy(out_dir, x_test, y_test):.4f}\n"

    if args.arch == "ensemble":
        views = "the image and its mirror image" if args.mirror else "the image"
        title = f"CNN ensemble: {len(specs)} towers averaged over {views}"
        towers_arg = f" --towers {args.towers}" + ("" if args.mirror else " --no-mirror")
        recipes = "; ".join(f"{r}: {describe_recipe(r)}" for r in sorted({r for r, _ in specs}))
        training = f"recipes ({recipes}); "
    elif args.arch == "distilled":
        title = "Distilled CNN: one tower taught by the ensemble"
        towers_arg = f" --teacher {args.teacher} --teacher-weight {args.teacher_weight}" + (
            f" --views {args.views}" if args.views > 1 else ""
        )
        seen = (
            f"{args.views} fixed views of each image (the image, and {args.views - 1} copies shifted by up to 2 px, "
            "half of them with a 4 to 12 px rectangle erased), one drawn at random each epoch and flipped at "
            "random; targets: the teacher's probabilities on that view"
            if args.views > 1
            else f"{describe_recipe('r1')}; targets: the teacher's probabilities"
        )
        training = f"{seen} x {args.teacher_weight} + {1 - args.teacher_weight:.2f} x the one-hot label; "
    else:
        title = {"cnn": "Shipped CNN", "mlp": "Course-template-compatible MLP"}[args.arch]
        towers_arg = ""
        training = "no augmentation; " if args.arch == "mlp" else f"recipe r2 ({describe_recipe('r2')}); "
    intro = ""
    if args.arch == "ensemble":
        intro = "The teacher of the default model in model/ (`cargo xtask train --arch distilled`).\n\n"
    elif args.arch == "distilled":
        # Issue 16's bar for the default: a test accuracy of 0.945, or of 0.94 at least. The
        # script writes model/ either way; the card says where this network stands, and whether
        # it is committed is a person's decision (the test set never steers training).
        verdict = (
            "reaches the 0.94 a default needs (the goal is 0.945)."
            if test_acc >= 0.94
            else "falls short of the 0.94 a default needs (the goal is 0.945): do not commit it over model/."
        )
        intro = (
            f"The default model: one CNN of {flops_per_image(model) / 1e6:.0f} MFLOP per image, a sixth of the cost of the\n"
            f"ensemble in model/ensemble/ that taught it. Its test accuracy, {test_acc:.4f}, {verdict}\n\n"
        )
    card = f"""# {title} ({model.name})

{intro}Trained by `cargo xtask train --arch {args.arch}{towers_arg} --epochs {epochs} --seed {args.seed}`.

- versions: TensorFlow {tf.__version__}, Keras {keras.__version__}, NumPy {np.__version__}, Python {platform.python_version()}
- data: Fashion-MNIST training set, first 55,000 images for training, last 5,000 for validation{f" (subset {args.subset})" if args.subset else ""}
- training: {training}cross-entropy; optimizer: AdamW (weight decay 1e-4), cosine decay from 2e-3 over {epochs} epochs, batch {batch}
- parameters: {model.count_params():,}; FLOPs per image (2 x multiply-adds of Conv2D/Dense): {flops_per_image(model):,}
- training wall time: {wall:.0f} s on this machine ({os.cpu_count()} cores){", the sum of the towers (each line below says how many threads it had)" if args.arch == "ensemble" else ""}
{"".join(f"- {t}{chr(10)}" for t in tower_notes) if args.arch == "ensemble" else ""}{teacher_note}- validation accuracy (Keras): {val_acc:.4f}
- test accuracy (Keras predict, reported only; never used for choices): {test_acc:.4f}
{extra}- exported with {converter}
- fmtool score: (filled in by cargo xtask bench)

"""
    lines = []
    if args.arch == "ensemble":
        card += (
            "Each tower is the CNN below; the ensemble runs every tower on " + views + " (the mirror:\n"
            "a fixed 1x28 Conv2D `mirror` and a Permute `mirror_rows`) and averages the "
            f"{len(outs_of(model))} softmax outputs in the Average layer `ensemble`. One tower:\n\n```\n"
        )
        towers[0].summary(print_fn=lambda s, **_: lines.append(s))
    else:
        card += "Architecture:\n\n```\n"
        model.summary(print_fn=lambda s, **_: lines.append(s))
    card += "\n".join(lines) + "\n```\n"
    if curve:
        card += (
            "\nAccuracy after each epoch (Keras; the test column is reported only, never used for a choice):\n\n"
            "| epoch | validation | test | seconds |\n|---:|---:|---:|---:|\n"
            + "".join(f"| {e} | {v:.4f} | {t:.4f} | {w:.0f} |\n" for e, v, t, w in curve)
        )
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write(card)
    print(card)


if __name__ == "__main__":
    sys.exit(main())
