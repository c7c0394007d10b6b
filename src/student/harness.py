"""fmtool's harness for a student's own code (embedded in the fmtool binary, written to a temporary
folder and run there by `fmtool score` and `fmtool grade`). It runs in a temporary copy of the student's
repository, inside the repository's sandbox, and does what the course's grader does with the student's
files. `serve` is how fmtool starts it: a server that never runs the student's code itself, and forks one
child per request (one workflow step, one worker), each running one of the modes below:

  inspect                  read model_test.py without running it: its test functions, and whether
                           test_inference is the course's own (then fmtool may run it in parallel)
  probe                    call the student's relu() and softmax() on the grader's inputs and others
  tests NODE...            run model_test.py's test functions the way pytest would (one process per
                           workflow step, like the grader), in order
  infer START END OUT      a worker of the parallel test_inference: the student's nn_inference on
                           images START..END, exactly as test_inference calls it; outputs to OUT.npy
  finish OUT...            the rest of test_inference on the workers' outputs: squeeze, argmax,
                           accuracy, test_acc.txt
  trial N OUT              `fmtool check`'s run: model_test.py imported (the tests' import path), relu()
                           and softmax() called as test_relu and test_softmax call them, the model
                           loaded as test_inference loads it and nn_inference on the first N images;
                           outputs to OUT.npz
  shell COMMAND            a workflow step's command as the runner runs it: `/bin/sh -c COMMAND` in the
                           repository (pytest and python from the shims fmtool put on PATH)

A mode's exit status is its result, as pytest's is the grader's: 0 when every test passed (`tests`),
when the worker classified its images (`infer`), when test_inference wrote its accuracy (`finish`).
Each mode also prints one JSON object on the last line of stdout ("@@fmtool@@" + JSON), but that is the
student's process talking: fmtool reads it for messages (which test failed, the traceback), never for
points. Only `inspect`, which runs none of the student's code, is believed. Imports of packages the
grader does not have (FMTOOL_ALLOWED, comma-separated top-level names) fail here as they fail there.

The server talks to fmtool over the SOCK_SEQPACKET socket at fd 3, one JSON message a packet:
  {"op": "run", "id": N, "argv": [MODE, ARGS...], "env": {...}} with the child's stdout and stderr as
      two file descriptors (SCM_RIGHTS); answered {"id": N, "pid": PID}, then {"id": N, "status": S}
      (the exit code) or {"id": N, "signal": K} when it ends.
  {"op": "clean", "id": N}: every process but the server and the sandbox's init is killed (daemons and
      setsid children too: in the sandbox's own PID namespace that is every process of the student's);
      answered {"id": N, "cleaned": true}.
The server is not dumpable, so the student's processes (the same uid) can neither read its memory nor
open its socket through /proc; they can kill it, and fmtool then says the sandbox was stopped.
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
    out = {
        "exists": os.path.exists("model_test.py"),
        "tests": [],
        "course_inference": False,
        "error": None,
        "output_file": None,
    }
    if not out["exists"]:
        emit(out)
        return 0
    try:
        with open("model_test.py", encoding="utf-8") as f:
            tree = ast.parse(f.read())
        with open(course_path, encoding="utf-8") as f:
            course = ast.parse(f.read())
    except (SyntaxError, ValueError, UnicodeDecodeError) as e:
        out["error"] = f"{type(e).__name__}: {e}"
        emit(out)
        return 0
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
    return 0


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
        return 0

    def call(fn_name, value):
        fn = getattr(nn_predict, fn_name, None)
        if fn is None:
            return {
                "error": {
                    "type": "AttributeError",
                    "message": f"nn_predict has no {fn_name}()",
                    "frames": [],
                    "layer": None,
                }
            }
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
    return 0


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
            results.append(
                {"node": n, "passed": False, "error": err, "stdout": buf.getvalue()[-4000:], "collect": True}
            )
        emit({"results": results})
        return 1
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
            results.append(
                {
                    "node": n,
                    "passed": True,
                    "error": None,
                    "stdout": buf.getvalue()[-4000:],
                    "seconds": time.time() - start,
                }
            )
        except BaseException as e:  # noqa: BLE001
            results.append(
                {
                    "node": n,
                    "passed": False,
                    "error": describe(e),
                    "stdout": buf.getvalue()[-4000:],
                    "seconds": time.time() - start,
                }
            )
    emit({"results": results})
    return 0 if results and all(r["passed"] for r in results) else 1


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
                return 1
            if k % 50 == 49:
                sys.stdout.write(f"\n@@progress {k + 1}\n")
                sys.stdout.flush()
        arr = np.array(outs)
        np.savez(out, outputs=arr, labels=np.asarray(y_test[start:end]))
        emit({"error": None, "shape": list(arr.shape), "dtype": str(arr.dtype), "seconds": time.time() - t0})
        return 0
    except Exception as e:
        emit({"error": describe(e), "seconds": time.time() - t0})
        return 1


def mode_trial(count, out):
    """The tests' path through the student's code, briefly: which part raised, and the outputs of the
    first `count` images when none did. Exit 0 only when every image was classified."""
    import numpy as np

    t0 = time.time()
    res = {"phase": None, "error": None, "relu": None, "softmax": None, "images": 0}

    def failed(phase, e, image=None):
        res["phase"] = phase
        res["error"] = describe(e)
        res["error"]["image"] = image
        res["seconds"] = time.time() - t0
        emit(res)
        return 1

    try:
        mod = load_model_test()
    except BaseException as e:  # noqa: BLE001 - student code may raise anything
        return failed("import", e)
    # test_relu's and test_softmax's own calls: only an exception matters here (score grades them).
    for name, arg in (("relu", np.array([-2, -1, 0, 1, 2])), ("softmax", np.array([2.0, 1.0, 0.1]))):
        fn = getattr(mod, name, None)
        if callable(fn):
            try:
                fn(arg)
            except BaseException as e:  # noqa: BLE001
                res[name] = describe(e)
    try:
        reader = getattr(mod, "mnist_reader", None)
        if reader is None:
            from utils import mnist_reader as reader
        x_test, _ = reader.load_mnist("data/fashion", kind="t10k")
        weights = np.load(getattr(mod, "MODEL_WEIGHTS_PATH", "model/fashion_mnist.npz"))
        with open(getattr(mod, "MODEL_ARCH_PATH", "model/fashion_mnist.json")) as f:
            model_arch = json.load(f)
    except BaseException as e:  # noqa: BLE001
        return failed("load", e)
    outs = []
    for k, img in enumerate(x_test[: int(count)] / 255.0):
        try:
            outs.append(mod.nn_inference(model_arch, weights, np.expand_dims(img, axis=0)))
        except BaseException as e:  # noqa: BLE001
            return failed("inference", e, k)
        res["images"] = k + 1
    try:
        np.savez(out, outputs=np.array(outs, dtype=np.float64))
    except BaseException as e:  # noqa: BLE001 - outputs NumPy cannot stack (ragged, not numbers)
        return failed("outputs", e)
    res["seconds"] = time.time() - t0
    emit(res)
    return 0


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
    emit(
        {
            "accuracy": None if acc is None else float(acc),
            "written": None if acc is None else str(acc),
            "error": message,
        }
    )
    return 1 if acc is None else 0


def mode_shell(command):
    """The shell replaces this process: its exit status is the step's, as on the runner."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv("/bin/sh", ["sh", "-c", command])


