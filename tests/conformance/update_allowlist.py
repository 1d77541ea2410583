#!/usr/bin/env python3
"""Grows the conformance allowlist: runs the ONNX backend suite on Kiln, ADDS every newly passing
case to allowlist.txt (never removes one) and rewrites known_failures.txt with the current
one-line reason of each failing case. Prints totals and the grouped failure summary.

    KILN_BUILD_DIR=/work/main/build .venv/bin/python tests/conformance/update_allowlist.py
    ... update_allowlist.py --results BUILD/conformance_results.json   # reuse test_conformance's run
    ... update_allowlist.py -k 'node/test_(add|relu)'                    # only part of the suite

An allowlisted case that fails now is reported as a regression (exit code 1); it stays listed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance_suite as cs  # noqa: E402

HEADER_ALLOW = """\
# ONNX backend suite (onnx 1.12, libonnx-testdata) cases Kiln passes; tests/python/test_conformance.py
# fails if any of them stops passing. Grown by tests/conformance/update_allowlist.py, never shrunk
# by it: remove a line by hand only with a reason in the commit message.
"""
HEADER_KNOWN = """\
# ONNX backend suite cases Kiln does not pass yet, with the current reason (one line each).
# Rewritten by tests/conformance/update_allowlist.py on every run.
"""


def write_allowlist(path: str, ids: set) -> None:
    order = {c: i for i, c in enumerate(cs.CATEGORIES)}
    rows = sorted(ids, key=lambda c: (order.get(c.split("/", 1)[0], 99), c))
    with open(path, "w") as f:
        f.write(HEADER_ALLOW)
        f.writelines(r + "\n" for r in rows)


def write_known(path: str, results: dict) -> None:
    with open(path, "w") as f:
        f.write(HEADER_KNOWN)
        for case_id, r in results.items():
            if r["status"] != "pass":
                f.write(f"{case_id}  # {r.get('note') or cs.note(r)}\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", help="JSON results of an earlier run (test_conformance writes BUILD/conformance_results.json)")
    ap.add_argument("-k", dest="pattern", help="regex on 'category/test_name': run only these cases")
    ap.add_argument("--timeout", type=float, default=cs.CASE_TIMEOUT, help="per-case budget in seconds")
    ap.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    args = ap.parse_args()

    if args.results:
        with open(args.results) as f:
            results = json.load(f)
    else:
        root = cs.data_dir()
        if not root:
            print("no ONNX backend test data (apt-get install libonnx-testdata, or set ONNX_TEST_DATA)")
            return 2
        ids = cs.list_cases(root)
        if args.pattern:
            ids = [c for c in ids if re.search(args.pattern, c)]
        t0 = time.time()
        results = cs.run_cases(ids, root, timeout=args.timeout)
        print(f"ran {len(ids)} cases in {time.time() - t0:.1f} s")

    allow = set(cs.read_list(cs.ALLOWLIST))
    passing = {c for c, r in results.items() if r["status"] == "pass"}
    added = sorted(passing - allow)
    regressions = sorted(c for c in allow if c in results and results[c]["status"] != "pass")
    print(cs.report(results))
    print(f"allowlist: {len(allow)} listed, {len(added)} newly passing added")
    for c in added:
        print(f"  + {c}")
    for c in regressions:
        print(f"  REGRESSION {c}: {results[c]['reason']}")
    if not args.dry_run:
        write_allowlist(cs.ALLOWLIST, allow | passing)
        known = cs.read_list(cs.KNOWN_FAILURES) if args.pattern else {}
        # A partial run (-k) keeps the entries of the cases it did not run.
        merged = {c: {"status": "fail", "note": n} for c, n in known.items() if c not in results}
        merged.update(results)
        write_known(cs.KNOWN_FAILURES, {c: merged[c] for c in sorted(merged, key=_order)})
    return 1 if regressions else 0


def _order(case_id: str):
    cat, _, name = case_id.partition("/")
    return (cs.CATEGORIES.index(cat) if cat in cs.CATEGORIES else 99, name)


if __name__ == "__main__":
    sys.exit(main())
