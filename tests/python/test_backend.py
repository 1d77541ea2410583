"""kiln.backend: the ONNX backend API (prepare / run_model / run_node) against numpy, and onnx's own
BackendTest runner on a few node tests of the official suite."""

import os
import unittest

import numpy as np
import onnx
import onnx.backend.test
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.backend.base import BackendRep

import kiln
import kiln.backend as kb
from kiln.capi import onnxruntime_pybind11_state as state


def mlp(initializers_as_inputs=False):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3]),
              helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])]
    if initializers_as_inputs:  # IR < 4 style: initializers are listed among the graph inputs, first
        inputs = [helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 5])] + inputs
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["xwb"]),
         helper.make_node("Add", ["xwb", "y"], ["sum"]), helper.make_node("Relu", ["sum"], ["out"])],
        "mlp", inputs,
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 5]),
         helper.make_tensor_value_info("xw", TensorProto.FLOAT, ["n", 5])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), w, b


def test_prepare_and_run_by_position_name_and_result_fields():
    model, w, b = mlp()
    rep = kb.prepare(model)
    assert isinstance(rep, BackendRep)
    x = np.random.rand(4, 3).astype(np.float32)
    y = np.random.rand(4, 5).astype(np.float32) - 0.5
    want = np.maximum(x @ w + b + y, 0)
    by_pos = rep.run([x, y])
    by_name = rep.run({"y": y, "x": x})
    for outs in (by_pos, by_name):
        assert isinstance(outs, tuple) and len(outs) == 2
        np.testing.assert_allclose(outs[0], want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(outs["xw"], x @ w, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(outs.out, outs[0])
    # the prepared model runs again with another batch size
    (out, _) = rep.run([x[:1], y[:1]])
    np.testing.assert_allclose(out, want[:1], rtol=1e-5, atol=1e-6)


def test_positional_inputs_skip_initializers_listed_as_inputs():
    model, w, b = mlp(initializers_as_inputs=True)
    x = np.ones((2, 3), np.float32)
    y = np.zeros((2, 5), np.float32)
    out = kb.prepare(model).run([x, y])[0]
    np.testing.assert_allclose(out, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-6)


def test_prepare_from_bytes_and_path_and_run_model(tmp_path):
    model, w, b = mlp()
    x = np.full((1, 3), 0.5, np.float32)
    y = np.zeros((1, 5), np.float32)
    want = np.maximum(x @ w + b, 0)
    path = tmp_path / "mlp.onnx"
    path.write_bytes(model.SerializeToString())
    for m in (model.SerializeToString(), str(path)):
        np.testing.assert_allclose(kb.prepare(m).run([x, y])[0], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kb.run_model(model, [x, y]).out, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kb.KilnBackend.run_model(model, {"x": x, "y": y})[0], want, rtol=1e-5, atol=1e-6)


def test_session_and_run_options_from_kwargs():
    model, _, _ = mlp()
    rep = kb.prepare(model, intra_op_num_threads=1)
    assert rep.session.get_session_options().intra_op_num_threads == 1
    x, y = np.ones((1, 3), np.float32), np.ones((1, 5), np.float32)
    assert rep.run([x, y], log_severity_level=3)[0].shape == (1, 5)
    with pytest.raises(TypeError, match=r"unknown session option\(s\) \['bogus'\]"):
        kb.prepare(model, bogus=1)
    with pytest.raises(TypeError, match=r"unknown run option\(s\) \['nope'\]"):
        rep.run([x, y], nope=2)


def test_devices():
    assert kb.supports_device("CPU") and kb.KilnBackend.supports_device("CPU")
    for dev in ("CUDA", "CUDA:1", "cpu", "TPU", ""):
        assert not kb.supports_device(dev)
    model, _, _ = mlp()
    assert kb.is_compatible(model) and not kb.is_compatible(model, "CUDA")
    with pytest.raises(ValueError, match="CPU only, device 'CUDA' was asked for"):
        kb.prepare(model, "CUDA")


def test_input_count_and_engine_errors():
    model, _, _ = mlp()
    rep = kb.prepare(model)
    x, y = np.ones((1, 3), np.float32), np.ones((1, 5), np.float32)
    with pytest.raises(ValueError, match=r"got 3 inputs, the model takes 2: \['x', 'y'\]"):
        rep.run([x, y, y])
    with pytest.raises(state.InvalidArgument, match="Missing input: 'y'"):
        rep.run([x])
    with pytest.raises(state.InvalidArgument, match="expected: \\(tensor\\(float\\)\\)"):
        rep.run([x.astype(np.float64), y])
    node = helper.make_node("NoSuchOp", ["a"], ["b"], domain="kiln.test")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])])
    bad = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("kiln.test", 1)])
    with pytest.raises(state.NotImplemented, match="kiln.test::NoSuchOp"):
        kb.prepare(bad)


