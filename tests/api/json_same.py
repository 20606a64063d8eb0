#!/usr/bin/env python3
"""json_same.py: are two JSON documents equal (as values, key order aside)?

    json_same.py A.json B.json     files
    json_same.py - B.json          A on standard input

Exits 0 when they are equal; otherwise prints the paths where they differ
and exits 1. Used by the API suites to compare whole answers the way
Firecracker's tests do (`response.json() == expected`).
"""
import json
import sys


def diff(a, b, path, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}/{k}: missing on the left, right has {json.dumps(b[k])}")
            elif k not in b:
                out.append(f"{path}/{k}: missing on the right, left has {json.dumps(a[k])}")
            else:
                diff(a[k], b[k], f"{path}/{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", out)
    elif a != b or type(a) is not type(b):
        out.append(f"{path or '/'}: {json.dumps(a)} != {json.dumps(b)}")


def load(name):
    if name == "-":
        return json.load(sys.stdin)
    with open(name, encoding="utf-8") as f:
        return json.load(f)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    out = []
    diff(load(sys.argv[1]), load(sys.argv[2]), "", out)
    for line in out:
        print(line)
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main())
