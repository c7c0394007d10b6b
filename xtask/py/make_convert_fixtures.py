"""Writes the extra fixtures of `fmtool convert`'s tests into tests/fixtures/convert/ with real Keras.

Run it in the fixtures venv (the one `cargo xtask fixtures` uses):
    .venv/bin/python xtask/py/make_convert_fixtures.py

Cases (keras3: Keras 3 writes model.h5 and model.keras; keras2: tf_keras writes model.h5):
  nested_<writer>/       a functional model around a nested Sequential (with BatchNormalization, so
                         the nested weight group mixes trainable and non-trainable arrays) and a
                         nested functional block with a branch (Add); io.npz holds x and Keras' y
  seq_in_seq_<writer>/   a Sequential whose middle layer is a Sequential; io.npz as above
  shared_<writer>/       one Dense layer called twice (refused)
  two_outputs_<writer>/  a functional model with two outputs (refused)
  unsupported_keras3/    Conv1D and LSTM in a .keras archive (refused)
  not_keras.h5           an HDF5 file written by h5py that is not a Keras model (refused)
Weights are set from a seeded generator (BatchNormalization variances positive), so the outputs
are not those of freshly initialised layers. x is 16 seeded uniform rows of 784 values.
"""

import os
import shutil
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "convert")


def randomize(model, seed):
    rng = np.random.default_rng(seed)
    ws = []
    for w in model.get_weights():
        v = rng.normal(0.0, 0.3, size=w.shape).astype(np.float32)
        ws.append(v)
    # BatchNormalization moving variances must be positive: every "variance" weight.
    names = [w.name for w in model.weights]
    for i, n in enumerate(names):
        if "variance" in n:
            ws[i] = np.abs(ws[i]) + 0.5
    model.set_weights(ws)


def save(model, d, writer, xte, keras_zip=True):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    model.save(os.path.join(d, "model.h5"))
    if writer == "keras3" and keras_zip:
        model.save(os.path.join(d, "model.keras"))
    if xte is not None:
        shape = tuple(model.input_shape[1:])
        y = model.predict(xte.reshape((-1,) + shape), verbose=0)
        np.savez(os.path.join(d, "io.npz"), x=xte, y=np.asarray(y, np.float32), input_shape=np.array(shape, np.int64))


def child(writer):
    if writer == "keras2":
        import tf_keras as k
    else:
        import keras as k
    L = k.layers
    k.utils.set_random_seed(11)
    xte = np.random.default_rng(5).uniform(0, 1, size=(16, 784)).astype(np.float32)

    # A functional model around a nested Sequential and a nested functional block.
    block_a = k.Sequential(
        [k.Input((784,)), L.Dense(24, activation="relu"), L.BatchNormalization(), L.Dense(16, activation="relu")],
        name="block_a",
    )
    bi = k.Input((16,))
    bo = L.Add()([L.Dense(16, activation="relu")(bi), L.Dense(16)(bi)])
    block_b = k.Model(bi, bo, name="block_b")
    inp = k.Input((28, 28))
    out = L.Dense(10, activation="softmax")(block_b(block_a(L.Flatten()(inp))))
    m = k.Model(inp, out)
    randomize(m, 1)
    save(m, os.path.join(OUT, f"nested_{writer}"), writer, xte)

    inner = k.Sequential([L.Dense(20, activation="tanh"), L.Dense(12, activation="relu")], name="middle")
    m = k.Sequential([k.Input((784,)), L.Dense(30, activation="relu"), inner, L.Dense(10, activation="softmax")])
    randomize(m, 2)
    save(m, os.path.join(OUT, f"seq_in_seq_{writer}"), writer, xte)

    i = k.Input((784,))
    shared = L.Dense(8, activation="relu", name="shared")
    h = L.Dense(8, activation="relu")(i)
    m = k.Model(i, L.Dense(10, activation="softmax")(shared(shared(h))))
    save(m, os.path.join(OUT, f"shared_{writer}"), writer, None, keras_zip=False)

    i = k.Input((784,))
    h = L.Dense(8, activation="relu")(i)
    m = k.Model(i, [L.Dense(10, activation="softmax")(h), L.Dense(1)(h)])
    save(m, os.path.join(OUT, f"two_outputs_{writer}"), writer, None, keras_zip=False)

    if writer == "keras3":
        m = k.Sequential([k.Input((28, 28)), L.Conv1D(4, 3), L.LSTM(4), L.Dense(10, activation="softmax")])
        d = os.path.join(OUT, "unsupported_keras3")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        m.save(os.path.join(d, "model.keras"))


def not_keras():
    import h5py

    with h5py.File(os.path.join(OUT, "not_keras.h5"), "w") as f:
        f.attrs["title"] = "measurements"
        f.create_dataset("images", data=np.arange(12, dtype=np.float32).reshape(3, 4))
        f.create_group("run1").create_dataset("labels", data=np.arange(3))


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    os.makedirs(OUT, exist_ok=True)
    for w in ["keras3", "keras2"]:
        # Keras 3 and tf_keras cannot share a process (TF_USE_LEGACY_KERAS is read at import).
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1" if w == "keras2" else "0")
        subprocess.run([sys.executable, __file__, "--child", w], env=env, check=True)
    not_keras()


if __name__ == "__main__":
    main()