class RepoImports(GraderImports):
    """In pytest's own process only the imports the repository's code makes are refused: pytest and
    its plugins import what this Python has, as they do on the runner with what it installed."""

    def find_spec(self, fullname, path=None, target=None):
        f = sys._getframe(1)
        while f is not None and f.f_code.co_filename.startswith("<frozen"):
            f = f.f_back
        if f is None or not os.path.abspath(f.f_code.co_filename).startswith(REPO + os.sep):
            return None
        return super().find_spec(fullname, path, target)


def install_grader_imports():
    """Run by the sitecustomize.py fmtool puts on PYTHONPATH for a workflow's own commands: the
    imports the grader's runner lacks fail there too."""
    allowed = os.environ.get("FMTOOL_ALLOWED")
    if allowed is not None:
        sys.meta_path.insert(0, RepoImports([a for a in allowed.split(",") if a]))


def forget_shadowed_modules():
    """The server imported NumPy before any of the student's code ran; a repository with its own
    `numpy.py` (or any third-party name) must get that module, as pytest's import would give it."""
    for name in list(sys.modules):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top.startswith("_"):
            continue
        if os.path.exists(os.path.join(REPO, top + ".py")) or os.path.isdir(os.path.join(REPO, top)):
            del sys.modules[name]


def run_mode(argv):
    """Runs one mode; returns its exit status."""
    mode = argv[0]
    if mode == "inspect":
        # Runs none of the student's code: its answer is the one fmtool believes.
        return mode_inspect(argv[1])
    if mode == "shell":
        return mode_shell(argv[1])
    forget_shadowed_modules()
    install_import_guard()
    if mode == "probe":
        return mode_probe()
    if mode == "tests":
        return mode_tests(argv[1:])
    if mode == "infer":
        return mode_infer(*argv[1:4])
    if mode == "finish":
        return mode_finish(argv[1], argv[2:])
    if mode == "trial":
        return mode_trial(argv[1], argv[2])
    emit({"error": f"unknown mode {mode}"})
    return 2


