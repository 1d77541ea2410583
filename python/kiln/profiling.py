"""Profiling: ONNX Runtime's Chrome-trace files and Kiln's per-op-type summary.

With ``SessionOptions.enable_profiling`` the engine records one event per node run and one per
model run. ``InferenceSession.end_profiling()`` writes them, with the session's loading and
initialization, as a JSON array of Chrome trace events in ONNX Runtime's format (open it in
chrome://tracing or Perfetto, or read it with ONNX Runtime's profile tools).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from typing import Any, Dict, List, TextIO

_PROVIDER = "CPUExecutionProvider"


class ProfileState:
    """The profile of one session: Python-side times of its creation and the engine's events.

    `t0_ns` (time.monotonic_ns) is the profiling start, just before the model is loaded;
    `core_start_ns` is the engine profiler's zero on the same clock; `t1_ns` the end of creation.
    """

    def __init__(self, t0_ns: int, t1_ns: int, core_start_ns: int, from_file: bool) -> None:
        self.t0_ns, self.t1_ns, self.core_start_ns = t0_ns, t1_ns, core_start_ns
        self.from_file = from_file
        self.tid = threading.get_native_id()
        self.nodes: List[Dict[str, Any]] = []
        self.runs: List[Dict[str, Any]] = []
        self.ended = False

    def collect(self, core: Any) -> None:
        """Moves the events the engine recorded since the last call into this profile."""
        taken = core.take_profile()
        self.nodes.extend(taken["nodes"])
        self.runs.extend(taken["runs"])

    def clear(self) -> None:
        self.nodes.clear()
        self.runs.clear()

    def events(self) -> List[Dict[str, Any]]:
        """The trace events, times in microseconds since the profiling start."""
        pid = os.getpid()
        offset = (self.core_start_ns - self.t0_ns) // 1000  # engine times -> profile times

        def event(cat: str, name: str, ts: int, dur: int, tid: int, args: Dict[str, Any]) -> Dict[str, Any]:
            return {"cat": cat, "pid": pid, "tid": tid, "dur": int(dur), "ts": int(ts), "ph": "X", "name": name,
                    "args": args}

        out = [
            event("Session", "model_loading_uri" if self.from_file else "model_loading_array", 0, offset, self.tid, {}),
            event("Session", "session_initialization", offset, (self.t1_ns - self.core_start_ns) // 1000, self.tid,
                  {}),
        ]
        for n in self.nodes:
            in_types = n.get("input_types") or ["undefined"] * len(n["input_shapes"])
            args = {
                "op_name": n["op_type"],
                "provider": _PROVIDER,
                "input_type_shape": [{t: list(s)} for t, s in zip(in_types, n["input_shapes"])],
                "output_type_shape": [{t: list(s)} for t, s in zip(n["output_types"], n["output_shapes"])],
            }
            # Node events come from the engine's threads; the hash of the thread id names them.
            out.append(event("Node", f"{n['name'] or n['op_type']}_kernel_time", n["ts"] + offset, n["dur"],
                             n["thread"] & 0x7FFFFFFF, args))
        for r in self.runs:
            out.append(event("Session", "model_run", r["ts"] + offset, r["dur"], self.tid,
                             {"run_tag": r["tag"]} if r["tag"] else {}))
        out.sort(key=lambda e: e["ts"])
        return out

    def write(self, path: str) -> str:
        with open(path, "w") as f:
            f.write("[\n")
            f.write(",\n".join(json.dumps(e, separators=(",", ":")) for e in self.events()))
            f.write("\n]\n")
        return path


def trace_file_name(prefix: str) -> str:
    """ONNX Runtime's profile file name: the prefix, '_', the local time, '.json'."""
    return f"{prefix}_{time.strftime('%Y-%m-%d_%H-%M-%S')}.json"


