"""The InferenceSession API on small models: metadata, providers, feeds, errors, threads."""

import warnings

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import kiln
from kiln.capi import onnxruntime_pybind11_state as state
from concurrency import run_concurrently


def mlp_model(n_in=4, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n_in, n_out)).astype(np.float32)
    b = rng.standard_normal(n_out).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
         helper.make_node("Add", ["y", "b"], ["yb"], name="bias"),
         helper.make_node("Relu", ["yb"], ["z"], name="act")],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", n_out])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-tests")
    helper.set_model_props(m, {"author": "kiln"})
    return m, w, b


def test_run_matches_numpy_and_metadata(tmp_path):
    m, w, b = mlp_model()
    path = tmp_path / "mlp.onnx"
    path.write_bytes(m.SerializeToString())
    sess = kiln.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert (inp.name, inp.type, inp.shape) == ("x", "tensor(float)", ["batch", 4])
    assert sess.get_outputs()[0].shape == ["batch", 3]
    meta = sess.get_modelmeta()
    assert meta.producer_name == "kiln-tests" and meta.graph_name == "mlp"
    assert meta.custom_metadata_map == {"author": "kiln"}
    assert sess.get_providers() == ["CPUExecutionProvider"]
    for batch in (1, 7, 7, 2):  # new shapes, then a replayed memory plan
        x = np.random.rand(batch, 4).astype(np.float32)
        (z,) = sess.run(None, {"x": x})
        np.testing.assert_allclose(z, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-6)


def test_unavailable_provider_warns_and_falls_back():
    m, _, _ = mlp_model()
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):
        sess = kiln.InferenceSession(m.SerializeToString(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="available"):
            kiln.InferenceSession(m.SerializeToString(), providers=["CUDAExecutionProvider"])


def test_wrong_dtype_rank_dims_and_names_are_clear():
    m, _, _ = mlp_model()
    sess = kiln.InferenceSession(m.SerializeToString())
    with pytest.raises(state.InvalidArgument, match=r"Actual: \(tensor\(double\)\) , expected: \(tensor\(float\)\)"):
        sess.run(None, {"x": np.zeros((1, 4))})
    with pytest.raises(state.InvalidArgument, match="Invalid rank for input: x Got: 1 Expected: 2"):
        sess.run(None, {"x": np.zeros(4, np.float32)})
    with pytest.raises(state.InvalidArgument, match="index: 1 Got: 5 Expected: 4"):
        sess.run(None, {"x": np.zeros((1, 5), np.float32)})
    with pytest.raises(state.InvalidArgument, match="Invalid input name: 'y'"):
        sess.run(None, {"y": np.zeros((1, 4), np.float32)})
    with pytest.raises(state.InvalidArgument, match="Missing input: 'x'"):
        sess.run(None, {})
    with pytest.raises(state.InvalidArgument, match="Invalid output name: 'nope'"):
        sess.run(["nope"], {"x": np.zeros((1, 4), np.float32)})


def test_missing_file_and_garbage_bytes():
    with pytest.raises(state.NoSuchFile, match="does-not-exist.onnx"):
        kiln.InferenceSession("does-not-exist.onnx")
    with pytest.raises(state.InvalidProtobuf):
        kiln.InferenceSession(b"\xff\xff this is not a model")


def test_unsupported_ops_all_listed_at_creation():
    g = helper.make_graph(
        [helper.make_node("FancyOpA", ["x"], ["y"]), helper.make_node("FancyOpB", ["y"], ["z"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(state.NotImplemented, match="FancyOpA.*FancyOpB"):
        kiln.InferenceSession(m.SerializeToString())


def test_concurrent_runs_from_many_threads():
    m, w, b = mlp_model(64, 32)
    sess = kiln.InferenceSession(m.SerializeToString())
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        for i in range(50):
            x = rng.standard_normal((1 + (seed + i) % 5, 64)).astype(np.float32)
            (z,) = sess.run(None, {"x": x})
            if not np.allclose(z, np.maximum(x @ w + b, 0), rtol=1e-4, atol=1e-5):
                errors.append((seed, i))

    run_concurrently(worker, 8)
    assert errors == []


def test_module_functions():
    assert kiln.get_available_providers() == ["CPUExecutionProvider"]
    assert "CUDAExecutionProvider" in kiln.get_all_providers()
    assert kiln.get_device() == "CPU"
    assert kiln.get_version_string() == kiln.__version__
    opts = kiln.SessionOptions()
    opts.add_session_config_entry("session.x", "1")
    assert opts.get_session_config_entry("session.x") == "1"


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_memory_follows_the_shapes_fed():
    """Intermediates of a large shape do not stay resident once smaller shapes are fed, and
    cycling through shapes does not grow memory; every answer stays right."""
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["b"]),
         helper.make_node("Exp", ["b"], ["c"]), helper.make_node("Sqrt", ["c"], ["y"])],
        "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1024])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1024])])
    sess = kiln.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())

    def check(n):
        x = np.random.default_rng(n).standard_normal((n, 1024)).astype(np.float32)
        (y,) = sess.run(None, {"x": x})
        # Whole-array temporaries could stay in the C heap and blur the measurement: rows suffice.
        for rows in (slice(0, 4), slice(n - 4, n)):
            np.testing.assert_allclose(y[rows], np.sqrt(np.exp(-np.maximum(x[rows], 0))), rtol=1e-6)

    check(8)
    base = rss_mb()
    for cycle in range(3):
        check(16384)  # 64 MB per intermediate
        for n in (8, 9, 8):
            check(n)
        assert rss_mb() - base < 24, f"cycle {cycle}: {rss_mb() - base:.0f} MB above the small shapes' footprint"
