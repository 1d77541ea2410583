"""The `kiln` command line: run (given, random and sized inputs, outputs file, latency) and inspect,
and clear errors with a non-zero status."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import kiln
from kiln.cli import main

RNG = np.random.default_rng(3)
W = RNG.standard_normal((4, 3)).astype(np.float32)
B = RNG.standard_normal(3).astype(np.float32)


def save(model, tmp_path, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return str(path)


def mlp(tmp_path):
    """z = relu(x @ W + b), x: float [batch, 4]; s = ids + ids, ids: int64 [batch, seq]."""
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Add", ["y", "b"], ["yb"]),
         helper.make_node("Relu", ["yb"], ["z"]), helper.make_node("Add", ["ids", "ids"], ["s"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("s", TensorProto.INT64, ["batch", "seq"])],
        [numpy_helper.from_array(W, "w"), numpy_helper.from_array(B, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="cli-test",
                          producer_version="2.5")
    return save(m, tmp_path)


def unsupported(tmp_path):
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Frobnicate", ["r"], ["y"], domain="com.example")],
        "odd", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)])
    return save(m, tmp_path, "odd.onnx")


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_random_inputs_prints_outputs_and_latency(tmp_path, capsys):
    code, out, err = run_cli(capsys, "run", mlp(tmp_path), "--repeat", 3, "--warmup", 2, "--threads", 1)
    assert code == 0, err
    assert "inputs (random, seed 0):" in out and "1 thread)" in out
    assert "x    float32  [1, 4]" in out and "ids  int64    [1, 1]" in out
    assert "z  float32  [1, 3]  min " in out and "s  int64    [1, 1]" in out
    assert "latency over 3 runs (2 warm-up): median " in out and ", min " in out


def test_run_dims_size_symbolic_axes_and_output_file(tmp_path, capsys):
    path = mlp(tmp_path)
    dest = tmp_path / "out.npz"
    code, out, err = run_cli(capsys, "run", path, "--dim", "batch=5", "--dim", "seq=7", "--output", dest,
                             "--seed", 9)
    assert code == 0, err
    assert "x    float32  [5, 4]" in out and "ids  int64    [5, 7]" in out
    assert f"wrote 2 output(s) to {dest}" in out
    with np.load(dest) as z:
        assert sorted(z.files) == ["s", "z"]
        assert z["z"].shape == (5, 3) and z["s"].shape == (5, 7)
        assert set(np.unique(z["s"])) <= {0, 2}  # random ids are 0 or 1
    # the same seed gives the same inputs, so the same outputs
    dest2 = tmp_path / "out2.npz"
    assert run_cli(capsys, "run", path, "--dim", "batch=5", "--dim", "seq=7", "--output", dest2, "--seed", 9)[0] == 0
    with np.load(dest) as a, np.load(dest2) as b:
        np.testing.assert_array_equal(a["z"], b["z"])


def test_run_given_inputs_matches_numpy(tmp_path, capsys):
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    ids = np.arange(6, dtype=np.int64).reshape(2, 3)
    feeds = tmp_path / "in.npz"
    np.savez(feeds, x=x, ids=ids)
    dest = tmp_path / "o.npz"
    code, out, err = run_cli(capsys, "run", mlp(tmp_path), "--inputs", feeds, "--output", dest, "--repeat", 1)
    assert code == 0, err
    assert f"inputs ({feeds}):" in out and "latency over 1 run (1 warm-up)" in out
    with np.load(dest) as z:
        np.testing.assert_allclose(z["z"], np.maximum(x @ W + B, 0), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(z["s"], ids * 2)


def test_run_inputs_with_wrong_or_missing_names(tmp_path, capsys):
    path = mlp(tmp_path)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x=np.zeros((1, 4), np.float32), idz=np.zeros((1, 2), np.int64))
    code, out, err = run_cli(capsys, "run", path, "--inputs", wrong)
    assert code == 1
    assert "has 'idz', which the model does not take as input; the model's inputs are: x, ids" in err
    missing = tmp_path / "missing.npz"
    np.savez(missing, x=np.zeros((1, 4), np.float32))
    code, _, err = run_cli(capsys, "run", path, "--inputs", missing)
    assert code == 1 and "lacks the model input(s) 'ids'" in err
    code, _, err = run_cli(capsys, "run", path, "--inputs", tmp_path / "absent.npz")
    assert code == 1 and "absent.npz' does not exist" in err
    not_npz = tmp_path / "text.npz"
    not_npz.write_text("hello")
    code, _, err = run_cli(capsys, "run", path, "--inputs", not_npz)
    assert code == 1 and "cannot read inputs file" in err


def test_run_inputs_of_wrong_dtype_or_shape_report_kiln_error(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((1, 5), np.float32), ids=np.zeros((1, 2), np.int64))
    code, _, err = run_cli(capsys, "run", mlp(tmp_path), "--inputs", bad)
    assert code == 1 and err.startswith("kiln run: error: InvalidArgument:") and "Expected: 4" in err


def test_run_argument_errors(tmp_path, capsys):
    path = mlp(tmp_path)
    code, _, err = run_cli(capsys, "run", path, "--dim", "batch")
    assert code == 1 and "--dim expects NAME=SIZE" in err
    code, _, err = run_cli(capsys, "run", path, "--dim", "height=3")
    assert code == 1 and "--dim height: no input has such a dimension (symbolic dimensions: batch, seq)" in err
    code, _, err = run_cli(capsys, "run", path, "--repeat", 0)
    assert code == 1 and "--repeat must be >= 1" in err
    code, _, err = run_cli(capsys, "run", path, "--output", tmp_path / "no-such-dir" / "o.npz")
    assert code == 1 and "cannot write" in err
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_missing_garbage_and_unsupported_models(tmp_path, capsys):
    for cmd in ("run", "inspect"):
        code, out, err = run_cli(capsys, cmd, tmp_path / "nope.onnx")
        assert code == 1 and out == ""
        assert err == f"kiln {cmd}: error: model file '{tmp_path / 'nope.onnx'}' does not exist\n"
    code, _, err = run_cli(capsys, "run", tmp_path)
    assert code == 1 and "is a folder" in err
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not a model at all")
    code, _, err = run_cli(capsys, "run", garbage)
    assert code == 1 and err.startswith("kiln run: error: InvalidProtobuf")
    code, _, err = run_cli(capsys, "run", unsupported(tmp_path))
    assert code == 1 and "NotImplemented" in err and "com.example::Frobnicate" in err


def test_inspect_prints_signature_opsets_ops_and_support(tmp_path, capsys):
    code, out, err = run_cli(capsys, "inspect", mlp(tmp_path))
    assert code == 0, err
    for line in ("producer: cli-test 2.5", "opsets: ai.onnx 17", "initializers: 2 (60 B)",
                 "ops: 4 nodes, 3 op types", "Kiln supports every op of this model"):
        assert line + "\n" in out
    assert "IR version: " in out
    assert "x    tensor(float)  [batch, 4]" in out and "ids  tensor(int64)  [batch, seq]" in out
    assert "z  tensor(float)  [batch, 3]" in out
    assert out.index("Add     2") < out.index("MatMul  1") < out.index("Relu    1")  # most frequent first

    code, out, err = run_cli(capsys, "inspect", unsupported(tmp_path))
    assert code == 0, err
    assert "opsets: ai.onnx 13, com.example 1" in out
    assert "com.example::Frobnicate  1  not supported" in out
    assert "Kiln does not support: com.example::Frobnicate" in out


def test_inspect_json(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "inspect", mlp(tmp_path), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["inputs"] == [{"name": "x", "type": "tensor(float)", "shape": ["batch", 4]},
                             {"name": "ids", "type": "tensor(int64)", "shape": ["batch", "seq"]}]
    assert doc["op_counts"] == {"Add": 2, "MatMul": 1, "Relu": 1} and doc["unsupported"] == []
    assert doc["initializer_bytes"] == W.nbytes + B.nbytes


def test_python_dash_m_kiln(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-m", "kiln", "inspect", mlp(tmp_path)], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Kiln supports every op of this model" in r.stdout
    r = subprocess.run([sys.executable, "-m", "kiln", "run", str(tmp_path / "nope.onnx")], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_inspect_reports_what_onnx_checker_objects_to_and_a_session_still_runs(tmp_path, capsys):
    # An output declared without a type: ONNX's checker objects, ONNX Runtime and Kiln run it.
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "untyped",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])], [helper.ValueInfoProto(name="y")])
    path = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path, "untyped.onnx")
    code, out, err = run_cli(capsys, "inspect", path)
    assert code == 0, err
    assert "ONNX checker: " in out and "type" in out.split("ONNX checker: ")[1]
    code, out, err = run_cli(capsys, "inspect", mlp(tmp_path))
    assert code == 0 and "ONNX checker" not in out
    y = kiln.InferenceSession(path).run(None, {"x": np.array([-1, 2], np.float32)})[0]
    np.testing.assert_array_equal(y, [0, 2])
