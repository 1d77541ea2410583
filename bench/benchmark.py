"""Kiln next to ONNX Runtime (and PyTorch) on the model zoo, interleaved in one run.

    .venv/bin/python bench/benchmark.py [--models resnet50,bert_base] [--threads 1,2] [--rounds 5]
        [--batch 8] [--no-torch] [--no-memory] [--out docs/benchmarks.md]
    .venv/bin/python bench/benchmark.py --first-run [--models ...] [--threads 1]
    .venv/bin/python bench/benchmark.py --fast-math --models resnet50,bert_base [--threads 1]

Each (model, threads) pair loads every runtime once, then runs `rounds` rounds; in each round
every runtime (in rotated order) runs a block of timed iterations. Ratios are taken per round
so slow drifts in machine load cancel. Before each block the process sleeps --settle-s seconds
(0.25): both runtimes' idle worker threads spin for a while after a run (ONNX Runtime's for tens
of milliseconds, OpenMP's for a few), and at 2 threads a block that starts while the other
runtime's threads still spin shares the cores with them (a chain of 1x1280x1280 products: Kiln
5.5 ms and ONNX Runtime 3.4 back to back, 2.4 and 2.6 with 0.2 s between).

Prints per model: median latency of each runtime, the Kiln / ONNX Runtime ratio, session
creation times (warm: in this process, after other sessions; cold: in a fresh one), peak memory,
and the largest difference from PyTorch's reference output. ONNX Runtime comes
from PyPI's `onnxruntime` (installed into the venv on first use); it is only a peer here, never
Kiln's engine.

Peak memory and cold creation: each runtime loads the model and runs it 10 times in a fresh
process of its own, three times, runtimes alternating. The peak column is such a process's
peak resident set (VmHWM) minus its resident set just before the session was created
(interpreter and libraries imported), in MB; the cold column is that process's session
creation, the one a user's script waits for, and the cold first run column that process's first
run: Kiln packs a convolution's weight for its primitive at the first run, not at creation, so
creation plus first run is the time a script waits for its first answer. All are medians of the
three processes.

--first-run: the cost of a new input shape. Each runtime runs a model's dynamic variant 5 times
at the zoo's shape, then once at the batch doubled (timed: the first run), then 20 more times
at that shape; the table gives the first and the second run against the median of the last 10
(Kiln may do part of a new shape's work before the second run: convolutions run their old
primitive on each half of a doubled batch at the first). The runtimes take turns per model, not
per block, and the next one's session creation outlasts the spinning
of the previous one's threads, so this mode does not pause (a pause would put the waking of
sleeping threads into the first run).

--fast-math: Kiln's sessions take `kiln.fast_math=1` (bfloat16 products with fp32 accumulation,
on AMX where the CPU has it) against ONNX Runtime in fp32; the last column is then the
norm-relative difference of Kiln's outputs from ONNX Runtime's fp32 ones, ||kiln - ort|| / ||ort||.
"""

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))

import build_zoo  # noqa: E402

import kiln  # noqa: E402

DEFAULT_MODELS = "mlp,lstm,squeezenet1_1,mobilenet_v3_large,efficientnet_b0,resnet50,vit_b_16,bert_base,gpt2"


def import_onnxruntime():
    try:
        return importlib.import_module("onnxruntime")
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "onnxruntime"])
        return importlib.import_module("onnxruntime")


class Runner:
    """One runtime: its session (the fastest of three creations is its load time) and timings."""

    def __init__(self, name, make, run):
        self.name, self.run = name, run
        self.load_s = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            self.state = make()
            self.load_s = min(self.load_s, time.perf_counter() - t0)
        self.round_ms = []


def batch_axis(name, value):
    """The batch axis of a zoo input: 1 for the time-major LSTM input, else 0."""
    return 1 if value.ndim == 3 and name == "input" and value.shape[-1] == 80 else 0


def batch_inputs(feeds, batch):
    """The zoo's inputs with exactly `batch` rows along the batch axis, their own rows repeated
    in turn (tiling by batch // rows gave 6 rows for 8 from 3, and none for 2)."""
    out = {}
    for k, v in feeds.items():
        axis = batch_axis(k, v)
        out[k] = np.take(v, np.arange(batch) % v.shape[axis], axis=axis) if v.shape[axis] else v
    return out


def model_and_feeds(name, batch):
    dyn = batch > 1
    p = build_zoo.ensure(build_zoo.variant_name(name, 17, dyn), log=lambda *a: None)
    feeds = build_zoo.load_npz(p["inputs"])
    return p, batch_inputs(feeds, batch) if dyn else feeds


