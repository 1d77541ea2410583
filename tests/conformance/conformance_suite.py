"""Runs the official ONNX backend test suite (onnx 1.12 data, Debian's libonnx-testdata) on Kiln.

Used by tests/python/test_conformance.py (the regression gate) and update_allowlist.py (grows
the allowlist). Semantics follow onnx/backend/test/runner of onnx 1.12:
  * input_K.pb is parsed with the type of graph.input[K] (TensorProto, SequenceProto or
    OptionalProto) and fed by position through kiln.backend (non-initializer inputs);
  * output_K.pb is parsed with graph.output[K]'s type and compared by position with
    np.testing.assert_allclose(rtol=1e-3, atol=1e-7) (the loader's defaults), strings exactly;
  * on top of that (as /work/shared/conformance does): the numpy dtype and the shape must
    match exactly and sequence lengths must match.
Values: numpy arrays (bfloat16 as uint16 bit patterns, float16 native, strings as object
arrays), Python lists for sequences, None for an empty optional.

Cases run in a worker subprocess that answers one JSON line per case, so a segfault or a hang
costs only that case ("crash" / "timeout"); a new worker then takes the remaining cases.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ALLOWLIST = os.path.join(HERE, "allowlist.txt")
KNOWN_FAILURES = os.path.join(HERE, "known_failures.txt")

# 'real' only names model-zoo downloads, so it is not part of an offline run.
CATEGORIES = ["node", "simple", "pytorch-converted", "pytorch-operator"]
RTOL, ATOL = 1e-3, 1e-7
CASE_TIMEOUT = 30.0


def data_dir() -> Optional[str]:
    """The test data root: $ONNX_TEST_DATA, onnx's own data folder, or Debian's install."""
    cands = [os.environ.get("ONNX_TEST_DATA", "")]
    try:
        import onnx.backend.test.loader as loader
        cands.append(loader.DATA_DIR)
    except Exception:
        pass
    cands.append("/usr/share/libonnx-testdata/data")
    for c in cands:
        if c and os.path.isdir(os.path.join(c, "node")):
            return os.path.realpath(c)
    return None


def list_cases(root: str, categories: Iterable[str] = CATEGORIES) -> List[str]:
    """Case ids 'category/test_name' that have a model.onnx, sorted within each category."""
    out = []
    for cat in categories:
        d = os.path.join(root, cat)
        if os.path.isdir(d):
            out += [f"{cat}/{n}" for n in sorted(os.listdir(d)) if os.path.isfile(os.path.join(d, n, "model.onnx"))]
    return out


# ----------------------------------------------------------------------------------------------
# Worker side: load, run, compare one case
# ----------------------------------------------------------------------------------------------

def load_value(path: str, type_proto: Any) -> Any:
    import onnx
    from onnx import numpy_helper
    with open(path, "rb") as f:
        data = f.read()
    which = type_proto.WhichOneof("value")
    if which == "sequence_type":
        p = onnx.SequenceProto()
        p.ParseFromString(data)
        return numpy_helper.to_list(p)
    if which == "optional_type":
        p = onnx.OptionalProto()
        p.ParseFromString(data)
        return numpy_helper.to_optional(p)
    if which == "tensor_type":
        p = onnx.TensorProto()
        p.ParseFromString(data)
        return numpy_helper.to_array(p)
    raise NotImplementedError(f"{os.path.basename(path)}: {which} values cannot be loaded (nor can the official runner)")


def io_tags(model: Any) -> List[str]:
    """Which special kinds of graph I/O a model has: 'sequence', 'optional', 'bfloat16'."""
    from onnx import TensorProto
    tags = set()

    def walk(tp: Any) -> None:
        which = tp.WhichOneof("value")
        if which == "sequence_type":
            tags.add("sequence")
            walk(tp.sequence_type.elem_type)
        elif which == "optional_type":
            tags.add("optional")
            walk(tp.optional_type.elem_type)
        elif which == "tensor_type" and tp.tensor_type.elem_type == TensorProto.BFLOAT16:
            tags.add("bfloat16")

    for v in list(model.graph.input) + list(model.graph.output):
        walk(v.type)
    return sorted(tags)


class Mismatch(AssertionError):
    pass


def compare(ref: Any, out: Any, where: str) -> None:
    import numpy as np
    if ref is None:
        if out is not None:
            raise Mismatch(f"{where}: expected an empty optional, got {type(out).__name__}")
        return
    if isinstance(ref, list):
        if not isinstance(out, (list, tuple)):
            raise Mismatch(f"{where}: expected a sequence, got {type(out).__name__}")
        if len(out) != len(ref):
            raise Mismatch(f"{where}: sequence length {len(out)}, expected {len(ref)}")
        for j, (r, o) in enumerate(zip(ref, out)):
            compare(r, o, f"{where}[{j}]")
        return
    if out is None or isinstance(out, (list, tuple)):
        raise Mismatch(f"{where}: expected a tensor, got {'None' if out is None else 'a sequence'}")
    out = np.asarray(out)
    if out.dtype != ref.dtype:
        raise Mismatch(f"{where}: dtype {out.dtype}, expected {ref.dtype}")
    if out.shape != ref.shape:
        raise Mismatch(f"{where}: shape {out.shape}, expected {ref.shape}")
    if ref.dtype == object:
        if not np.array_equal(out, ref):
            bad = np.flatnonzero(out.ravel() != ref.ravel())
            k = int(bad[0])
            raise Mismatch(f"{where}: {len(bad)}/{ref.size} strings differ, e.g. {out.ravel()[k]!r} "
                           f"vs expected {ref.ravel()[k]!r}")
        return
    try:
        np.testing.assert_allclose(out, ref, rtol=RTOL, atol=ATOL)
    except AssertionError:
        with np.errstate(all="ignore"):
            o, r = out.astype(np.float64), ref.astype(np.float64)
            bad = ~np.isclose(o, r, rtol=RTOL, atol=ATOL, equal_nan=True)
            d = np.abs(o - r)[bad]
            d = d[np.isfinite(d)]
            worst = f", max |diff| {d.max():.3g}" if d.size else ""
            k = int(np.flatnonzero(bad.ravel())[0]) if bad.any() else 0
        raise Mismatch(f"{where}: {int(bad.sum())}/{ref.size} values differ{worst}, first at flat index {k}: "
                       f"{o.ravel()[k]:.6g} vs expected {r.ravel()[k]:.6g}") from None


def one_line(e: BaseException) -> str:
    msg = re.sub(r"\s+", " ", str(e)).strip()
    if len(msg) > 300:
        msg = msg[:300] + "..."
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def run_case(backend: Any, root: str, case_id: str, prepare_kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Runs one case in this process: {status: pass|fail|error, stage, reason, tags, seconds}."""
    import onnx
    t0 = time.time()
    case_dir = os.path.join(root, case_id)
    res: Dict[str, Any] = {"id": case_id, "status": "pass", "stage": "", "reason": "", "tags": []}
    stage = "load model"
    try:
        model_path = os.path.join(case_dir, "model.onnx")
        model = onnx.load(model_path)
        res["tags"] = io_tags(model)
        stage = "prepare"
        rep = backend.prepare(model_path, "CPU", **prepare_kwargs)
        names = [o.name for o in model.graph.output]
        for ds in sorted(glob.glob(os.path.join(case_dir, "test_data_set*"))):
            stage = "load data"
            n_in = len(glob.glob(os.path.join(ds, "input_*.pb")))
            n_out = len(glob.glob(os.path.join(ds, "output_*.pb")))
            inputs = [load_value(os.path.join(ds, f"input_{i}.pb"), model.graph.input[i].type) for i in range(n_in)]
            refs = [load_value(os.path.join(ds, f"output_{i}.pb"), model.graph.output[i].type) for i in range(n_out)]
            stage = "run"
            outs = list(rep.run(inputs))
            stage = "compare"
            if len(outs) != len(refs):
                raise Mismatch(f"{len(outs)} outputs, expected {len(refs)}")
            for i, (r, o) in enumerate(zip(refs, outs)):
                compare(r, o, f"output {i} ({names[i] if i < len(names) else '?'})")
    except Mismatch as e:
        res.update(status="fail", stage=stage, reason=one_line(e).replace("Mismatch: ", ""))
    except Exception as e:
        res.update(status="error", stage=stage, reason=one_line(e))
    res["seconds"] = round(time.time() - t0, 4)
    return res


