"""Writes the fixtures of `fmtool check`'s tests with real Keras and real NumPy, under
tests/fixtures/check/<case>/ (fashion_mnist.json + fashion_mnist.npz each):

  good              the course notebook's export of a small Keras 3 model: Input (784,), Dense(10, softmax)
  float64_fortran   the same weights re-saved as float64, Fortran-ordered (np.asfortranarray)
  object_array      the kernel saved as a NumPy object array (pickled inside the .npy)
  non_npy_member    the good npz with a notes.txt member added to the zip
  int_nan           a kernel with NaN and inf values, a bias cast to int64
  variable_names    arrays saved under Keras variable paths: np.savez(**{w.path: w})
  positional        arrays saved positionally: np.savez(path, *model.get_weights())
  to_json           fashion_mnist.json is model.to_json()
  config_list       fashion_mnist.json is model.get_config()["layers"]

Run with `cargo xtask check-fixtures` (the .venv of `cargo xtask fixtures`, Keras 3 and NumPy).
The model is small and untrained (seeded): these fixtures are about file formats, not accuracy.
"""

import json
import os
import shutil
import sys
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "check")
# The course notebook's export, shared with the other fixture generators.
sys.path.insert(0, os.path.join(ROOT, "tests", "numpy"))
from course import course_export, jsonable  # noqa: E402


def case(name, arch_text, save_npz):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "fashion_mnist.json"), "w") as f:
        f.write(arch_text)
    save_npz(os.path.join(d, "fashion_mnist.npz"))


def main():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax", name="dense")])
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    entries, arrays = course_export(model)
    arch = json.dumps(entries, default=jsonable)
    kernel, bias = arrays["dense_0"], arrays["dense_1"]

    case("good", arch, lambda p: np.savez(p, **arrays))
    case(
        "float64_fortran",
        arch,
        lambda p: np.savez(p, **{k: np.asfortranarray(v.astype(np.float64)) for k, v in arrays.items()}),
    )

    def object_array(p):
        obj = np.empty(1, dtype=object)
        obj[0] = kernel
        np.savez(p, dense_0=obj, dense_1=bias)

    case("object_array", arch, object_array)

    def non_npy(p):
        np.savez(p, **arrays)
        with zipfile.ZipFile(p, "a") as z:
            z.writestr("notes.txt", "trained for 10 epochs\n")

    case("non_npy_member", arch, non_npy)

    def int_nan(p):
        k = kernel.copy()
        k[3, 7] = np.nan
        k[100, 0] = np.inf
        k[200, 1] = np.nan
        np.savez(p, dense_0=k, dense_1=np.round(bias * 100).astype(np.int64))

    case("int_nan", arch, int_nan)
    case("variable_names", arch, lambda p: np.savez(p, **{w.path: np.asarray(w.numpy()) for w in model.weights}))
    case("positional", arch, lambda p: np.savez(p, *model.get_weights()))
    case("to_json", model.to_json(), lambda p: np.savez(p, **arrays))
    case(
        "config_list",
        json.dumps(model.get_config()["layers"], default=jsonable),
        lambda p: np.savez(p, **arrays),
    )
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write(f"keras {keras.__version__}\nnumpy {np.__version__}\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
