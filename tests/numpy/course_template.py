"""The course's NumPy forward pass, as the autograder runs it, for fmtool's cross-check tests.

Usage: python course_template.py MODEL_DIR DATA_DIR OUT.npz [--batched]
       python course_template.py MODEL_DIR DATA_DIR OUT.json --model-test

Reads MODEL_DIR/fashion_mnist.json + .npz with json.load / numpy.load, the test set from
DATA_DIR/t10k-*-ubyte.gz, feeds every image one at a time as a float64 (1, 784) row divided by 255
through the template's nn_forward_h5 (Flatten and Dense with relu/softmax only; every other layer
type is silently skipped), and saves `predictions` (argmax per image) and `outputs` (N, 10).
With --batched it instead runs a float32 NumPy pass over all images at once (for the speed
comparison); the arithmetic is the same.
With --model-test it runs model_test.py's test_inference instead (np.array of the per-image outputs,
outputs.squeeze(axis=1), argmax, without the shuffle, which does not change the accuracy) and writes
{"accuracy": float or null, "error": "ExceptionType: message" or null} to OUT.json: what the
grader prints when the model crashes.
"""

import gzip
import json
import sys

import numpy as np


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


def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def model_test(model_dir, data_dir, out):
    acc, error = None, None
    try:
        images = load_idx(f"{data_dir}/t10k-images-idx3-ubyte.gz").reshape(-1, 784)
        labels = load_idx(f"{data_dir}/t10k-labels-idx1-ubyte.gz")
        weights = np.load(f"{model_dir}/fashion_mnist.npz")
        with open(f"{model_dir}/fashion_mnist.json") as f:
            arch = json.load(f)
        normalized = images / 255.0
        outputs = np.array([nn_forward_h5(arch, weights, np.expand_dims(img, axis=0)) for img in normalized])
        predictions = np.argmax(outputs.squeeze(axis=1), axis=-1)
        acc = float(np.sum(predictions == labels) / len(labels))
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
    with open(out, "w") as f:
        json.dump({"accuracy": acc, "error": error}, f)


def main():
    model_dir, data_dir, out = sys.argv[1:4]
    if "--model-test" in sys.argv[4:]:
        model_test(model_dir, data_dir, out)
        return
    batched = "--batched" in sys.argv[4:]
    with open(f"{model_dir}/fashion_mnist.json") as f:
        arch = json.load(f)
    weights = np.load(f"{model_dir}/fashion_mnist.npz", allow_pickle=False)
    images = load_idx(f"{data_dir}/t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float64) / 255.0
    if batched:
        outputs = nn_forward_h5(arch, {k: weights[k] for k in weights.files}, images.astype(np.float32))
    else:
        outputs = np.concatenate([nn_forward_h5(arch, weights, images[i : i + 1]) for i in range(len(images))])
    np.savez(out, predictions=np.argmax(outputs, axis=1).astype(np.int64), outputs=outputs)


if __name__ == "__main__":
    main()
