"""What the fixture generators of student repositories (make_integrity_repos.py, make_path_repos.py) share: writing a
case's files and case.json and the folder's README.md, and their command line, which writes the generated folder, or
with --check compares the committed one with what the generator would write."""

import argparse
import filecmp
import json
import os
import shutil
import sys
import tempfile


def fresh_folder(out):
    """`out`, emptied (or made)."""
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)


def write_case(d, files, case):
    """One case's folder `d`: its `files` ({relative path: text or bytes}) and its case.json."""
    os.makedirs(d)
    for rel, content in files.items():
        p = os.path.join(d, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(p, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": "\n"})) as f:
            f.write(content)
    with open(os.path.join(d, "case.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(case, f, indent=2)
        f.write("\n")


def write_readme(out, lines):
    """The folder's README.md, from its lines."""
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines))


def differences(fresh, committed):
    """The paths (relative, with /) that differ between two folders, or that only one of them has."""
    bad = []

    def walk(c, prefix=""):
        bad.extend(prefix + n for n in c.left_only + c.right_only + c.diff_files + c.funny_files)
        for sub, sc in c.subdirs.items():
            walk(sc, prefix + sub + "/")

    walk(filecmp.dircmp(fresh, committed))
    return bad


def main(doc, out, write):
    """Runs a generator: `write(folder)` writes the fixtures into `out`, or with --check into a temporary folder that
    is compared with `out` (exit 1 on a difference)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files; exit 1 on a difference")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    shown = os.path.relpath(out, root)
    if not args.check:
        write(out)
        print(f"wrote {out}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, os.path.basename(out))
        write(fresh)
        bad = differences(fresh, out)
        if bad:
            script = os.path.basename(sys.argv[0])
            print(f"{shown} differs from what {script} writes: " + ", ".join(bad))
            sys.exit(1)
    print(f"{shown} is up to date")
