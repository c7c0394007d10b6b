"""Fixtures for `fmtool convert --for-template`: `cargo xtask template-fixtures`.

MLPs with the layers the course template skips (BatchNormalization before and after a Dense,
Dropout, GaussianNoise, ActivityRegularization, Activation/ReLU/Softmax layers, Rescaling,
Normalization adapted on data, a Reshape input), built, trained for two epochs on 10,000 training
images and saved as model.h5 by real Keras: Keras 3 (`import keras`, writer keras3) and tf_keras
(`import tf_keras as keras`, writer keras2), each in its own process (they cannot share one). Beside
each model, io.npz holds what Keras itself computes on the test images (x / 255, float32): the
predicted class of all 10,000 (`predictions`, uint8) and the outputs of the first 1,000
(`outputs`). tests/fixtures/for_template/README.md records the versions.
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "numpy"))
OUT = os.path.join(ROOT, "tests", "fixtures", "for_template")
DATA = os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
SEED = 11
N_TRAIN = 10000
N_OUTPUTS = 1000
CASES = ["bn_after_dense", "bn_before_dense", "rescaling", "normalization", "reshape_input"]


def build(k, case, xtr):
    L = k.layers
    if case == "bn_after_dense":
        # Dense without activation, BatchNormalization, then the activation as its own layer.
        return k.Sequential(
            [
                L.Input((28, 28)),
                L.Flatten(),
                L.Dense(64),
                L.BatchNormalization(),
                L.Activation("relu"),
                L.Dropout(0.3),
                L.Dense(10, activation="softmax"),
            ]
        )
    if case == "bn_before_dense":
        # BatchNormalization on the pixels and after a relu Dense; softmax as a layer.
        return k.Sequential(
            [
                L.Input((28, 28)),
                L.BatchNormalization(),
                L.Flatten(),
                L.Dense(48, activation="relu"),
                L.BatchNormalization(),
                L.GaussianNoise(0.1),
                L.Dense(10),
                L.Activation("softmax"),
            ]
        )
    if case == "rescaling":
        return k.Sequential(
            [
                L.Input((28, 28)),
                L.Rescaling(2.0, offset=-1.0),
                L.Flatten(),
                L.Dense(32, activation="relu"),
                L.ActivityRegularization(l2=1e-5),
                L.Dense(10, activation="softmax"),
            ]
        )
    if case == "normalization":
        norm = L.Normalization(axis=-1)
        norm.adapt(xtr.reshape(-1, 28, 28))
        return k.Sequential(
            [
                L.Input((28, 28)),
                norm,
                L.Flatten(),
                L.Dense(32),
                L.ReLU(),
                L.Dense(10),
                L.Softmax(),
            ]
        )
    if case == "reshape_input":
        return k.Sequential(
            [
                L.Input((784,)),
                L.Reshape((28, 28, 1)),
                L.Flatten(),
                L.Dense(32, activation="relu"),
                L.Dropout(0.2),
                L.Dense(10, activation="softmax"),
            ]
        )
    raise ValueError(case)


def child(writer):
    import numpy as np

    if writer == "keras2":
        import tf_keras as k
    else:
        import keras as k
    from course import IMAGES_MAGIC, LABELS_MAGIC, load_idx

    k.utils.set_random_seed(SEED)
    xtr = load_idx(f"{DATA}/train-images-idx3-ubyte.gz", IMAGES_MAGIC)[:N_TRAIN].astype(np.float32) / 255.0
    ytr = load_idx(f"{DATA}/train-labels-idx1-ubyte.gz", LABELS_MAGIC)[:N_TRAIN].astype(np.int64)
    xte = load_idx(f"{DATA}/t10k-images-idx3-ubyte.gz", IMAGES_MAGIC).astype(np.float32) / 255.0
    versions = {}
    for case in CASES:
        model = build(k, case, xtr)
        shape = (-1, 784) if case == "reshape_input" else (-1, 28, 28)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(xtr.reshape(shape), ytr, epochs=2, batch_size=128, verbose=0)
        d = os.path.join(OUT, f"{case}_{writer}")
        os.makedirs(d, exist_ok=True)
        # Without the optimizer's state: half the file, and nothing fmtool reads.
        model.save(os.path.join(d, "model.h5"), include_optimizer=False)
        out = model.predict(xte.reshape(shape), batch_size=1000, verbose=0).astype(np.float32)
        np.savez(os.path.join(d, "io.npz"), predictions=out.argmax(1).astype(np.uint8), outputs=out[:N_OUTPUTS])
        versions[case] = [layer.__class__.__name__ for layer in model.layers]
    import tensorflow as tf

    print(json.dumps({"writer": writer, "keras": k.__version__, "tensorflow": tf.__version__, "layers": versions}))


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    lines = ["# `fmtool convert --for-template` fixtures", "", __doc__.strip(), ""]
    for writer in ("keras3", "keras2"):
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1" if writer == "keras2" else "0", TF_CPP_MIN_LOG_LEVEL="3")
        out = subprocess.run(
            [sys.executable, __file__, "--child", writer], env=env, capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            sys.exit(out.stderr)
        info = json.loads(out.stdout.strip().splitlines()[-1])
        lines.append(f"- `*_{writer}/`: Keras {info['keras']} (TensorFlow {info['tensorflow']})")
        for case, layers in info["layers"].items():
            lines.append(f"  - `{case}_{writer}`: {', '.join(layers)}")
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