def test_run_node_infers_output_types():
    a = np.random.rand(2, 3, 4).astype(np.float32)
    b = np.random.rand(4).astype(np.float32)
    (s,) = kb.run_node(helper.make_node("Add", ["a", "b"], ["s"]), [a, b])
    np.testing.assert_allclose(s, a + b, rtol=1e-6)
    i = np.arange(-3, 3, dtype=np.int32)
    out = kb.run_node(helper.make_node("Add", ["p", "q"], ["r"]), {"p": i, "q": i})
    assert out.r.dtype == np.int32
    np.testing.assert_array_equal(out["r"], i + i)
    m1, m2 = np.random.rand(5, 2, 3).astype(np.float32), np.random.rand(3, 7).astype(np.float32)
    np.testing.assert_allclose(kb.run_node(helper.make_node("MatMul", ["x", "y"], ["z"]), [m1, m2])[0], m1 @ m2,
                               rtol=1e-5)
    (r,) = kb.run_node(helper.make_node("Relu", ["x"], ["y"]), [np.array([-1.0, 0.0, 2.5])])
    np.testing.assert_array_equal(r, [0.0, 0.0, 2.5])
    assert r.dtype == np.float64


def test_run_node_opset_version_and_node_check():
    const = helper.make_node("Constant", [], ["c"], value_float=1.5)  # value_float exists from opset 12
    (c,) = kb.run_node(const, [])
    assert c.dtype == np.float32 and c.shape == () and c == 1.5
    with pytest.raises(onnx.checker.ValidationError):
        kb.run_node(const, [], opset_version=11)
    with pytest.raises(ValueError, match=r"node Add has inputs \['a', 'b'\], got 1 values"):
        kb.run_node(helper.make_node("Add", ["a", "b"], ["s"]), [np.ones(1)])


def test_run_node_outputs_info_types_what_inference_cannot():
    node = helper.make_node("Foo", ["x"], ["y"], domain="kiln.test")
    vi = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])]
    m = kb.KilnBackend._node_model(node, vi, [(np.dtype(np.int64), (2,))], 17)
    out = m.graph.output[0]
    assert out.type.tensor_type.elem_type == TensorProto.INT64
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [2]
    assert [(o.domain, o.version) for o in m.opset_import] == [("", 17), ("kiln.test", 1)]
    untyped = kb.KilnBackend._node_model(node, vi, None, 17).graph.output[0]
    assert untyped.type.tensor_type.elem_type == TensorProto.UNDEFINED


def test_run_node_with_omitted_optional_input_entries():
    node = helper.make_node("Add", ["a", "b"], ["s"])
    feeds = kb.KilnBackend._node_feeds(helper.make_node("Clip", ["x", "", "hi"], ["y"]), [1, None, 2])
    assert feeds == {"x": 1, "hi": 2}
    assert kb.KilnBackend._node_feeds(helper.make_node("Clip", ["x", "", "hi"], ["y"]), [1, 2]) == {"x": 1, "hi": 2}
    with pytest.raises(ValueError, match="omitted"):
        kb.KilnBackend._node_feeds(helper.make_node("Clip", ["x", "", "hi"], ["y"]), [1, 5, 2])
    with pytest.raises(ValueError, match=r"no value for node input\(s\) \['b'\]"):
        kb.run_node(node, {"a": np.ones(1)})


