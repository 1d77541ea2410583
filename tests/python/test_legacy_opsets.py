"""Old-opset semantics (opset < 7) that the legacy upgrade pass rewrites into modern ops:
`broadcast=1, axis=k` on the arithmetic, logic and comparison ops, PRelu's per-channel slope,
inside subgraphs too, at every optimization level; compared with numpy."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import kiln

RNG = np.random.default_rng(5)
ONNX_TYPE = {np.dtype("float32"): TensorProto.FLOAT, np.dtype("bool"): TensorProto.BOOL,
             np.dtype("int32"): TensorProto.INT32, np.dtype("float64"): TensorProto.DOUBLE}


def legacy_model(op, a, b, opset, out_type, initial_b=False, **attrs):
    inputs = [helper.make_tensor_value_info("A", ONNX_TYPE[a.dtype], list(a.shape))]
    inits = []
    if initial_b:
        inits.append(numpy_helper.from_array(b, "B"))
    else:
        inputs.append(helper.make_tensor_value_info("B", ONNX_TYPE[b.dtype], list(b.shape)))
    g = helper.make_graph([helper.make_node(op, ["A", "B"], ["C"], **attrs)], "legacy", inputs,
                          [helper.make_tensor_value_info("C", out_type, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def run(model, feeds, level=kiln.GraphOptimizationLevel.ORT_ENABLE_ALL):
    opts = kiln.SessionOptions()
    opts.graph_optimization_level = level
    return kiln.InferenceSession(model.SerializeToString(), opts).run(None, feeds)[0]


def aligned(b, a_rank, axis):
    return b.reshape(b.shape + (1,) * (a_rank - axis - b.ndim))


ARITH = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power}


@pytest.mark.parametrize("op", sorted(ARITH))
@pytest.mark.parametrize("opset", [1, 6])
@pytest.mark.parametrize("b_shape,axis", [((3,), 1), ((3, 4), 1), ((2,), 0), ((5,), 3), ((4, 5), 2), ((2, 3), 0)])
def test_arith_broadcast_axis(op, opset, b_shape, axis):
    a = RNG.uniform(0.5, 2.0, (2, 3, 4, 5)).astype(np.float32)
    b = RNG.uniform(0.5, 2.0, b_shape).astype(np.float32)
    m = legacy_model(op, a, b, opset, TensorProto.FLOAT, broadcast=1, axis=axis)
    for level in (kiln.GraphOptimizationLevel.ORT_DISABLE_ALL, kiln.GraphOptimizationLevel.ORT_ENABLE_ALL):
        c = run(m, {"A": a, "B": b}, level)
        np.testing.assert_allclose(c, ARITH[op](a, aligned(b, 4, axis)), rtol=1e-6)


@pytest.mark.parametrize("op", ["Add", "Mul"])
def test_suffix_broadcast_scalar_and_equal_shapes(op):
    a = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    for b, attrs in [(RNG.standard_normal((3, 4)).astype(np.float32), {"broadcast": 1}),
                     (np.array(2.5, np.float32), {"broadcast": 1}),
                     (RNG.standard_normal((2, 3, 4)).astype(np.float32), {})]:
        c = run(legacy_model(op, a, b, 6, TensorProto.FLOAT, **attrs), {"A": a, "B": b})
        np.testing.assert_allclose(c, ARITH[op](a, b), rtol=1e-6)


def test_initializer_b_with_consumed_inputs():
    a = RNG.standard_normal((2, 3, 2)).astype(np.float32)
    b = RNG.standard_normal(3).astype(np.float32)
    m = legacy_model("Add", a, b, 1, TensorProto.FLOAT, initial_b=True, broadcast=1, axis=1, consumed_inputs=[0, 0])
    np.testing.assert_allclose(run(m, {"A": a}), a + b[:, None], rtol=1e-6)


@pytest.mark.parametrize("op,fn", [("And", np.logical_and), ("Or", np.logical_or), ("Xor", np.logical_xor)])
def test_logic_ops_opset1(op, fn):
    a = RNG.integers(0, 2, (3, 4, 2)).astype(bool)
    b = RNG.integers(0, 2, (4,)).astype(bool)
    c = run(legacy_model(op, a, b, 1, TensorProto.BOOL, broadcast=1, axis=1), {"A": a, "B": b})
    np.testing.assert_array_equal(c, fn(a, b[:, None]))


@pytest.mark.parametrize("op,fn", [("Equal", np.equal), ("Greater", np.greater), ("Less", np.less)])
def test_comparisons_opset1(op, fn):
    a = RNG.integers(0, 3, (3, 4)).astype(np.int32)
    b = RNG.integers(0, 3, (3,)).astype(np.int32)
    c = run(legacy_model(op, a, b, 1, TensorProto.BOOL, broadcast=1, axis=0), {"A": a, "B": b})
    np.testing.assert_array_equal(c, fn(a, b[:, None]))


def prelu(x, slope):
    return np.where(x >= 0, x, x * slope)


@pytest.mark.parametrize("x_shape", [(2, 3), (2, 3, 4), (2, 3, 4, 5), (1, 3, 2, 2, 2)])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("opset", [1, 6])
def test_prelu_per_channel_slope(x_shape, per_channel, opset):
    x = RNG.standard_normal(x_shape).astype(np.float32)
    slope = RNG.uniform(0.1, 0.5, 3 if per_channel else 1).astype(np.float32)
    m = legacy_model("PRelu", x, slope, opset, TensorProto.FLOAT, initial_b=True)
    np.testing.assert_allclose(run(m, {"A": x}), prelu(x, aligned(slope, len(x_shape), 1)), rtol=1e-6)


def test_prelu_slope_of_x_shape():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    slope = RNG.uniform(0.1, 0.5, (3, 4)).astype(np.float32)
    np.testing.assert_allclose(run(legacy_model("PRelu", x, slope, 6, TensorProto.FLOAT), {"A": x, "B": slope}),
                               prelu(x, slope), rtol=1e-6)


def test_inside_if_subgraph_and_name_clash():
    # A value already named like the inserted one ("B_aligned") must not be clobbered.
    a = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    b = RNG.standard_normal((3,)).astype(np.float32)
    then_g = helper.make_graph([helper.make_node("Mul", ["A", "B"], ["t"], broadcast=1, axis=1)], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    else_g = helper.make_graph([helper.make_node("Sub", ["A", "B_aligned"], ["e"], broadcast=1, axis=2)], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    g = helper.make_graph(
        [helper.make_node("Identity", ["Bz"], ["B_aligned"]),
         helper.make_node("If", ["cond"], ["out"], then_branch=then_g, else_branch=else_g)], "g",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("A", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("B", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("Bz", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 6)])
    bz = RNG.standard_normal(4).astype(np.float32)
    sess = kiln.InferenceSession(m.SerializeToString())
    (t,) = sess.run(None, {"cond": np.array(True), "A": a, "B": b, "Bz": bz})
    np.testing.assert_allclose(t, a * b[:, None], rtol=1e-6)
    (e,) = sess.run(None, {"cond": np.array(False), "A": a, "B": b, "Bz": bz})
    np.testing.assert_allclose(e, a - bz, rtol=1e-6)


def test_axis_out_of_range_fails():
    a = np.zeros((2, 3), np.float32)
    b = np.zeros(3, np.float32)
    with pytest.raises(Exception, match="axis 5 is out of range for A of rank 2"):
        run(legacy_model("Add", a, b, 6, TensorProto.FLOAT, broadcast=1, axis=5), {"A": a, "B": b})
    with pytest.raises(Exception, match="broadcast"):  # B aligned at 0 is [3, 1]: cannot meet [2, 3]
        run(legacy_model("Add", a, b, 6, TensorProto.FLOAT, broadcast=1, axis=0), {"A": a, "B": b})
