"""Quantization ops against numpy and PyTorch references: QuantizeLinear, DequantizeLinear,
DynamicQuantizeLinear, MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv."""

import numpy as np
import pytest
import torch

from kiln.capi import onnxruntime_pybind11_state as state
from onnx_builders import run_node

RNG = np.random.default_rng(7)


def q_ref(v, zp_dtype):
    info = np.iinfo(zp_dtype)
    return np.clip(np.rint(v), info.min, info.max).astype(zp_dtype)


@pytest.mark.parametrize("zp_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("opset", [10, 13])
def test_quantize_per_tensor(zp_dtype, opset):
    x = (RNG.standard_normal((3, 7, 5)) * 100).astype(np.float32)
    x.flat[:4] = [0.5, 1.5, -0.5, -2.5]  # ties round to even
    scale, zp = np.float32(0.75), zp_dtype(3)
    (y,) = run_node("QuantizeLinear", {"x": x, "s": scale, "z": np.array(zp)}, ["y"], opset=opset)
    assert y.dtype == zp_dtype
    np.testing.assert_array_equal(y, q_ref(np.rint(x / scale) + zp, zp_dtype))


def test_quantize_default_uint8_int32_input_and_axis():
    x = RNG.integers(-1000, 1000, (2, 3, 4)).astype(np.int32)
    (y,) = run_node("QuantizeLinear", {"x": x, "s": np.float32(8)}, ["y"], opset=13)
    np.testing.assert_array_equal(y, q_ref(np.rint(x / np.float32(8)), np.uint8))
    xf = RNG.standard_normal((2, 3, 4)).astype(np.float32) * 50
    for axis in (0, 1, 2, -1):
        n = xf.shape[axis]
        s = RNG.uniform(0.1, 2, n).astype(np.float32)
        z = RNG.integers(-10, 10, n).astype(np.int8)
        (y,) = run_node("QuantizeLinear", {"x": xf, "s": s, "z": z}, ["y"], opset=13, axis=axis)
        shape = [1, 1, 1]
        shape[axis] = n
        np.testing.assert_array_equal(y, q_ref(np.rint(xf / s.reshape(shape)) + z.reshape(shape), np.int8))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32])
def test_dequantize(dtype):
    info = np.iinfo(dtype)
    x = RNG.integers(max(info.min, -10**6), min(info.max, 10**6), (4, 3, 5)).astype(dtype)
    zp = np.array(0 if dtype == np.int32 else 5, dtype)
    (y,) = run_node("DequantizeLinear", {"x": x, "s": np.float32(0.5), "z": zp}, ["y"], opset=13)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, (x.astype(np.float64) - zp) * 0.5, rtol=1e-6)
    s = RNG.uniform(0.1, 1, 3).astype(np.float32)
    z = np.zeros(3, dtype)
    (y,) = run_node("DequantizeLinear", {"x": x, "s": s, "z": z}, ["y"], opset=13, axis=1)
    np.testing.assert_allclose(y, x.astype(np.float64) * s.reshape(1, 3, 1), rtol=1e-6)


def test_quantize_roundtrip_and_empty():
    x = np.zeros((0, 4), np.float32)
    (y,) = run_node("QuantizeLinear", {"x": x, "s": np.float32(1), "z": np.uint8(0)}, ["y"])
    assert y.shape == (0, 4) and y.dtype == np.uint8


def dyn_ref(x):
    lo, hi = np.minimum(0, x.min()), np.maximum(0, x.max())
    scale = np.float32((hi - lo) / np.float32(255))
    zp = np.clip(np.rint((0 - lo) / scale), 0, 255).astype(np.uint8)
    return np.clip(np.rint(x / scale) + zp, 0, 255).astype(np.uint8), scale, zp


@pytest.mark.parametrize("shift", [0.0, 5.0, -5.0])
def test_dynamic_quantize(shift):
    x = (RNG.standard_normal((5, 9)) + shift).astype(np.float32)
    y, s, z = run_node("DynamicQuantizeLinear", {"x": x}, ["y", "s", "z"], opset=11)
    ry, rs, rz = dyn_ref(x)
    assert s.dtype == np.float32 and s.shape == () and z.dtype == np.uint8 and z.shape == ()
    assert s == rs and z == rz
    np.testing.assert_array_equal(y, ry)
    y, s, z = run_node("DynamicQuantizeLinear", {"x": np.zeros(3, np.float32)}, ["y", "s", "z"], opset=11)
    assert s == 0 and z == 0 and (y == 0).all()


@pytest.mark.parametrize("a_shape,b_shape", [((4, 3), (3, 2)), ((2, 5, 7), (7, 3)), ((3,), (3, 4)),
                                             ((2, 1, 3, 4), (5, 4, 2)), ((4, 6), (6,)), ((0, 3), (3, 2))])
