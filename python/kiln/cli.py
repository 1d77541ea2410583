"""Kiln's command line: run a model once or a few times, or inspect what a model holds.

    kiln run model.onnx [--inputs in.npz] [--output out.npz] [--threads N] [--repeat N] [--warmup N]
                        [--dim name=value ...] [--seed N]
    kiln inspect model.onnx [--json]
    kiln profile model.onnx [--runs N] [--trace out.json] [--inputs in.npz] [--threads N] [--dim name=value ...]

Errors (a missing file, a bad model, inputs that do not match) print one clear line on stderr and
exit with status 1; bad command lines exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, TextIO

import numpy as np

import kiln
from kiln import _C
from kiln.capi.onnxruntime_pybind11_state import KilnError
from kiln.profiling import add_profile_command
from kiln.session import _type_string

# ONNX tensor types -> numpy, for making random inputs.
_NUMPY_TYPES = {
    "tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(uint16)": np.uint16,
    "tensor(int16)": np.int16, "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_,
    "tensor(float16)": np.float16, "tensor(double)": np.float64, "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
}
_DOMAIN_NAMES = {"": "ai.onnx", "ai.onnx": "ai.onnx"}


class CliError(Exception):
    """An error to report on one line, without a traceback."""


def _parse_dims(items: Sequence[str]) -> Dict[str, int]:
    dims = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.lstrip("-").isdigit() or int(value) < 0:
            raise CliError(f"--dim expects NAME=SIZE with a size >= 0, got '{item}'")
        dims[name] = int(value)
    return dims


def _shape_text(shape: Optional[List[Any]]) -> str:
    if shape is None:
        return "(unknown rank)"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _check_model_file(path: str) -> None:
    if not os.path.exists(path):
        raise CliError(f"model file '{path}' does not exist")
    if os.path.isdir(path):
        raise CliError(f"'{path}' is a folder, not a model file")


def _random_input(arg: "kiln.NodeArg", dims: Dict[str, int], rng: np.random.Generator, used_dims: set) -> np.ndarray:
    dtype = _NUMPY_TYPES.get(arg.type)
    if dtype is None:
        raise CliError(f"input '{arg.name}' is a {arg.type}, for which no random values are made: "
                       "give it with --inputs")
    shape = []
    for d in arg.shape:
        if isinstance(d, int):
            shape.append(d)
        else:  # a symbolic or unnamed dimension
            if d is not None:
                used_dims.add(d)
            shape.append(dims.get(d, 1) if d is not None else 1)
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    # 0 and 1 are valid token ids, masks, segment ids and indices of almost any model.
    return rng.integers(0, 2, shape).astype(dtype)


def _load_inputs(path: str, declared: List[Any]) -> Dict[str, np.ndarray]:
    if not os.path.exists(path):
        raise CliError(f"inputs file '{path}' does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            feeds = {k: z[k] for k in z.files}
    except Exception as e:  # numpy raises several kinds for a file that is not an npz
        raise CliError(f"cannot read inputs file '{path}' as .npz: {e}") from e
    names = [i.name for i in declared]
    unknown = [k for k in feeds if k not in names]
    if unknown:
        raise CliError(f"{path} has {', '.join(repr(k) for k in unknown)}, which the model does not take as input; "
                       f"the model's inputs are: {', '.join(names)}")
    missing = [n for n in names if n not in feeds]
    if missing:
        raise CliError(f"{path} lacks the model input(s) {', '.join(repr(n) for n in missing)}; "
                       f"the model's inputs are: {', '.join(names)}")
    return feeds


def _summary(a: np.ndarray) -> str:
    if a.size == 0:
        return "empty"
    if a.dtype == np.bool_:
        return f"{int(a.sum())} true of {a.size}"
    if a.dtype.kind in "fc" or a.dtype.kind in "iu":
        x = a.astype(np.float64)
        finite = np.isfinite(x)
        text = ""
        if not finite.all():
            text = f"{int((~finite).sum())} non-finite, "
            x = x[finite]
            if x.size == 0:
                return text.rstrip(", ")
        return text + f"min {x.min():.6g}  max {x.max():.6g}  mean {x.mean():.6g}  std {x.std():.6g}"
    flat = a.reshape(-1)
    return "values " + ", ".join(repr(v) for v in flat[:3]) + (" ..." if flat.size > 3 else "")


def _table(rows: List[List[str]], out: TextIO, indent: str = "  ") -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")


def _format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _format_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"


def cmd_run(a: argparse.Namespace, out: TextIO) -> int:
    _check_model_file(a.model)
    if a.repeat < 1 or a.warmup < 0:
        raise CliError(f"--repeat must be >= 1 and --warmup >= 0, got {a.repeat} and {a.warmup}")
    if a.threads < 0:
        raise CliError(f"--threads must be >= 0 (0: all cores), got {a.threads}")
    dims = _parse_dims(a.dim)
    opts = kiln.SessionOptions()
    opts.intra_op_num_threads = a.threads
    t0 = time.perf_counter()
    sess = kiln.InferenceSession(a.model, sess_options=opts)
    load_s = time.perf_counter() - t0
    threads = a.threads or os.cpu_count() or 1
    out.write(f"model: {a.model} (loaded in {_format_time(load_s)}, {threads} thread{'s' if threads != 1 else ''})\n")

    declared = sess.get_inputs()
    if a.inputs:
        feeds = _load_inputs(a.inputs, declared)
        source = a.inputs
    else:
        rng = np.random.default_rng(a.seed)
        used: set = set()
        feeds = {i.name: _random_input(i, dims, rng, used) for i in declared}
        unused = sorted(set(dims) - used)
        if unused:
            raise CliError(f"--dim {', '.join(unused)}: no input has such a dimension"
                           + (f" (symbolic dimensions: {', '.join(sorted(used))})" if used else ""))
        source = f"random, seed {a.seed}"
    out.write(f"inputs ({source}):\n")
    if feeds:
        _table([[n, str(np.asarray(v).dtype), _shape_text(list(np.shape(v)))] for n, v in feeds.items()], out)

    names = [o.name for o in sess.get_outputs()]
    for _ in range(a.warmup):
        sess.run(None, feeds)
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        results = sess.run(None, feeds)
        times.append(time.perf_counter() - t0)

    out.write("outputs:\n")
    rows = []
    for n, r in zip(names, results):
        if isinstance(r, list):
            rows.append([n, "sequence", f"{len(r)} tensors", ""])
        elif r is None:
            rows.append([n, "none", "", ""])
        else:
            rows.append([n, str(r.dtype), _shape_text(list(r.shape)), _summary(r)])
    if rows:
        _table(rows, out)
    out.write(f"latency over {a.repeat} run{'s' if a.repeat != 1 else ''} ({a.warmup} warm-up): "
              f"median {_format_time(statistics.median(times))}, min {_format_time(min(times))}\n")

    if a.output:
        arrays = {n: r for n, r in zip(names, results) if isinstance(r, np.ndarray)}
        skipped = [n for n, r in zip(names, results) if not isinstance(r, np.ndarray)]
        if skipped:
            raise CliError(f"cannot write {', '.join(skipped)} to .npz: only tensor outputs can be saved")
        try:
            with open(a.output, "wb") as f:  # a file object keeps numpy from appending .npz
                np.savez(f, **arrays)
        except OSError as e:
            raise CliError(f"cannot write '{a.output}': {e.strerror}") from e
        out.write(f"wrote {len(arrays)} output(s) to {a.output}\n")
    return 0


def cmd_inspect(a: argparse.Namespace, out: TextIO) -> int:
    _check_model_file(a.model)
    info = _C.inspect_model(a.model)
    if a.json:
        doc = dict(info)
        doc["inputs"] = [{"name": n, "type": _type_string(t), "shape": t["shape"]} for n, t in info["inputs"]]
        doc["outputs"] = [{"name": n, "type": _type_string(t), "shape": t["shape"]} for n, t in info["outputs"]]
        json.dump(doc, out, indent=1, default=str)
        out.write("\n")
        return 0
    out.write(f"model: {a.model} ({_format_bytes(os.path.getsize(a.model))})\n")
    producer = info["producer"].strip() or "(not given)"
    opsets = ", ".join(f"{_DOMAIN_NAMES.get(d, d)} {v}" for d, v in sorted(info["opsets"].items()))
    out.write(f"producer: {producer}\nIR version: {info['ir_version']}\nopsets: {opsets or '(none)'}\n")
    if info["checker"]:
        out.write(f"ONNX checker: {info['checker']}\n")
    for title in ("inputs", "outputs"):
        out.write(f"{title}:\n")
        if info[title]:
            _table([[n, _type_string(t), _shape_text(t["shape"])] for n, t in info[title]], out)
    out.write(f"initializers: {info['initializers']} ({_format_bytes(info['initializer_bytes'])})\n")
    counts = info["op_counts"]
    out.write(f"ops: {sum(counts.values())} nodes, {len(counts)} op types\n")
    unsupported = {u.split(" (")[0] for u in info["unsupported"]}  # entries read "Op (opset N)"
    if counts:
        rows = [[op, str(n), "not supported" if op in unsupported else ""]
                for op, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        _table(rows, out)
    if info["unsupported"]:
        out.write(f"Kiln does not support: {', '.join(info['unsupported'])}\n")
    else:
        out.write("Kiln supports every op of this model\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kiln", description="Run or inspect ONNX models with Kiln.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run a model on given or random inputs, print outputs and latency")
    run.add_argument("model", help="the .onnx file")
    run.add_argument("--inputs", help=".npz whose keys are the model's input names (default: random inputs)")
    run.add_argument("--output", help="write the outputs to this .npz (keys = output names)")
    run.add_argument("--threads", type=int, default=0, help="intra-op threads (default 0: all cores)")
    run.add_argument("--repeat", type=int, default=5, help="timed runs (default 5)")
    run.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    run.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                     help="size of a symbolic dimension for random inputs (default 1); repeatable")
    run.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    run.set_defaults(func=cmd_run)
    ins = sub.add_parser("inspect", help="print a model's inputs, outputs, opsets, ops and what Kiln lacks")
    ins.add_argument("model", help="the .onnx file")
    ins.add_argument("--json", action="store_true", help="print the summary as JSON")
    ins.set_defaults(func=cmd_inspect)
    add_profile_command(sub)
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line `argv` (default: sys.argv[1:]); returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.func(args, sys.stdout)
    except CliError as e:
        print(f"kiln {args.command}: error: {e}", file=sys.stderr)
    except KilnError as e:  # a bad model, a missing kernel, a bad input: the message says which
        print(f"kiln {args.command}: error: {type(e).__name__}: {e}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
