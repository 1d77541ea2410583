"""Profiling: ONNX Runtime's Chrome-trace file from end_profiling, its start time, and `kiln profile`."""

import json
import os
import time

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import kiln
from kiln.cli import main

W = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)


def mlp_model():
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"), helper.make_node("Relu", ["y"], ["z"], name="act"),
         helper.make_node("Shape", ["z"], ["s"], name="shape")], "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
        [numpy_helper.from_array(W, "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def profiled_session(tmp_path, source=None):
    so = kiln.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "trace")
    before = time.monotonic_ns()
    sess = kiln.InferenceSession(source or mlp_model().SerializeToString(), so)
    after = time.monotonic_ns()
    return sess, before, after


def test_end_profiling_writes_onnx_runtime_trace_events(tmp_path):
    sess, before, after = profiled_session(tmp_path)
    start = sess.get_profiling_start_time_ns()
    assert before <= start <= after
    ro = kiln.RunOptions()
    ro.run_tag = "second"
    sess.run(None, {"x": np.ones((2, 4), np.float32)})
    sess.run(None, {"x": np.ones((5, 4), np.float32)}, ro)
    path = sess.end_profiling()
    assert os.path.basename(path).startswith("trace_") and path.endswith(".json") and os.path.exists(path)
    with open(path) as f:
        events = json.load(f)
    assert isinstance(events, list)
    for e in events:
        assert set(e) == {"cat", "pid", "tid", "dur", "ts", "ph", "name", "args"}
        assert e["ph"] == "X" and e["pid"] == os.getpid() and e["dur"] >= 0 and e["ts"] >= 0
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    session = [e for e in events if e["cat"] == "Session"]
    names = [e["name"] for e in session]
    assert names[:2] == ["model_loading_array", "session_initialization"]
    runs = [e for e in session if e["name"] == "model_run"]
    assert len(runs) == 2 and runs[1]["args"] == {"run_tag": "second"}
    nodes = [e for e in events if e["cat"] == "Node"]
    assert [e["name"] for e in nodes] == ["mm_kernel_time", "act_kernel_time", "shape_kernel_time"] * 2
    mm = nodes[3]["args"]
    assert mm["op_name"] == "MatMul" and mm["provider"] == "CPUExecutionProvider"
    assert [list(d.values())[0] for d in mm["input_type_shape"]] == [[5, 4], [4, 3]]
    assert mm["output_type_shape"] == [{"float": [5, 3]}]
    assert nodes[5]["args"]["output_type_shape"] == [{"int64": [2]}]
    # every node of a run lies inside that run, and runs follow the session's creation
    init_end = session[1]["ts"] + session[1]["dur"]
    for run, its_nodes in zip(runs, (nodes[:3], nodes[3:])):
        assert run["ts"] >= init_end
        for n in its_nodes:
            assert run["ts"] <= n["ts"] and n["ts"] + n["dur"] <= run["ts"] + run["dur"]
    # profiling has ended: nothing more is written
    sess.run(None, {"x": np.ones((1, 4), np.float32)})
    assert sess.end_profiling() == ""


def test_profile_of_a_model_file(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(mlp_model().SerializeToString())
    sess, _, _ = profiled_session(tmp_path, str(path))
    sess.run(None, {"x": np.ones((1, 4), np.float32)})
    with open(sess.end_profiling()) as f:
        events = json.load(f)
    assert events[0]["name"] == "model_loading_uri"


def test_without_profiling():
    sess = kiln.InferenceSession(mlp_model().SerializeToString())
    sess.run(None, {"x": np.ones((1, 4), np.float32)})
    assert sess.end_profiling() == ""
    assert sess.get_profiling_start_time_ns() == 0


def test_kiln_profile_command(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    path.write_bytes(mlp_model().SerializeToString())
    trace = tmp_path / "out.json"
    assert main(["profile", str(path), "--runs", "4", "--trace", str(trace), "--dim", "batch=3"]) == 0
    text = capsys.readouterr().out
    assert "4 profiled runs (1 warm-up)" in text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["op", "type"])
    rows = {line.split()[0]: line.split() for line in lines[header + 1:] if line.strip() and "wrote" not in line}
    assert set(rows) == {"MatMul", "Relu", "Shape", "total"}
    assert rows["MatMul"][1:3] == ["1", "4"]  # one node, four calls
    assert rows["total"][1:3] == ["3", "12"] and rows["total"][-1] == "100.0%"
    shares = sum(float(r[-1].rstrip("%")) for k, r in rows.items() if k != "total")
    assert shares == pytest.approx(100, abs=0.2)
    with open(trace) as f:
        events = json.load(f)
    assert sum(e["cat"] == "Node" for e in events) == 12  # warm-up runs are not in the trace
    assert sum(e["name"] == "model_run" for e in events) == 4


def test_kiln_profile_command_errors(tmp_path, capsys):
    assert main(["profile", str(tmp_path / "missing.onnx")]) == 1
    assert "does not exist" in capsys.readouterr().err
    path = tmp_path / "m.onnx"
    path.write_bytes(mlp_model().SerializeToString())
    assert main(["profile", str(path), "--runs", "0"]) == 1
    assert "--runs must be >= 1" in capsys.readouterr().err
    assert main(["profile", str(path), "--dim", "nope=2"]) == 1
    assert "no input has such a dimension" in capsys.readouterr().err
