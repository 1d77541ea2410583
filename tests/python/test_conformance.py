"""The official ONNX backend test suite (onnx 1.12, Debian's libonnx-testdata) on Kiln.

Every offline case (node, simple, pytorch-converted, pytorch-operator) runs through
kiln.backend in a crash-safe worker subprocess. The test fails only if a case listed in
tests/conformance/allowlist.txt no longer passes; it prints totals per category, the grouped
failure reasons, and the passing cases not yet allowlisted (grow the list with
tests/conformance/update_allowlist.py --results BUILD/conformance_results.json).
"""

import json
import re
import os
import sys
import textwrap
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conformance"))
import conformance_suite as cs  # noqa: E402

ROOT = cs.data_dir()
needs_data = pytest.mark.skipif(ROOT is None, reason="ONNX backend test data (libonnx-testdata) is not installed")


@pytest.fixture(scope="module")
def suite_results():
    ids = cs.list_cases(ROOT)
    t0 = time.time()
    results = cs.run_cases(ids, ROOT)
    elapsed = time.time() - t0
    out = os.path.join(os.environ.get("KILN_BUILD_DIR", os.path.join(cs.ROOT, "build")), "conformance_results.json")
    try:
        with open(out, "w") as f:
            json.dump(results, f, indent=0)
    except OSError:
        out = None
    return results, elapsed, out


@needs_data
def test_suite_has_every_offline_case():
    ids = cs.list_cases(ROOT)
    per_cat = {c: sum(i.startswith(c + "/") for i in ids) for c in cs.CATEGORIES}
    # onnx 1.12's data: 932 node, 23 simple, 82 pytorch-converted, 35 pytorch-operator cases.
    assert per_cat["node"] >= 900 and per_cat["simple"] >= 20, per_cat
    assert per_cat["pytorch-converted"] >= 80 and per_cat["pytorch-operator"] >= 30, per_cat


@needs_data
def test_allowlisted_cases_still_pass(suite_results, capsys):
    results, elapsed, out = suite_results
    allow = cs.read_list(cs.ALLOWLIST)
    unknown = sorted(c for c in allow if c not in results)
    regressions = {c: results[c] for c in allow if c in results and results[c]["status"] != "pass"}
    new = sorted(c for c, r in results.items() if r["status"] == "pass" and c not in allow)
    with capsys.disabled():
        print()
        print(cs.report(results, top=15))
        print(f"conformance: {len(results)} cases in {elapsed:.1f} s; results in {out}")
        if new:
            print(f"{len(new)} passing cases are not in the allowlist yet (tests/conformance/update_allowlist.py):")
            print(textwrap.indent(textwrap.fill(" ".join(new), 110, break_on_hyphens=False), "  "))
    assert not unknown, f"allowlist names cases the suite does not have: {unknown}"
    assert not regressions, "allowlisted cases no longer pass:\n" + "\n".join(
        f"  {c}: {r['reason']}" for c, r in regressions.items())


FAKE_BACKEND = '''
import os, signal, time
import numpy as np

class Rep:
    def __init__(self, op):
        self.op = op
    def run(self, inputs):
        if self.op == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if self.op == "hang":
            time.sleep(60)
        if self.op == "raise":
            raise RuntimeError("no such luck")
        a, b = inputs
        return [a + b] if self.op == "add" else [a - b + 1]

def prepare(model_path, device="CPU", **kwargs):
    name = os.path.basename(os.path.dirname(model_path))
    return Rep({"test_add": "add", "test_add_bcast": "add", "test_relu": "crash", "test_abs": "hang",
                "test_neg": "raise"}.get(name, "wrong"))
'''


@needs_data
def test_worker_survives_crashes_hangs_and_errors(tmp_path):
    (tmp_path / "fake_backend.py").write_text(FAKE_BACKEND)
    ids = ["node/test_add", "node/test_relu", "node/test_sub", "node/test_abs", "node/test_neg",
           "node/test_add_bcast"]
    res = cs.run_cases(ids, ROOT, backend="fake_backend", timeout=3.0, extra_path=[str(tmp_path)])
    status = {c: r["status"] for c, r in res.items()}
    assert status == {"node/test_add": "pass", "node/test_relu": "crash", "node/test_sub": "fail",
                      "node/test_abs": "timeout", "node/test_neg": "error", "node/test_add_bcast": "pass"}
    assert "SIGSEGV" in res["node/test_relu"]["reason"]
    assert "values differ" in res["node/test_sub"]["reason"]
    assert res["node/test_neg"]["reason"] == "RuntimeError: no such luck" and res["node/test_neg"]["stage"] == "run"