def test_matmul_integer(a_shape, b_shape):
    a = RNG.integers(0, 256, a_shape).astype(np.uint8)
    b = RNG.integers(-128, 128, b_shape).astype(np.int8)
    za, zb = np.uint8(12), np.int8(-3)
    (y,) = run_node("MatMulInteger", {"A": a, "B": b, "za": np.array(za), "zb": np.array(zb)}, ["Y"], opset=10)
    ref = np.matmul(a.astype(np.int64) - za, b.astype(np.int64) - zb)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, ref)


def test_matmul_integer_per_row_and_column_zero_points():
    a = RNG.integers(0, 256, (4, 5)).astype(np.uint8)
    b = RNG.integers(0, 256, (5, 3)).astype(np.uint8)
    za = RNG.integers(0, 256, 4).astype(np.uint8)
    zb = RNG.integers(0, 256, 3).astype(np.uint8)
    (y,) = run_node("MatMulInteger", {"A": a, "B": b, "za": za, "zb": zb}, ["Y"], opset=10)
    np.testing.assert_array_equal(y, (a.astype(np.int64) - za[:, None]) @ (b.astype(np.int64) - zb[None, :]))
    (y,) = run_node("MatMulInteger", {"A": a, "B": b}, ["Y"], opset=10)
    np.testing.assert_array_equal(y, a.astype(np.int64) @ b.astype(np.int64))


def conv_ref(x, w, **kw):
    return torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(w.astype(np.float64)),
                                      **kw).numpy()


