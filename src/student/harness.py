"""fmtool's harness for a student's own code (embedded in the fmtool binary, written to a temporary
folder and run there by `fmtool score`). It runs in a temporary copy of the student's repository, with
that copy as the working directory, and does what the course's grader does with the student's files:

  inspect                  read model_test.py without running it: its test functions, and whether
                           test_inference is the course's own (then fmtool may run it in parallel)
  probe                    call the student's relu() and softmax() on the grader's inputs and others
  tests NODE...            run model_test.py's test functions the way pytest would (one process per
                           workflow step, like the grader), in order
  infer START END OUT      a worker of the parallel test_inference: the student's nn_inference on
                           images START..END, exactly as test_inference calls it; outputs to OUT.npy
  finish OUT...            the rest of test_inference on the workers' outputs: squeeze, argmax,
                           accuracy, test_acc.txt

Every mode prints one JSON object on the last line of stdout ("@@fmtool@@" + JSON). Imports of
packages the grader does not have (FMTOOL_ALLOWED, comma-separated top-level names) fail here as
they fail there.
"""

import ast
import json
import os
import sys
import time
import traceback

MARK = "@@fmtool@@"
REPO = os.getcwd()


def emit(obj):
    sys.stdout.flush()
    sys.stdout.write("\n" + MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()


class GraderImports:
    """A meta-path finder that makes `import X` fail, as on the grader's runner, for any top-level
    package that is neither in the standard library, nor installed by the workflow, nor in the repo."""

    def __init__(self, allowed):
        self.allowed = set(allowed) | set(sys.stdlib_module_names) | set(sys.builtin_module_names)

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.split(".")[0]
        if top in self.allowed or top.startswith("_"):
            return None
        if os.path.exists(os.path.join(REPO, top + ".py")) or os.path.isdir(os.path.join(REPO, top)):
            return None
        raise ModuleNotFoundError(f"No module named '{top}'", name=top)


def install_import_guard():
    allowed = os.environ.get("FMTOOL_ALLOWED")
    if allowed is not None:
        sys.meta_path.insert(0, GraderImports([a for a in allowed.split(",") if a]))
    if REPO not in sys.path:
        sys.path.insert(0, REPO)


def describe(exc):
    """An exception as the student should see it: type, message, the frames in their own files, and
    the layer being run when it happened (a local variable `layer`, `lname` or `name`)."""
    frames = []
    layer = None
    for fr, lineno in traceback.walk_tb(exc.__traceback__):
        fname = fr.f_code.co_filename
        if not os.path.abspath(fname).startswith(REPO + os.sep):
            continue
        rel = os.path.relpath(fname, REPO)
        src = ""
        try:
            import linecache

            src = linecache.getline(fname, lineno).strip()
        except Exception:
            pass
        frames.append({"file": rel, "line": lineno, "function": fr.f_code.co_name, "source": src[:200]})
        if rel != "model_test.py":
            loc = fr.f_locals
            cand = loc.get("layer")
            if isinstance(cand, dict) and isinstance(cand.get("name"), str):
                layer = cand["name"]
            elif isinstance(loc.get("lname"), str):
                layer = loc["lname"]
    message = str(exc)
    return {
        "type": type(exc).__name__,
        "message": message[:2000],
        "frames": frames[-8:],
        "layer": layer,
    }


def load_model_test():
    import importlib.util

    path = os.path.join(REPO, "model_test.py")
    spec = importlib.util.spec_from_file_location("model_test", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["model_test"] = mod
    spec.loader.exec_module(mod)
    return mod


def function_dump(tree, name):
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.dump(node, annotate_fields=True, include_attributes=False)
    return None


def mode_inspect(course_path):
    out = {"exists": os.path.exists("model_test.py"), "tests": [], "course_inference": False, "error": None,
           "output_file": None}
    if not out["exists"]:
        emit(out)
        return
    try:
        with open("model_test.py", encoding="utf-8") as f:
            tree = ast.parse(f.read())
        with open(course_path, encoding="utf-8") as f:
            course = ast.parse(f.read())
    except (SyntaxError, ValueError, UnicodeDecodeError) as e:
        out["error"] = f"{type(e).__name__}: {e}"
        emit(out)
        return
    out["tests"] = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
    mine = function_dump(tree, "test_inference")
    # The parallel path reads these module-level names; they may be edited, but must exist.
    names = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    needed = {"MODEL_WEIGHTS_PATH", "MODEL_ARCH_PATH", "OUTPUT_FILE"}
    out["course_inference"] = mine is not None and mine == function_dump(course, "test_inference") and needed <= names
    # The file test_inference writes, when it is a plain string (fmtool then finishes the test itself).
    for n in tree.body:
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "OUTPUT_FILE" for t in n.targets):
            v = n.value
            out["output_file"] = v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else None
    emit(out)


def finite(v):
    """JSON has no inf or NaN: they become null (the student's softmax may overflow)."""
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v if v == v and v not in (float("inf"), float("-inf")) else None


def mode_probe():
    import numpy as np

    res = {"import": None, "relu": {}, "softmax": {}}
    try:
        import nn_predict
    except BaseException as e:  # noqa: BLE001 - student code may raise anything
        res["import"] = describe(e)
        emit(res)
        return

    def call(fn_name, value):
        fn = getattr(nn_predict, fn_name, None)
        if fn is None:
            return {"error": {"type": "AttributeError", "message": f"nn_predict has no {fn_name}()", "frames": [], "layer": None}}
        try:
            y = fn(value)
            arr = np.asarray(y, dtype=np.float64)
            return {"value": finite(arr.tolist()), "shape": list(arr.shape)}
        except BaseException as e:  # noqa: BLE001
            return {"error": describe(e)}

    res["relu"]["grader"] = call("relu", np.array([-2, -1, 0, 1, 2]))
    res["relu"]["floats"] = call("relu", np.array([[-1.5, 0.25, 3.0]]))
    res["softmax"]["grader"] = call("softmax", np.array([2.0, 1.0, 0.1]))
    res["softmax"]["row"] = call("softmax", np.array([[2.0, 1.0, 0.1]]))
    res["softmax"]["large"] = call("softmax", np.array([[1000.0, 1001.0, 1002.0]]))
    emit(res)


def mode_tests(nodes):
    import io
    from contextlib import redirect_stdout

    results = []
    try:
        buf = io.StringIO()
        with redirect_stdout(buf):
            mod = load_model_test()
    except BaseException as e:  # noqa: BLE001 - a collection error fails every node, as in pytest
        err = describe(e)
        for n in nodes:
            results.append({"node": n, "passed": False, "error": err, "stdout": buf.getvalue()[-4000:], "collect": True})
        emit({"results": results})
        return
    for n in nodes:
        fn = getattr(mod, n, None)
        start = time.time()
        if fn is None or not callable(fn):
            results.append({"node": n, "passed": False, "missing": True, "error": None, "stdout": "", "seconds": 0.0})
            continue
        buf = io.StringIO()
        try:
            with redirect_stdout(buf):
                fn()
            results.append({"node": n, "passed": True, "error": None, "stdout": buf.getvalue()[-4000:], "seconds": time.time() - start})
        except BaseException as e:  # noqa: BLE001
            results.append({"node": n, "passed": False, "error": describe(e), "stdout": buf.getvalue()[-4000:], "seconds": time.time() - start})
    emit({"results": results})


def mode_infer(start, end, out):
    import numpy as np

    start, end = int(start), int(end)
    t0 = time.time()
    try:
        mod = load_model_test()
        x_test, y_test = mod.mnist_reader.load_mnist("data/fashion", kind="t10k")
        weights = np.load(mod.MODEL_WEIGHTS_PATH)
        with open(mod.MODEL_ARCH_PATH) as f:
            model_arch = json.load(f)
        normalized_X = x_test[start:end] / 255.0
        outs = []
        for k, img in enumerate(normalized_X):
            try:
                outs.append(mod.nn_inference(model_arch, weights, np.expand_dims(img, axis=0)))
            except Exception as e:
                err = describe(e)
                err["image"] = start + k
                emit({"error": err, "seconds": time.time() - t0})
                return
            if k % 50 == 49:
                sys.stdout.write(f"\n@@progress {k + 1}\n")
                sys.stdout.flush()
        arr = np.array(outs)
        np.savez(out, outputs=arr, labels=np.asarray(y_test[start:end]))
        emit({"error": None, "shape": list(arr.shape), "dtype": str(arr.dtype), "seconds": time.time() - t0})
    except Exception as e:
        emit({"error": describe(e), "seconds": time.time() - t0})


def mode_finish(error, outs):
    import numpy as np

    mod = load_model_test()
    if os.path.exists(mod.OUTPUT_FILE):
        os.remove(mod.OUTPUT_FILE)
    acc = None
    message = None
    try:
        if error:
            raise RuntimeError(error)
        _, y_test = mod.mnist_reader.load_mnist("data/fashion", kind="t10k")
        outputs = np.concatenate([np.load(p, allow_pickle=False)["outputs"] for p in outs])
        predictions = np.argmax(outputs.squeeze(axis=1), axis=-1)
        correct = np.sum(predictions == y_test)
        acc = correct / len(y_test)
        with open(mod.OUTPUT_FILE, "w") as file:
            file.write(str(acc))
    except Exception as e:
        message = f"{type(e).__name__}: {e}"
    if acc is not None:
        # For fmtool's comparison with its own engine; not part of what the grader does.
        try:
            flat = np.asarray(outputs.squeeze(axis=1), dtype=np.float64).reshape(len(outputs), -1)
            result = os.path.join(os.environ["FMTOOL_OUT"], "result.npz")
            np.savez(result, predictions=predictions.astype(np.int64), outputs=flat)
        except Exception:
            pass
    emit({"accuracy": None if acc is None else float(acc), "written": None if acc is None else str(acc), "error": message})


def main():
    mode = sys.argv[1]
    install_import_guard()
    if mode == "inspect":
        mode_inspect(sys.argv[2])
    elif mode == "probe":
        mode_probe()
    elif mode == "tests":
        mode_tests(sys.argv[2:])
    elif mode == "infer":
        mode_infer(*sys.argv[2:5])
    elif mode == "finish":
        mode_finish(sys.argv[2], sys.argv[3:])
    else:
        emit({"error": f"unknown mode {mode}"})


if __name__ == "__main__":
    main()