def test_compare_is_strict_about_dtype_shape_and_values():
    ref = np.array([1.0, np.nan, 3.0], np.float32)
    cs.compare(ref, ref * (1 + 5e-4), "o")  # within rtol; NaN equals NaN
    with pytest.raises(cs.Mismatch, match="dtype float64, expected float32"):
        cs.compare(ref, ref.astype(np.float64), "o")
    with pytest.raises(cs.Mismatch, match=r"shape \(1, 3\), expected \(3,\)"):
        cs.compare(ref, ref.reshape(1, 3), "o")
    with pytest.raises(cs.Mismatch, match="1/3 values differ"):
        cs.compare(ref, np.array([1.0, np.nan, 3.01], np.float32), "o")
    with pytest.raises(cs.Mismatch, match="shape"):  # a 0-d result does not broadcast
        cs.compare(np.zeros((2,), np.int64), np.array(0, np.int64), "o")
    with pytest.raises(cs.Mismatch, match="strings differ, e.g. 'b' vs expected 'a'"):
        cs.compare(np.array(["a"], dtype=object), np.array(["b"], dtype=object), "o")


def test_compare_sequences_and_optionals():
    a = np.ones(2, np.float32)
    cs.compare([a, a], [a, a], "o")
    cs.compare(None, None, "o")
    with pytest.raises(cs.Mismatch, match="sequence length 1, expected 2"):
        cs.compare([a, a], [a], "o")
    with pytest.raises(cs.Mismatch, match="expected an empty optional"):
        cs.compare(None, a, "o")
    with pytest.raises(cs.Mismatch, match="expected a tensor, got None"):
        cs.compare(a, None, "o")


def test_failure_classes_and_missing_op_parsing():
    r = {"status": "error", "stage": "prepare", "tags": [],
         "reason": "NotImplemented: Kiln has no kernel for 2 op(s) of this model: Abs (opset 13), "
                   "ai.onnx.preview.training::Adam (opset 1)"}
    assert cs.missing_ops(r["reason"]) == ["Abs", "ai.onnx.preview.training::Adam"]
    assert cs.classify(r) == "missing op"
    assert cs.note(r) == "missing op: Abs (opset 13), ai.onnx.preview.training::Adam (opset 1)"
    assert cs.missing_ops("InvalidGraph: no kernel for node 'n' (Foo) at opset 7") == ["Foo"]
    seq = {"status": "error", "stage": "run", "tags": ["sequence"], "reason": "InvalidArgument: x"}
    assert cs.classify(seq) == "run error (InvalidArgument) with sequence I/O"
    assert cs.note(seq) == "run error (InvalidArgument) with sequence I/O: InvalidArgument: x"
    assert cs.classify({**seq, "status": "crash"}) == "crash"
    assert cs.classify({"status": "fail", "stage": "compare", "tags": [], "reason": "1/3 values differ"}) == \
        "wrong result"
    res = {"node/test_a": {"status": "pass"}, "node/test_b": r, "simple/test_c": {"status": "pass"}}
    assert cs.totals(res) == {"node": (1, 2), "simple": (1, 1), "all": (2, 3)}
    text = cs.report(res)
    assert re.search(r"node +1 / +1 / +2  \(50.0% pass\)", text) and re.search(r"all +2 / +1 / +3 ", text)
    assert "   1 [   0]  Abs (opset 13)" in text and "   1 [   0]  ai.onnx.preview.training::Adam (opset 1)" in text


@needs_data
def test_allowlist_and_known_failures_are_well_formed():
    ids = set(cs.list_cases(ROOT))
    allow = cs.read_list(cs.ALLOWLIST)
    known = cs.read_list(cs.KNOWN_FAILURES)
    assert all(c in ids for c in allow), sorted(set(allow) - ids)
    assert all(c in ids and known[c] for c in known), "known_failures.txt: unknown case or missing reason"