def not_dumpable():
    """PR_SET_DUMPABLE 0: processes of the same uid (the student's) cannot ptrace this one, read its
    memory or open its file descriptors through /proc."""
    if not sys.platform.startswith("linux"):
        return True
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) == 0


def in_own_pid_namespace():
    """The sandbox's server is pid 2 under bubblewrap's init (pid 1) in a PID namespace of its own:
    only there may it kill every process it can signal."""
    return os.getpid() == 2 and os.getppid() == 1


def child(req, fds, sock, isolated):
    """A forked child: the request's stdout and stderr, the request's environment, one mode; never
    returns."""
    code = 70
    try:
        sock.close()
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        os.closerange(3, 4096)
        if not isolated:
            # Its own session and group: fmtool's clean-up kills the group.
            os.setsid()
        os.environ.clear()
        os.environ.update(req.get("env", {}))
        nproc = os.environ.get("FMTOOL_NPROC")
        if isolated and nproc:
            import resource

            # Counted per user namespace for the sandbox's unprivileged uid: the student as a whole.
            try:
                resource.setrlimit(resource.RLIMIT_NPROC, (int(nproc), int(nproc)))
            except (ValueError, OSError):
                pass
        sys.argv = [os.path.abspath(__file__), *req["argv"]]
        code = run_mode(req["argv"])
    except BaseException:  # noqa: BLE001 - whatever happens, the child ends here with a status
        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001, S110
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001, S110
            pass
        os._exit(code)


def clean(running, groups, isolated):
    """Kills every process of the student's. True when none is left."""
    import signal

    if isolated and in_own_pid_namespace():
        me = os.getpid()
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
            reap(running, None)
            left = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
            if not left:
                return True
            time.sleep(0.005)
        return False
    for g in groups:
        try:
            os.killpg(g, signal.SIGKILL)
        except OSError:
            pass
    reap(running, None)
    return True


def reap(running, send):
    """Collects the children that ended; tells fmtool how each ended (`send`), or drops them."""
    while running:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            running.clear()
            return
        if pid == 0:
            return
        rid = running.pop(pid, None)
        if rid is None or send is None:
            continue
        if os.WIFSIGNALED(status):
            send({"id": rid, "signal": os.WTERMSIG(status)})
        else:
            send({"id": rid, "status": os.waitstatus_to_exitcode(status)})


def serve(isolated):
    import select
    import socket

    if not not_dumpable():
        sys.stderr.write("fmtool's harness: cannot make itself non-dumpable (prctl)\n")
        return 3
    os.closerange(4, 4096)
    try:
        # Imported once here, from the interpreter's own site-packages (the repository is not on
        # sys.path yet); every child has it already. A repository that shadows it gets its own.
        import numpy  # noqa: F401
    except Exception:  # noqa: BLE001, S110 - the child's own import says what is wrong
        pass
    sock = socket.socket(fileno=3)
    running = {}
    groups = []

    def send(obj):
        sock.send(json.dumps(obj).encode())

    while True:
        ready, _, _ = select.select([sock], [], [], 0.01 if running else None)
        if ready:
            try:
                msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 2)
            except OSError:
                return 0
            if not msg:
                return 0
            req = json.loads(msg)
            if req["op"] == "run" and len(fds) == 2:
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    child(req, fds, sock, isolated)
                for fd in fds:
                    os.close(fd)
                running[pid] = req["id"]
                groups.append(pid)
                send({"id": req["id"], "pid": pid})
            elif req["op"] == "clean":
                ok = clean(running, groups, isolated)
                groups.clear()
                send({"id": req["id"], "cleaned": ok})
            else:
                for fd in fds:
                    os.close(fd)
                send({"id": req.get("id"), "error": "bad request"})
        reap(running, send)


def main():
    if sys.argv[1] == "serve":
        sys.exit(serve(isolated=sys.argv[2:] != ["--no-isolation"]))
    sys.exit(run_mode(sys.argv[1:]))


if __name__ == "__main__":
    main()
