#!/usr/bin/env python3
"""Print one line per test case (STATUS name) from a junit xml, then totals.
A test reported twice (e.g. pytest call failure + teardown error) counts once, worst status."""
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
rank = {"pass": 0, "skip": 1, "fail": 2}
res = {}
def walk(el, path):
    for child in el:
        if child.tag != "testcase" and child.tag not in ("failure", "error", "skipped", "system-out", "system-err", "properties"):
            yield from walk(child, path + [child.get("name") or ""])
        elif child.tag == "testcase":
            yield child, path
for tc, path in walk(root, []):
    cls = tc.get("classname")
    # node --test writes classname="test" and nests describe() blocks as testsuites;
    # pytest writes a flat testsuite "pytest" and a dotted classname.
    if cls == "test":
        name = " > ".join([p for p in path] + [tc.get("name")])
    else:
        name = f"{cls}::{tc.get('name')}"
    st = "pass"
    for child in tc:
        if child.tag in ("failure", "error"):
            st = "fail"
        elif child.tag == "skipped" and st != "fail":
            st = "skip"
    if name not in res or rank[st] > rank[res[name]]:
        res[name] = st
counts = {"pass": 0, "fail": 0, "skip": 0}
for name, st in res.items():
    counts[st] += 1
    print(f"{st.upper():5} {name}")
print(f"TOTAL pass={counts['pass']} fail={counts['fail']} skip={counts['skip']}")