def op_type_summary(nodes: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Per op type: node count, calls and total time (microseconds), slowest type first."""
    by_type: Dict[str, Dict[str, Any]] = {}
    for n in nodes:
        s = by_type.setdefault(n["op_type"], {"op_type": n["op_type"], "names": set(), "calls": 0, "us": 0})
        s["names"].add(n["name"])
        s["calls"] += 1
        s["us"] += n["dur"]
    rows = sorted(by_type.values(), key=lambda s: (-s["us"], s["op_type"]))
    return [{"op_type": s["op_type"], "nodes": len(s["names"]), "calls": s["calls"], "us": s["us"]} for s in rows]


def add_profile_command(sub: Any) -> None:
    """Adds `kiln profile` to the command line's subcommands."""
    p = sub.add_parser("profile", help="run a model with profiling on; print time per op type, write a trace")
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--runs", type=int, default=10, help="profiled runs (default 10)")
    p.add_argument("--warmup", type=int, default=1, help="unprofiled runs first (default 1)")
    p.add_argument("--trace", help="write ONNX Runtime's Chrome-trace JSON of the profiled runs to this file")
    p.add_argument("--inputs", help=".npz whose keys are the model's input names (default: random inputs)")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (default 0: all cores)")
    p.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                   help="size of a symbolic dimension for random inputs (default 1); repeatable")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.set_defaults(func=cmd_profile)


def cmd_profile(a: argparse.Namespace, out: TextIO) -> int:
    import numpy as np

    import kiln
    from kiln import cli

    cli._check_model_file(a.model)
    if a.runs < 1 or a.warmup < 0:
        raise cli.CliError(f"--runs must be >= 1 and --warmup >= 0, got {a.runs} and {a.warmup}")
    if a.threads < 0:
        raise cli.CliError(f"--threads must be >= 0 (0: all cores), got {a.threads}")
    dims = cli._parse_dims(a.dim)
    opts = kiln.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.enable_profiling = True
    sess = kiln.InferenceSession(a.model, sess_options=opts)
    declared = sess.get_inputs()
    if a.inputs:
        feeds = cli._load_inputs(a.inputs, declared)
    else:
        rng = np.random.default_rng(a.seed)
        used: set = set()
        feeds = {i.name: cli._random_input(i, dims, rng, used) for i in declared}
        unused = sorted(set(dims) - used)
        if unused:
            raise cli.CliError(f"--dim {', '.join(unused)}: no input has such a dimension")
    for _ in range(a.warmup):
        sess.run(None, feeds)
    profile = sess._profile
    profile.collect(sess._sess)
    profile.clear()  # warm-up runs prepare shapes and memory plans: not what is measured
    for _ in range(a.runs):
        sess.run(None, feeds)
    profile.collect(sess._sess)

    run_ms = [r["dur"] / 1000 for r in profile.runs]
    out.write(f"model: {a.model}\n{a.runs} profiled run{'s' if a.runs != 1 else ''} ({a.warmup} warm-up): "
              f"median {statistics.median(run_ms):.3f} ms, min {min(run_ms):.3f} ms per run\n")
    rows = op_type_summary(profile.nodes)
    total_us = sum(r["us"] for r in rows)
    table = [["op type", "nodes", "calls", "total ms", "ms/run", "share"]]
    for r in rows:
        table.append([r["op_type"], str(r["nodes"]), str(r["calls"]), f"{r['us'] / 1000:.3f}",
                      f"{r['us'] / 1000 / a.runs:.3f}", f"{100 * r['us'] / max(total_us, 1):.1f}%"])
    table.append(["total", str(sum(r["nodes"] for r in rows)), str(sum(r["calls"] for r in rows)),
                  f"{total_us / 1000:.3f}", f"{total_us / 1000 / a.runs:.3f}", "100.0%"])
    cli._table(table, out)
    if a.trace:
        try:
            profile.write(a.trace)
        except OSError as e:
            raise cli.CliError(f"cannot write '{a.trace}': {e.strerror}") from e
        out.write(f"wrote trace of {len(profile.nodes)} node events to {a.trace}\n")
    return 0
