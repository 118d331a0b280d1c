#!/usr/bin/env python3
"""Cost of creating files, as dropship's intake and staging do: per file, in microseconds.

Usage: fsprobe.py DIR [N]. Three rounds; prints "min-max" microseconds per file for:
mkdir + create 2 KB file; create 2 KB file in one directory; rm -rf (per file).
"""
import os, shutil, sys, time

base, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2000
data = b"x" * 2048
os.makedirs(base, exist_ok=True)

def run(fn):
    root = os.path.join(base, "probe")
    os.mkdir(root)
    t = time.perf_counter()
    fn(root)
    made = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    shutil.rmtree(root)
    return made, (time.perf_counter() - t) / n * 1e6

def new_dirs(root):          # mkdir + create + write 2 KB + close
    for i in range(n):
        d = os.path.join(root, str(i))
        os.mkdir(d)
        with open(os.path.join(d, "f"), "wb") as f:
            f.write(data)

def one_dir(root):           # create + write 2 KB + close, all in one directory
    for i in range(n):
        with open(os.path.join(root, str(i)), "wb") as f:
            f.write(data)

rounds = [run(new_dirs) + run(one_dir) for _ in range(3)]
span = lambda k: f"{min(r[k] for r in rounds):.0f}-{max(r[k] for r in rounds):.0f}"
print(span(0), span(2), span(1))