def test_bfloat16_travels_as_uint16_bits():
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [3])],
                          [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [3])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 16)])
    bits = np.array([0x3F80, 0xC000, 0x7FC0], np.uint16)  # 1.0, -2.0, NaN
    (y,) = kb.prepare(model).run([bits])
    assert y.dtype == np.uint16
    np.testing.assert_array_equal(y, bits)


# onnx's own runner on a few node tests of the official suite. Two shims for onnx 1.12 on this
# Python/numpy: its comparison uses np.object (gone from numpy 1.24), and its .test_suite property
# breaks on Python 3.11, so the node test class goes into this module, trimmed to the included tests.
class _BackendTest(onnx.backend.test.BackendTest):
    @classmethod
    def assert_similar_outputs(cls, ref_outputs, outputs, rtol, atol):
        np.testing.assert_equal(len(outputs), len(ref_outputs))
        for ref, out in zip(ref_outputs, outputs):
            if isinstance(out, (list, tuple)):
                cls.assert_similar_outputs(ref, out, rtol, atol)
                continue
            np.testing.assert_equal(out.dtype, ref.dtype)
            if ref.dtype == object:
                np.testing.assert_array_equal(out, ref)
            else:
                np.testing.assert_allclose(out, ref, rtol=rtol, atol=atol)


def _official_node_tests(pattern):
    runner = _BackendTest(kb, __name__)
    runner.include(pattern)
    case = runner.test_cases["OnnxBackendNodeModelTest"]
    for attr in [a for a in vars(case) if a.startswith("test_")]:
        if getattr(getattr(case, attr), "__unittest_skip__", False):
            delattr(case, attr)
    return case


OnnxBackendNodeModelTest = _official_node_tests(r"^test_(add|add_bcast|add_uint8|relu|matmul_2d|matmul_3d|matmul_4d)_cpu$")


def test_official_runner_cases_are_present():
    names = sorted(a for a in vars(OnnxBackendNodeModelTest) if a.startswith("test_"))
    assert names == ["test_add_bcast_cpu", "test_add_cpu", "test_add_uint8_cpu", "test_matmul_2d_cpu",
                     "test_matmul_3d_cpu", "test_matmul_4d_cpu", "test_relu_cpu"]
    assert issubclass(OnnxBackendNodeModelTest, unittest.TestCase)
    assert os.path.isdir(onnx.backend.test.loader.DATA_DIR) and kiln.backend is kb


def test_sequences_are_lists_and_empty_optionals_none():
    seq = [np.ones(2, np.float32), np.arange(3, dtype=np.float32)]
    (out,) = kb.run_node(helper.make_node("Identity", ["s"], ["t"]), [seq])
    assert isinstance(out, list) and len(out) == 2
    for got, want in zip(out, seq):
        np.testing.assert_array_equal(got, want)
    (n,) = kb.run_node(helper.make_node("SequenceLength", ["s"], ["n"]), [seq])
    assert n.dtype == np.int64 and n == 2
    opt = helper.make_tensor_type_proto(TensorProto.FLOAT, [2])
    g = helper.make_graph([helper.make_node("OptionalHasElement", ["o"], ["has"])], "g",
                          [helper.make_value_info("o", helper.make_optional_type_proto(opt))],
                          [helper.make_tensor_value_info("has", TensorProto.BOOL, [])])
    rep = kb.prepare(helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)]))
    assert not rep.run([None])[0] and rep.run([np.zeros(2, np.float32)]).has