def worker_main(backend_name: str, root: str, prepare_kwargs: Dict[str, Any]) -> None:
    """Reads case ids on stdin, answers one JSON line each on the original stdout."""
    import importlib
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the engine prints must not corrupt the protocol
    sys.stdout = sys.stderr
    backend = importlib.import_module(backend_name)
    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        case_id = line.strip()
        if case_id:
            proto.write(json.dumps(run_case(backend, root, case_id, prepare_kwargs)) + "\n")


# ----------------------------------------------------------------------------------------------
# Orchestrator side
# ----------------------------------------------------------------------------------------------

def kiln_paths() -> List[str]:
    """Where the worker finds the kiln package: the build's compiled core, then the sources."""
    build = os.environ.get("KILN_BUILD_DIR", os.path.join(ROOT, "build"))
    return [os.path.join(build, "py"), os.path.join(ROOT, "python")]


class Worker:
    def __init__(self, backend: str, root: str, prepare_kwargs: Dict[str, Any], extra_path: List[str],
                 log: Any) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(extra_path + kiln_paths() + [env.get("PYTHONPATH", "")])
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # tiny cases: spinning threads only steal the CPU
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", backend, root, json.dumps(prepare_kwargs)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                                     text=True, bufsize=1, start_new_session=True)
        ready = self.read(120.0)
        if not ready or not json.loads(ready).get("ready"):
            self.kill()
            raise RuntimeError(f"the conformance worker did not start (backend {backend}); see its log")

    def read(self, timeout: float) -> Optional[str]:
        """A line, "" if the worker exited, None on timeout."""
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if r else None

    def run(self, case_id: str, timeout: float) -> Dict[str, Any]:
        try:
            self.proc.stdin.write(case_id + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        t0 = time.time()
        line = self.read(timeout)
        if line:
            return json.loads(line)
        res = {"id": case_id, "stage": "run", "tags": [], "seconds": round(time.time() - t0, 3)}
        if line is None:
            self.kill()
            return {**res, "status": "timeout", "reason": f"timeout: no answer within {timeout:g} s"}
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = self.proc.returncode
        how = f"signal {signal.Signals(-rc).name}" if rc is not None and rc < 0 else f"exit code {rc}"
        return {**res, "status": "crash", "reason": f"crash: the worker died with {how}"}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except Exception:
            self.kill()


def run_cases(case_ids: List[str], root: str, backend: str = "kiln.backend", timeout: float = CASE_TIMEOUT,
              prepare_kwargs: Optional[Dict[str, Any]] = None, extra_path: Optional[List[str]] = None,
              log_path: Optional[str] = None,
              progress: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Dict[str, Any]]:
    """Runs the cases in a worker subprocess (restarted after a crash or timeout)."""
    log_path = log_path or os.path.join("/tmp", f"kiln_conformance_worker.{os.getpid()}.log")
    results: Dict[str, Dict[str, Any]] = {}
    worker: Optional[Worker] = None
    with open(log_path, "w") as log:
        try:
            for case_id in case_ids:
                if worker is None or not worker.alive():
                    worker = Worker(backend, root, prepare_kwargs or {}, extra_path or [], log)
                res = worker.run(case_id, timeout)
                if res["status"] in ("crash", "timeout"):
                    worker = None
                results[case_id] = res
                if progress:
                    progress(res)
        finally:
            if worker is not None:
                worker.close()
    return results


# ----------------------------------------------------------------------------------------------
# Allowlist, known failures, summaries
# ----------------------------------------------------------------------------------------------

def read_list(path: str) -> Dict[str, str]:
    """'category/test_name  # note' lines -> {id: note}; blank lines and '#' lines are skipped."""
    out: Dict[str, str] = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                case_id, _, note = line.partition("#")
                case_id = case_id.strip()
                if case_id:
                    out[case_id] = note.strip()
    return out


_MISSING = re.compile(r"Kiln has no kernel for \d+ op\(s\) of this model: (.*)")
_MISSING_ONE = re.compile(r"([\w.]+::)?(\w+) \(opset (\d+)\)")
_FRAME_MISSING = re.compile(r"no kernel for node '[^']*' \(([\w.]+::)?(\w+)\) at opset (\d+)")


def missing_ops(reason: str, opsets: bool = False) -> List[str]:
    """Op types a failure names as having no kernel ('Domain::Op' outside ai.onnx), with
    ' (opset N)' if asked."""
    m = _MISSING.search(reason)
    found = _MISSING_ONE.findall(m.group(1)) if m else _FRAME_MISSING.findall(reason)
    return [(d or "") + op + (f" (opset {v})" if opsets else "") for d, op, v in found]


def classify(res: Dict[str, Any]) -> str:
    """A short class for a failure: crash, timeout, missing op, wrong result, or the stage and
    exception of an error, with the case's special I/O kinds (sequence, optional, bfloat16)."""
    if res["status"] in ("crash", "timeout"):
        return res["status"]
    reason = res.get("reason", "")
    if missing_ops(reason):
        return "missing op"
    if res["status"] == "fail":
        return "wrong result"
    klass = f"{res.get('stage', '')} error ({reason.split(':', 1)[0]})"
    tags = res.get("tags", [])
    return klass + (f" with {'/'.join(tags)} I/O" if tags else "")


def note(res: Dict[str, Any]) -> str:
    """The one-line reason written to known_failures.txt."""
    klass = classify(res)
    if klass == "missing op":
        return "missing op: " + ", ".join(missing_ops(res.get("reason", ""), opsets=True))
    return f"{klass}: {res.get('reason', '')}"


def totals(results: Dict[str, Dict[str, Any]]) -> Dict[str, Tuple[int, int]]:
    """{category: (passed, total)} plus 'all'."""
    t: Dict[str, List[int]] = collections.OrderedDict((c, [0, 0]) for c in CATEGORIES)
    for case_id, r in results.items():
        cat = case_id.split("/", 1)[0]
        t.setdefault(cat, [0, 0])
        t[cat][1] += 1
        t[cat][0] += r["status"] == "pass"
    t["all"] = [sum(v[0] for v in t.values()), sum(v[1] for v in t.values())]
    return {k: (v[0], v[1]) for k, v in t.items() if v[1]}


def report(results: Dict[str, Dict[str, Any]], top: int = 40) -> str:
    """Totals per category, then failures grouped: missing ops by case count, other classes."""
    lines = ["conformance totals (passed / failed / total):"]
    for cat, (p, n) in totals(results).items():
        lines.append(f"  {cat:18s} {p:5d} / {n - p:5d} / {n:5d}  ({100.0 * p / n:.1f}% pass)")
    bad = {k: r for k, r in results.items() if r["status"] != "pass"}
    classes = collections.Counter(classify(r) for r in bad.values())
    lines.append("failures by class:")
    for k, n in classes.most_common():
        lines.append(f"  {n:5d}  {k}")
    ops: collections.Counter = collections.Counter()
    alone: collections.Counter = collections.Counter()
    versions: Dict[str, set] = collections.defaultdict(set)
    for r in bad.values():
        m = set(missing_ops(r.get("reason", "")))
        ops.update(m)
        if len(m) == 1:
            alone.update(m)
        for op_v in missing_ops(r.get("reason", ""), opsets=True):
            op, _, v = op_v.partition(" (opset ")
            versions[op].add(int(v.rstrip(")")))
    if ops:
        lines.append(f"missing ops by number of cases that need them (only-missing-op count in brackets), "
                     f"top {min(top, len(ops))} of {len(ops)}:")
        for op, n in ops.most_common(top):
            vs = ", ".join(str(v) for v in sorted(versions[op]))
            lines.append(f"  {n:4d} [{alone[op]:4d}]  {op} (opset {vs})")
    other = collections.Counter()
    for r in bad.values():
        if classify(r) not in ("missing op",):
            other[f"{classify(r)}: " + _generic(r.get("reason", ""))] += 1
    if other:
        lines.append("other failures, grouped by message:")
        for msg, n in other.most_common(top):
            lines.append(f"  {n:4d}  {msg}")
    slow = sorted(results.items(), key=lambda kv: -kv[1].get("seconds", 0.0))[:5]
    if slow:
        lines.append("slowest cases: " + ", ".join(f"{k} {r.get('seconds', 0.0):.2f} s" for k, r in slow))
    return "\n".join(lines)


def _generic(reason: str) -> str:
    """A failure message with its case-specific parts (names, numbers, shapes) blanked out."""
    s = re.sub(r"node '[^']*'", "node", reason)
    s = re.sub(r"'[^']*'", "'…'", s)
    s = re.sub(r"\(tensor\([a-z0-9]+\)\)", "(tensor(T))", s)
    s = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "N", s)
    s = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "[…]", s)
    return s[:160]


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--worker":
    worker_main(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
