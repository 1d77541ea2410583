"""Model loading: external data (and its path checks), hostile files, IR and opset ranges."""

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import kiln
from kiln.capi import onnxruntime_pybind11_state as state


def matmul_model(w, ir_version=8, opset=17):
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, w.shape[0]])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, w.shape[1]])],
                          [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir_version
    return m


def with_location(m, location):
    t = m.graph.initializer[0]
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    t.external_data.add(key="location", value=location)
    t.ClearField("raw_data")
    return m


def test_external_data_loads_from_the_model_folder(tmp_path):
    w = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    m = matmul_model(w)
    path = tmp_path / "model.onnx"
    onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
                    size_threshold=0)
    assert (tmp_path / "weights.bin").exists()
    x = np.ones((1, 64), np.float32)
    cwd = os.getcwd()
    try:
        os.chdir("/")  # resolved against the model's folder, not the current one
        (y,) = kiln.InferenceSession(str(path)).run(None, {"x": x})
    finally:
        os.chdir(cwd)
    np.testing.assert_allclose(y, x @ w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("location, message", [("../escape.bin", "leaves the model's folder"),
                                               ("/etc/passwd", "absolute path"),
                                               ("missing.bin", "cannot be opened")])
def test_external_data_paths_are_confined(tmp_path, location, message):
    m = with_location(matmul_model(np.zeros((4, 2), np.float32)), location)
    (tmp_path / "escape.bin").write_bytes(b"\0" * 32)
    sub = tmp_path / "models"
    sub.mkdir()
    path = sub / "model.onnx"
    path.write_bytes(m.SerializeToString())
    with pytest.raises((state.InvalidGraph, state.NoSuchFile), match=message):
        kiln.InferenceSession(str(path))


def test_external_data_range_beyond_file_is_refused(tmp_path):
    m = with_location(matmul_model(np.zeros((4, 2), np.float32)), "w.bin")
    (tmp_path / "w.bin").write_bytes(b"\0" * 8)  # 32 bytes needed
    (tmp_path / "m.onnx").write_bytes(m.SerializeToString())
    with pytest.raises(state.InvalidGraph, match="exceeds"):
        kiln.InferenceSession(str(tmp_path / "m.onnx"))


def test_large_file_with_weights_over_50_mb_loads_exactly(tmp_path):
    # Files of 48 MB and more go to protobuf whole while a thread drops the pages read; a weight
    # over 50 MB is one protobuf would otherwise grow in steps. Weights on both sides of it.
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 14 << 18)).astype(np.float32)  # 56 MiB
    a = rng.standard_normal((1, 4)).astype(np.float32)
    b = rng.standard_normal((1, w.shape[1])).astype(np.float32)
    g = helper.make_graph([helper.make_node("Add", ["x", "a"], ["xa"]), helper.make_node("MatMul", ["xa", "w"], ["p"]),
                           helper.make_node("Add", ["p", "b"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, w.shape[1]])],
                          [numpy_helper.from_array(a, "a"), numpy_helper.from_array(w, "w"),
                           numpy_helper.from_array(b, "b")])
    data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    assert len(data) > 48 << 20
    path = tmp_path / "big.onnx"
    path.write_bytes(data)
    x = rng.standard_normal((1, 4)).astype(np.float32)
    y = kiln.InferenceSession(str(path)).run(None, {"x": x})[0]
    np.testing.assert_allclose(y, (x.astype(np.float64) + a) @ w + b, rtol=1e-5, atol=1e-4)
    path.write_bytes(data[:len(data) * 2 // 3])  # cut inside the big weight
    with pytest.raises(state.InvalidProtobuf, match="big.onnx.*not a valid ONNX model"):
        kiln.InferenceSession(str(path))


def test_large_file_pages_do_not_stay_beside_the_weights(tmp_path):
    # A 200 MB file of 25 MB weights: while the parser copies them out, the file's pages behind
    # it are dropped, so creation's peak stays far below the file plus the weights it keeps.
    # In a fresh process, whose peak resident set is this load's alone.
    rng = np.random.default_rng(6)
    ws = [rng.standard_normal((64, 100_000)).astype(np.float32) for _ in range(8)]
    nodes, x = [], "x"
    for i in range(len(ws)):
        nodes.append(helper.make_node("Add", [x, f"w{i}"], [f"s{i}"]))
        x = f"s{i}"
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(ws[0].shape))],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, list(ws[0].shape))],
                          [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(ws)])
    path = tmp_path / "big.onnx"
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    size_mb = path.stat().st_size / 2**20
    script = (
        "import sys, kiln\n"
        "def kb(key):\n"
        "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(key + ':'))\n"
        "base = kb('VmRSS')\n"
        "s = kiln.InferenceSession(sys.argv[1])\n"
        "print((kb('VmHWM') - base) / 1024, (kb('VmRSS') - base) / 1024)\n")
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    peak_mb, kept_mb = (float(v) for v in out.stdout.split())
    assert kept_mb > 0.9 * size_mb  # the session holds the weights
    assert peak_mb < kept_mb + 0.25 * size_mb, f"peak {peak_mb:.0f} MB for a {size_mb:.0f} MB file, {kept_mb:.0f} kept"