def cpu_model():
    """The CPU's name from /proc/cpuinfo: the project's machines have been Xeons and EPYCs, whose
    figures differ (no AMX on the EPYC), so every table says which it was made on."""
    name, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    isa = [f for f in ("avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return f"{name} ({', '.join(isa) or 'no AVX-512'})"


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def session_maker(runtime, path, threads, ort=None, fast_math=False):
    """A function that creates the runtime's session for the model at `path` on `threads` threads."""
    if runtime == "kiln":
        so = kiln.SessionOptions()
        so.intra_op_num_threads = threads
        if fast_math:
            so.add_session_config_entry("kiln.fast_math", "1")
        return lambda: kiln.InferenceSession(path, so)
    oo = ort.SessionOptions()
    oo.intra_op_num_threads = threads
    oo.inter_op_num_threads = 1
    return lambda: ort.InferenceSession(path, oo, providers=["CPUExecutionProvider"])


def peak_child(runtime, name, threads, batch, fast_math):
    """In a fresh process: load and run the model, print the peak resident memory it added (MB),
    the session creation time and the first run's (ms)."""
    p, feeds = model_and_feeds(name, batch)
    make = session_maker(runtime, p["onnx"], threads, import_onnxruntime() if runtime == "ort" else None, fast_math)
    base = status_kb("VmRSS")
    t0 = time.perf_counter()
    sess = make()
    cold_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    sess.run(None, feeds)
    first_ms = (time.perf_counter() - t0) * 1e3
    for _ in range(9):
        sess.run(None, feeds)
    print((status_kb("VmHWM") - base) / 1024, cold_ms, first_ms)


def fresh_processes(name, threads, batch, fast_math, count=3):
    """{runtime: (peak MB, cold creation ms, first run ms)}, medians over `count` fresh processes each."""
    got = {"kiln": [], "ort": []}
    for _ in range(count):
        for rt in got:
            out = subprocess.run([sys.executable, __file__, "--peak-child", rt, name, str(threads), str(batch),
                                  str(int(fast_math))],
                                 capture_output=True, text=True, check=True)
            got[rt].append([float(v) for v in out.stdout.split()[-3:]])
    return {rt: tuple(statistics.median(v[i] for v in vals) for i in range(3)) for rt, vals in got.items()}


def bench_model(name, threads, args, ort):
    p, feeds = model_and_feeds(name, args.batch)

    runners = [Runner(rt, session_maker(rt, p["onnx"], threads, ort, args.fast_math), lambda s: s.run(None, feeds))
               for rt in ("kiln", "ort")]
    if args.torch:
        import torch

        torch.set_num_threads(threads)
        model = build_zoo.torch_model(name, cache=True)
        runners.append(Runner("torch", lambda: model, lambda m: build_zoo.run_torch(m, feeds)))

    outputs = {r.name: r.run(r.state) for r in runners}
    if args.fast_math:  # how far bfloat16 took Kiln from ONNX Runtime's fp32
        ref, dist = outputs["ort"], lambda a, b: np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)
    else:
        ref, dist = outputs.get("torch") or outputs["ort"], lambda a, b: np.max(np.abs(a - b))
    diff = max((float(dist(np.asarray(a, np.float64), b)) for a, b in zip(outputs["kiln"], ref) if np.asarray(b).size),
               default=0.0)

    # Block size: about block_s seconds of the slowest runtime.
    t0 = time.perf_counter()
    for r in runners:
        r.run(r.state)
    per_iter = (time.perf_counter() - t0) / len(runners)
    iters = max(3, int(args.block_s / max(per_iter, 1e-6)))
    ratios = []
    for k in range(args.rounds):
        order = runners[k % len(runners):] + runners[:k % len(runners)]
        for r in order:
            time.sleep(args.settle_s)  # the other runtime's idle threads stop spinning
            r.run(r.state)  # warm after the other runtime ran
            times = []
            for _ in range(iters):
                t = time.perf_counter()
                r.run(r.state)
                times.append(time.perf_counter() - t)
            r.round_ms.append(statistics.median(times) * 1e3)
        ratios.append(runners[0].round_ms[-1] / runners[1].round_ms[-1])
    row = {"model": name, "threads": threads, "batch": args.batch, "diff": diff,
           "ratio": statistics.median(ratios)}
    for r in runners:
        row[r.name] = statistics.median(r.round_ms)
        row[r.name + "_load"] = r.load_s * 1e3
    if args.memory:
        del runners, outputs
        for rt, (mb, cold_ms, first_ms) in fresh_processes(name, threads, args.batch, args.fast_math).items():
            row[rt + "_mb"], row[rt + "_cold"], row[rt + "_first"] = mb, cold_ms, first_ms
    return row


def first_run(name, threads, ort):
    """Per runtime: (first run at a doubled batch, second run, warm run at it) in ms."""
    p = build_zoo.ensure(build_zoo.variant_name(name, 17, True), log=lambda *a: None)
    feeds = build_zoo.load_npz(p["inputs"])
    name0, first = next(iter(feeds.items()))
    doubled = batch_inputs(feeds, 2 * first.shape[batch_axis(name0, first)])
    out = {}
    for rt in ("kiln", "ort"):
        sess = session_maker(rt, p["onnx"], threads, ort)()
        for _ in range(5):
            sess.run(None, feeds)
        t = time.perf_counter()
        sess.run(None, doubled)
        first = time.perf_counter() - t
        times = []
        for _ in range(20):
            t = time.perf_counter()
            sess.run(None, doubled)
            times.append(time.perf_counter() - t)
        out[rt] = (first * 1e3, times[0] * 1e3, statistics.median(times[10:]) * 1e3)
    return out


def main_first_run(args, ort):
    print("| model | threads | kiln first ms | kiln warm ms | kiln first/warm | kiln second/warm | ort first ms | "
          "ort warm ms | ort first/warm | ort second/warm |")
    print("|" + "---|" * 10)
    for threads in [int(t) for t in args.threads.split(",")]:
        for name in args.models.split(","):
            r = first_run(name, threads, ort)
            (kf, ks, kw), (of, os_, ow) = r["kiln"], r["ort"]
            print(f"| {name} | {threads} | {kf:.2f} | {kw:.2f} | {kf / kw:.2f} | {ks / kw:.2f} | {of:.2f} | {ow:.2f} | "
                  f"{of / ow:.2f} | {os_ / ow:.2f} |", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--block-s", type=float, default=0.5)
    ap.add_argument("--settle-s", type=float, default=0.25, help="pause before each timed block")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--no-torch", dest="torch", action="store_false")
    ap.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory processes")
    ap.add_argument("--out", help="append the table to this markdown file")
    ap.add_argument("--first-run", action="store_true", help="time the first run at a new input shape")
    ap.add_argument("--fast-math", action="store_true", help="Kiln in bfloat16 (kiln.fast_math=1), ONNX Runtime in fp32")
    ap.add_argument("--peak-child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.peak_child:
        rt, name, threads, batch, fast_math = args.peak_child
        return peak_child(rt, name, int(threads), int(batch), fast_math == "1")
    ort = import_onnxruntime()
    print(f"Machine: {cpu_model()}, {os.cpu_count()} CPUs, ONNX Runtime {ort.__version__}"
          + (", Kiln with kiln.fast_math=1 (bfloat16)" if args.fast_math else "") + "\n")
    if args.first_run:
        return main_first_run(args, ort)
    rows = []
    header = ("| model | threads | batch | kiln ms | ort ms | torch ms | kiln/ort | kiln load ms | ort load ms | "
              "kiln cold load ms | ort cold load ms | kiln cold first run ms | ort cold first run ms | "
              "kiln peak MB | ort peak MB | " +
              ("relative diff from ort fp32 |" if args.fast_math else "max abs diff |"))
    print(header)
    print("|" + "---|" * 16)
    lines = []
    for threads in [int(t) for t in args.threads.split(",")]:
        for name in args.models.split(","):
            try:
                row = bench_model(name, threads, args, ort)
            except Exception as e:  # a model Kiln cannot run yet still leaves the others measured
                print(f"| {name} | {threads} | {args.batch} | error: {type(e).__name__}: {str(e)[:120]} |")
                continue
            rows.append(row)
            line = (f"| {name} | {threads} | {args.batch} | {row['kiln']:.2f} | {row['ort']:.2f} | "
                    f"{row.get('torch', float('nan')):.2f} | {row['ratio']:.3f} | {row['kiln_load']:.0f} | "
                    f"{row['ort_load']:.0f} | {row.get('kiln_cold', float('nan')):.0f} | "
                    f"{row.get('ort_cold', float('nan')):.0f} | {row.get('kiln_first', float('nan')):.1f} | "
                    f"{row.get('ort_first', float('nan')):.1f} | {row.get('kiln_mb', float('nan')):.0f} | "
                    f"{row.get('ort_mb', float('nan')):.0f} | {row['diff']:.2e} |")
            print(line, flush=True)
            lines.append(line)
    for threads in sorted({r["threads"] for r in rows}):
        rs = [r["ratio"] for r in rows if r["threads"] == threads]
        gm = float(np.exp(np.mean(np.log(rs))))
        line = f"geometric mean kiln/ort at {threads} thread(s): {gm:.3f} over {len(rs)} models"
        print(line)
        lines.append("")
        lines.append(line)
    if args.out:
        with open(args.out, "a") as f:
            f.write(f"\n## {time.strftime('%Y-%m-%d %H:%M')} `bench/benchmark.py {' '.join(argv or sys.argv[1:])}`\n\n")
            f.write(header + "\n|" + "---|" * 16 + "\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
