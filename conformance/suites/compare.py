#!/usr/bin/env python3
"""compare.py REF_SUMMARY WARREN_SUMMARY: tests passing on the reference but not on Warren."""
import sys
def load(p):
    d = {}
    for line in open(p):
        if line.startswith("TOTAL"): continue
        st, name = line.split(None, 1)
        name = name.split("   [")[0].strip()
        # a test with a call failure and a teardown error appears twice: keep the worst
        if d.get(name) != "FAIL":
            d[name] = st
    return d
ref, war = load(sys.argv[1]), load(sys.argv[2])
for n, st in ref.items():
    w = war.get(n, "MISSING")
    if st == "PASS" and w != "PASS":
        print(f"{w:7} {n}")
for n, st in war.items():
    if st == "PASS" and ref.get(n) != "PASS":
        print(f"warren-only-pass ({ref.get(n,'MISSING')}) {n}")
