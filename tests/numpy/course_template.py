"""The course's NumPy forward pass, as the autograder runs it, for fmtool's cross-check tests.

Usage: python course_template.py MODEL_DIR DATA_DIR OUT.npz [--batched]
       python course_template.py MODEL_DIR DATA_DIR OUT.json --model-test

Reads MODEL_DIR/fashion_mnist.json + .npz with json.load / numpy.load, the test set from
DATA_DIR/t10k-*-ubyte.gz, feeds every image one at a time as a float64 (1, 784) row divided by 255
through the template's nn_forward_h5 (in course.py: Flatten and Dense with relu/softmax only; every
other layer type is silently skipped), and saves `predictions` (argmax per image) and `outputs` (N, 10).
With --batched it instead runs a float32 NumPy pass over all images at once (for the speed
comparison); the arithmetic is the same.
With --model-test it runs model_test.py's test_inference instead (np.array of the per-image outputs,
outputs.squeeze(axis=1), argmax, without the shuffle, which does not change the accuracy) and writes
{"accuracy": float or null, "error": "ExceptionType: message" or null} to OUT.json: what the
grader prints when the model crashes.
"""

import json
import sys

import numpy as np

from course import load_idx, model_test_accuracy, nn_forward_h5, template_outputs


def model_test(model_dir, data_dir, out):
    acc, error = None, None
    try:
        images = load_idx(f"{data_dir}/t10k-images-idx3-ubyte.gz").reshape(-1, 784)
        labels = load_idx(f"{data_dir}/t10k-labels-idx1-ubyte.gz")
        weights = np.load(f"{model_dir}/fashion_mnist.npz")
        with open(f"{model_dir}/fashion_mnist.json") as f:
            arch = json.load(f)
        acc = model_test_accuracy(arch, weights, images / 255.0, labels)
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
        outputs = template_outputs(arch, weights, images)
    np.savez(out, predictions=np.argmax(outputs, axis=1).astype(np.int64), outputs=outputs)


if __name__ == "__main__":
    main()
