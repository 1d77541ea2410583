"""Kiln next to PyTorch on ResNet-50: the same seeded model and input through both, the largest
difference of the outputs and the median latency of each.

    .venv/bin/python scripts/demo.py [--model resnet50] [--opset 17] [--threads N] [--runs 10] [--warmup 3]

The model comes from the zoo (tests/models/build_zoo.py), built on the first run and cached.
Exit status: 0 when Kiln's outputs match PyTorch's (rtol 1e-4, atol 1e-5; where fp32 rounding alone
exceeds that, Kiln must be as close to the float64 answer as PyTorch's fp32 output), 1 when they
do not or Kiln fails, 2 when Kiln lacks a kernel the model needs (PyTorch's numbers are shown).
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))

import build_zoo  # noqa: E402
import torch  # noqa: E402

import kiln  # noqa: E402
from kiln.capi.onnxruntime_pybind11_state import KilnError  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def timed(fn, warmup, runs):
    """(last result, median seconds, min seconds) over `runs` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, statistics.median(times), min(times)


def max_abs_diff(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b))) if b.size else 0.0


def ms(seconds):
    return f"{seconds * 1e3:9.2f} ms"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet50", choices=list(build_zoo.SPECS))
    ap.add_argument("--opset", type=int, default=17, choices=build_zoo.OPSETS)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--runs", type=int, default=10, help="timed runs of each engine")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    a = ap.parse_args(argv)
    if a.threads < 1 or a.runs < 1 or a.warmup < 0:
        ap.error("--threads and --runs must be >= 1, --warmup >= 0")

    name = build_zoo.variant_name(a.model, a.opset, False)
    spec = build_zoo.SPECS[a.model]
    print(f"Kiln {kiln.__version__} and PyTorch {torch.__version__} on {a.model} ({spec.notes}), "
          f"ONNX opset {a.opset}, {a.threads} thread(s)")
    torch.set_num_threads(a.threads)
    # The same seeded model the zoo exports, for PyTorch eager (its weights are cached beside the zoo).
    model = build_zoo.torch_model(a.model, cache=True)
    files = build_zoo.paths(name)
    if not all(os.path.exists(p) for p in files.values()):
        print(f"building {name} into {build_zoo.zoo_dir()} (first run only)...", flush=True)
        t0 = time.perf_counter()
        files = build_zoo.ensure(name, log=lambda msg: print("  " + msg.strip(), flush=True))
        print(f"  done in {time.perf_counter() - t0:.0f} s")
    feeds = build_zoo.load_npz(files["inputs"])
    print("input: " + ", ".join(f"{k} {v.dtype}{list(v.shape)}" for k, v in feeds.items()))

    args = tuple(torch.from_numpy(v) for v in feeds.values())

    def torch_run():
        with torch.no_grad():
            out = model(*args)
        return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]

    torch_out, torch_med, torch_min = timed(torch_run, a.warmup, a.runs)
    print(f"PyTorch eager  median {ms(torch_med)}  min {ms(torch_min)}")
    if a.threads == 1:
        print("  (at one thread PyTorch 1.13 runs 1x1 convolutions through the system BLAS instead of oneDNN, "
              "which is slow with Debian's reference BLAS)")

    missing = kiln._C.inspect_model(files["onnx"])["unsupported"]
    if missing:
        print(f"\nKiln cannot run {a.model} yet: it has no kernel for {', '.join(missing)}.\n"
              f"Those ops are being written; `kiln inspect {files['onnx']}` lists what the model needs.")
        return 2

    opts = kiln.SessionOptions()
    opts.intra_op_num_threads = a.threads
    try:
        t0 = time.perf_counter()
        sess = kiln.InferenceSession(files["onnx"], sess_options=opts)
        load_s = time.perf_counter() - t0
        kiln_out, kiln_med, kiln_min = timed(lambda: sess.run(None, feeds), a.warmup, a.runs)
    except KilnError as e:
        print(f"\nKiln failed on {a.model}: {type(e).__name__}: {e}")
        return 1
    speed = torch_med / kiln_med
    print(f"Kiln           median {ms(kiln_med)}  min {ms(kiln_min)}  "
          f"({speed:.2f}x {'faster' if speed >= 1 else 'slower'} than PyTorch; session created in {load_s:.2f} s)")

    exact = build_zoo.load_npz(files["ref64"])
    ok = True
    for out_name, got, want in zip([o.name for o in sess.get_outputs()], kiln_out, torch_out):
        if got.shape != want.shape:
            print(f"output {out_name}: Kiln gave shape {list(got.shape)}, PyTorch {list(want.shape)}")
            ok = False
            continue
        diff = max_abs_diff(got, want)
        beyond = int(np.sum(~np.isclose(got, want, rtol=RTOL, atol=ATOL)))
        print(f"output {out_name} {list(got.shape)}: max abs difference Kiln vs PyTorch {diff:.3g}, "
              f"{beyond} of {want.size} values beyond rtol {RTOL:g}/atol {ATOL:g}")
        if beyond:
            # fp32 rounding through a deep net can exceed the tolerance by itself: measure both
            # engines against the exact (float64) answer.
            kiln_err, torch_err = max_abs_diff(got, exact[out_name]), max_abs_diff(want, exact[out_name])
            rounding = kiln_err <= 2 * torch_err
            print(f"  from the float64 answer: Kiln {kiln_err:.3g}, PyTorch fp32 {torch_err:.3g} -> "
                  + ("as accurate as PyTorch: the difference is fp32 rounding" if rounding else "Kiln is WRONG"))
            ok = ok and rounding
        if got.ndim == 2 and got.shape[1] > 5:
            top, top_torch = np.argsort(-got, axis=1)[:, :5], np.argsort(-want, axis=1)[:, :5]
            same = "same" if np.array_equal(top, top_torch) else "NOT the same"
            print(f"  top-5 classes {top[0].tolist()} ({same} as PyTorch)")
    print("OK: Kiln matches PyTorch" if ok else "FAILED: Kiln's outputs differ from PyTorch's")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