def test_initializer_size_mismatch_is_refused():
    m = matmul_model(np.zeros((4, 2), np.float32))
    m.graph.initializer[0].raw_data = b"\0" * 12
    with pytest.raises(state.InvalidGraph, match="holds 12 bytes"):
        kiln.InferenceSession(m.SerializeToString())


def test_negative_dims_and_cycles_are_refused():
    m = matmul_model(np.zeros((4, 2), np.float32))
    m.graph.initializer[0].dims[0] = -4
    with pytest.raises(state.InvalidGraph, match="negative dimension"):
        kiln.InferenceSession(m.SerializeToString())
    g = helper.make_graph([helper.make_node("Relu", ["b"], ["a"], name="r1"), helper.make_node("Relu", ["a"], ["b"], name="r2")],
                          "g", [], [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])])
    with pytest.raises(state.InvalidGraph, match="cycle"):
        kiln.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())


@pytest.mark.parametrize("ir_version, opset", [(3, 7), (7, 13), (8, 17), (10, 21)])
def test_ir_and_opset_range(ir_version, opset):
    w = np.eye(3, dtype=np.float32)
    sess = kiln.InferenceSession(matmul_model(w, ir_version, opset).SerializeToString())
    np.testing.assert_array_equal(sess.run(None, {"x": np.ones((1, 3), np.float32)})[0], np.ones((1, 3)))


def test_ir_version_out_of_range():
    with pytest.raises(state.InvalidGraph, match="IR version 2 is not supported"):
        kiln.InferenceSession(matmul_model(np.eye(2, dtype=np.float32), 2).SerializeToString())


def test_model_local_function_is_inlined():
    fn = helper.make_function("custom", "AddLeaky", ["a", "b"], ["c"],
                              [helper.make_node("Add", ["a", "b"], ["s"]),
                               helper.make_node("LeakyRelu", ["s"], ["c"], alpha=0.5)],
                              [helper.make_opsetid("", 17)], [])
    F = TensorProto.FLOAT
    g = helper.make_graph([helper.make_node("AddLeaky", ["x", "y"], ["z"], domain="custom")], "g",
                          [helper.make_tensor_value_info("x", F, [3]), helper.make_tensor_value_info("y", F, [3])],
                          [helper.make_tensor_value_info("z", F, [3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)],
                          functions=[fn])
    x, y = np.array([1, -5, 2], np.float32), np.array([0, 1, -4], np.float32)
    s = x + y
    np.testing.assert_allclose(kiln.InferenceSession(m.SerializeToString()).run(None, {"x": x, "y": y})[0],
                               np.where(s > 0, s, 0.5 * s))