@pytest.mark.parametrize("group,stride,pad,dil", [(1, 1, 0, 1), (1, 2, 1, 1), (2, 1, 2, 2), (4, 3, 1, 1)])
@pytest.mark.parametrize("weights", ["int8_per_channel_zp", "int8_zp0", "uint8_zp128"])
def test_conv_integer(group, stride, pad, dil, weights):
    """Per-channel zero points take the int32 loops, the other two kinds oneDNN's int8 conv."""
    x = RNG.integers(0, 256, (2, 4, 9, 8)).astype(np.uint8)
    if weights == "uint8_zp128":
        w = RNG.integers(0, 256, (8, 4 // group, 3, 2)).astype(np.uint8)
        zx, zw = np.uint8(100), np.full(8, 128, np.uint8)
    else:
        w = RNG.integers(-128, 128, (8, 4 // group, 3, 2)).astype(np.int8)
        zx = np.uint8(100)
        zw = RNG.integers(-5, 5, 8).astype(np.int8) if weights == "int8_per_channel_zp" else np.zeros(8, np.int8)
    (y,) = run_node("ConvInteger", {"x": x, "w": w, "zx": np.array(zx), "zw": zw}, ["y"], opset=10, group=group,
                    strides=[stride, stride], pads=[pad] * 4, dilations=[dil, dil])
    # padding holds the zero point, so it contributes 0 after the shift
    ref = conv_ref(x.astype(np.int64) - zx, w.astype(np.int64) - zw[:, None, None, None].astype(np.int64),
                   stride=stride, padding=pad, dilation=dil, groups=group)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, ref.astype(np.int64))


def requant(v, sy, zy, dtype):
    return q_ref(np.rint(v / sy) + zy, dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_matmul(dtype):
    info = np.iinfo(dtype)
    a = RNG.integers(info.min, info.max + 1, (2, 3, 6)).astype(dtype)
    b = RNG.integers(info.min, info.max + 1, (6, 4)).astype(dtype)
    sa, sb, sy = np.float32(0.02), RNG.uniform(0.01, 0.03, 4).astype(np.float32), np.float32(0.3)
    za, zb, zy = dtype(3), RNG.integers(-3, 4, 4).astype(dtype), dtype(7)
    feeds = {"a": a, "sa": sa, "za": np.array(za), "b": b, "sb": sb, "zb": zb, "sy": sy, "zy": np.array(zy)}
    (y,) = run_node("QLinearMatMul", feeds, ["y"], opset=10)
    real = ((a.astype(np.float64) - za) * sa) @ ((b.astype(np.float64) - zb) * sb.astype(np.float64))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, requant(real, np.float64(sy), zy, dtype))


def test_qlinear_conv_with_bias_and_per_channel_scale():
    x = RNG.integers(0, 256, (1, 3, 7, 6)).astype(np.uint8)
    w = RNG.integers(-128, 128, (4, 3, 3, 3)).astype(np.int8)
    bias = RNG.integers(-1000, 1000, 4).astype(np.int32)
    sx, sw, sy = np.float32(0.01), RNG.uniform(0.001, 0.01, 4).astype(np.float32), np.float32(0.05)
    zx, zw, zy = np.uint8(128), np.zeros(4, np.int8), np.uint8(120)
    feeds = {"x": x, "sx": sx, "zx": np.array(zx), "w": w, "sw": sw, "zw": zw, "sy": sy, "zy": np.array(zy), "B": bias}
    (y,) = run_node("QLinearConv", feeds, ["y"], opset=10, pads=[1, 1, 1, 1])
    acc = conv_ref(x.astype(np.int64) - zx, w, padding=1) + bias[None, :, None, None]
    real = acc * (np.float64(sx) * sw.astype(np.float64))[None, :, None, None]
    np.testing.assert_array_equal(y, requant(real, np.float64(sy), zy, np.uint8))


def test_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(state.InvalidArgument, match="y_scale has 2 values but the input has 3 along axis 1"):
        run_node("QuantizeLinear", {"x": x, "s": np.ones(2, np.float32)}, ["y"], opset=13)
    with pytest.raises(state.InvalidArgument, match="y_zero_point must be uint8 or int8"):
        run_node("QuantizeLinear", {"x": x, "s": np.float32(1), "z": np.int32(0)}, ["y"], opset=13)
    with pytest.raises(state.InvalidArgument, match="int32 input takes no zero point other than 0"):
        run_node("DequantizeLinear", {"x": np.zeros(2, np.int32), "s": np.float32(1), "z": np.int32(4)}, ["y"])
    with pytest.raises(state.InvalidArgument, match="do not match: A has K=3, B has K=2"):
        run_node("MatMulInteger", {"A": np.zeros((2, 3), np.uint8), "B": np.zeros((2, 2), np.uint8)}, ["Y"], opset=10)
    with pytest.raises(state.InvalidArgument, match="b_zero_point must have 1 or N=2 values, got 3"):
        run_node("MatMulInteger", {"A": np.zeros((2, 3), np.uint8), "B": np.zeros((3, 2), np.uint8), "za": None,
                                   "zb": np.zeros(3, np.uint8)}, ["Y"], opset=10)
    with pytest.raises(state.InvalidArgument, match="a_zero_point is int8 but must be uint8"):
        run_node("MatMulInteger", {"A": np.zeros((2, 3), np.uint8), "B": np.zeros((3, 2), np.uint8),
                                   "za": np.int8(0)}, ["Y"], opset=10)
    with pytest.raises(state.InvalidArgument, match="do not match for group 2"):
        run_node("ConvInteger", {"x": np.zeros((1, 3, 4, 4), np.uint8), "w": np.zeros((2, 1, 2, 2), np.uint8)}, ["y"],
                 opset=10, group=2)
    with pytest.raises(state.InvalidArgument, match="x holds NaN"):
        run_node("DynamicQuantizeLinear", {"x": np.array([1, np.nan], np.float32)}, ["y", "s", "z"], opset=11)


@pytest.mark.parametrize("b_dtype", [np.uint8, np.int8])
def test_matmul_integer_constant_weight_across_runs(b_dtype):
    """A weight initializer is converted for oneDNN once; later runs with new A reuse it."""
    import kiln
    from onnx_builders import node_model
    info = np.iinfo(b_dtype)
    b = RNG.integers(info.min, info.max + 1, (64, 48)).astype(b_dtype)
    zb = np.array(7, b_dtype)
    m = node_model("MatMulInteger", {"A": np.zeros((1, 1), np.uint8), "B": b, "za": np.array(9, np.uint8), "zb": zb},
                   ["Y"], opset=10, initializers={"B": b, "zb": zb})
    sess = kiln.InferenceSession(m.SerializeToString())
    for rows in (5, 5, 33):
        a = RNG.integers(0, 256, (2, rows, 64)).astype(np.uint8)
        (y,) = sess.run(None, {"A": a, "za": np.array(9, np.uint8)})
        np.testing.assert_array_equal(y, (a.astype(np.int64) - 9) @ (b.astype(np.int64) - 7))


def test_conv_integer_int8_input_constant_weight_1d_and_3d():
    import kiln
    from onnx_builders import node_model
    for shape, wshape in (((2, 3, 11), (5, 3, 3)), ((1, 2, 4, 5, 6), (3, 2, 2, 3, 2))):
        w = RNG.integers(-128, 128, wshape).astype(np.int8)
        m = node_model("ConvInteger", {"x": np.zeros(shape, np.int8), "w": w, "zx": np.array(-3, np.int8)}, ["y"],
                       opset=10, initializers={"w": w}, pads=[1] * (2 * (len(shape) - 2)))
        sess = kiln.InferenceSession(m.SerializeToString())
        for _ in range(2):  # the packed weight is reused
            x = RNG.integers(-128, 128, shape).astype(np.int8)
            (y,) = sess.run(None, {"x": x, "zx": np.array(-3, np.int8)})
            conv = {3: torch.nn.functional.conv1d, 5: torch.nn.functional.conv3d}[len(shape)]
            ref = conv(torch.from_numpy(x.astype(np.float64) + 3), torch.from_numpy(w.astype(np.float64)), padding=1)
            np.testing.assert_array_equal(y, ref.numpy().astype(np.int64))
