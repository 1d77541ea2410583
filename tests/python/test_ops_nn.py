"""Conv, ConvTranspose, FusedConv, Gemm, pooling and normalization ops against PyTorch and numpy."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kiln
from kiln.capi import onnxruntime_pybind11_state as state
from concurrency import run_concurrently
from onnx_builders import node_model, run_node

RNG = np.random.default_rng(7)
torch.set_num_threads(1)


def randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def close(got, want, dtype=np.float32, rtol=None, atol=None):
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == np.dtype(dtype), got.dtype
    tol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-10
    np.testing.assert_allclose(got, want, rtol=rtol or tol, atol=atol or tol)


def run1(op, inputs, opset=17, initializers=None, **attrs):
    return run_node(op, inputs, ["Y"], opset=opset, initializers=initializers, **attrs)[0]


def f32(v):
    """A float attribute as the model stores it (float32), for float64 references."""
    return float(np.float32(v))


def run_ordered(op, inputs, constants=(), opset=17, domain="", **attrs):
    """One node whose inputs come in the order of `inputs`; the names in `constants` are
    initializers, the rest are fed."""
    inits = {k: v for k, v in inputs.items() if k in constants}
    model = node_model(op, inputs, ["Y"], opset=opset, initializers=inits, domain=domain, **attrs)
    sess = kiln.InferenceSession(model.SerializeToString())
    return sess.run(None, {k: v for k, v in inputs.items() if k not in constants and v is not None})[0]


def torch_pad(x, pads, value=0.0):
    """ONNX pads [b1, b2, ..., e1, e2, ...] applied with F.pad (which wants the last dim first)."""
    r = len(pads) // 2
    spec = []
    for d in reversed(range(r)):
        spec += [pads[d], pads[d + r]]
    return F.pad(x, spec, value=value)


CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def conv_ref(x, w, b, strides, dilations, pads, group):
    r = x.ndim - 2
    xp = torch_pad(t(x), pads)
    return CONV[r](xp, t(w), None if b is None else t(b), stride=strides, dilation=dilations, groups=group).numpy()


def same_pads(in_sizes, kernel, strides, dilations, upper):
    begins, ends = [], []
    for i, k, s, d in zip(in_sizes, kernel, strides, dilations):
        out = -(-i // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - i)
        small = total // 2
        b = small if upper else total - small
        begins.append(b)
        ends.append(total - b)
    return begins + ends


# --- Conv ------------------------------------------------------------------------------------

CONV_CASES = [
    # x shape, W shape, group, strides, dilations, pads
    ((2, 4, 13), (6, 4, 3), 1, [2], [1], [1, 2]),
    ((1, 6, 11), (6, 1, 5), 6, [1], [2], [4, 4]),  # depthwise, dilated
    ((2, 3, 9, 11), (4, 3, 3, 2), 1, [1, 1], [1, 1], [1, 0, 1, 0]),
    ((2, 6, 9, 11), (4, 3, 3, 2), 2, [2, 1], [1, 2], [1, 0, 2, 1]),  # groups, asymmetric pads
    ((1, 8, 10, 7), (8, 1, 3, 3), 8, [2, 2], [1, 1], [1, 1, 1, 1]),  # depthwise stride 2
    ((1, 3, 15, 17), (5, 3, 7, 7), 1, [2, 2], [1, 1], [3, 3, 3, 3]),  # stem-like 7x7 s2
    ((1, 4, 5, 6, 7), (6, 2, 3, 2, 3), 2, [1, 2, 1], [1, 1, 2], [1, 0, 1, 1, 1, 2]),
    ((2, 3, 4, 5, 6), (2, 3, 1, 1, 1), 1, [1, 1, 1], [1, 1, 1], [0, 0, 0, 0, 0, 0]),
    ((2, 24, 17, 19), (8, 24, 1, 1), 1, [1, 1], [1, 1], [0, 0, 0, 0]),  # pointwise, runs as a GEMM on NCHW
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("constant_w", [True, False])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[0])) + f"g{c[2]}")
def test_conv_matches_torch(case, constant_w, dtype):
    xs, ws, group, strides, dilations, pads = case
    x, w, b = randn(*xs, dtype=dtype), randn(*ws, dtype=dtype), randn(ws[0], dtype=dtype)
    weights = {"W": w, "B": b}
    attrs = dict(group=group, strides=strides, dilations=dilations, pads=pads)
    if constant_w:
        y = run1("Conv", {"X": x}, initializers=weights, **attrs)
    else:
        y = run1("Conv", {"X": x, **weights}, **attrs)
    close(y, conv_ref(x, w, b, strides, dilations, pads, group), dtype)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_auto_pad(auto_pad, rank):
    sizes = [9, 8, 7][:rank]
    kernel, strides, dilations = [3, 4, 2][:rank], [2, 1, 3][:rank], [1, 2, 1][:rank]
    x, w = randn(1, 3, *sizes), randn(4, 3, *kernel)
    y = run1("Conv", {"X": x}, initializers={"W": w}, auto_pad=auto_pad, strides=strides, dilations=dilations,
             kernel_shape=kernel)
    pads = [0] * (2 * rank) if auto_pad == "VALID" else same_pads(sizes, kernel, strides, dilations,
                                                                  auto_pad == "SAME_UPPER")
    close(y, conv_ref(x, w, None, strides, dilations, pads, 1))
    if auto_pad != "VALID":
        assert list(y.shape[2:]) == [-(-s // st) for s, st in zip(sizes, strides)]


def test_conv_defaults_and_reshaped_batches():
    w, b = randn(5, 3, 3, 3), randn(5)
    sess = kiln.InferenceSession(node_model("Conv", {"X": randn(1, 3, 6, 6), "W": w, "B": b}, ["Y"],
                                            initializers={"W": w, "B": b}).SerializeToString())
    for shape in [(1, 3, 6, 6), (3, 3, 9, 5), (3, 3, 9, 5), (1, 3, 6, 6), (0, 3, 6, 6)]:
        x = randn(*shape)
        (y,) = sess.run(None, {"X": x})
        close(y, F.conv2d(t(x), t(w), t(b)).numpy())


def test_conv_concurrent_runs():
    """Each run has its own kernels; relayout scratch is per thread."""
    w, b = randn(16, 8, 3, 3), randn(16)
    sess = kiln.InferenceSession(node_model("Conv", {"X": randn(1, 8, 12, 12), "W": w, "B": b}, ["Y"],
                                            initializers={"W": w, "B": b}, pads=[1, 1, 1, 1]).SerializeToString())
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        for i in range(15):
            x = rng.standard_normal((1 + i % 3, 8, 12 + seed % 2, 12)).astype(np.float32)
            y = sess.run(None, {"X": x})[0]
            if not np.allclose(y, F.conv2d(t(x), t(w), t(b), padding=1).numpy(), rtol=1e-4, atol=1e-4):
                errors.append((seed, i))

    run_concurrently(worker, 4)
    assert errors == []


def test_conv_resnet_shapes():
    for xs, ws, stride, pad in [((1, 64, 56, 56), (64, 64, 3, 3), 1, 1), ((1, 1024, 14, 14), (256, 1024, 1, 1), 1, 0),
                                ((1, 3, 224, 224), (64, 3, 7, 7), 2, 3)]:
        x, w, b = randn(*xs), randn(*ws) * 0.05, randn(ws[0])
        y = run1("Conv", {"X": x}, initializers={"W": w, "B": b}, strides=[stride] * 2, pads=[pad] * 4)
        close(y, F.conv2d(t(x), t(w), t(b), stride=stride, padding=pad).numpy(), rtol=1e-3, atol=1e-3)


def test_conv_float64_high_rank_and_no_bias():
    x, w = randn(1, 2, 3, 4, 3, 4, dtype=np.float64), randn(3, 2, 2, 2, 2, 2, dtype=np.float64)
    y = run1("Conv", {"X": x, "W": w}, pads=[1, 0, 0, 1, 0, 1, 0, 0])
    xp = np.pad(x, [(0, 0), (0, 0), (1, 0), (0, 1), (0, 0), (1, 0)])
    want = np.zeros((1, 3, 3, 4, 2, 4))
    for idx in np.ndindex(2, 2, 2, 2):
        sl = xp[:, :, idx[0]:idx[0] + 3, idx[1]:idx[1] + 4, idx[2]:idx[2] + 2, idx[3]:idx[3] + 4]
        want += np.einsum("ncabde,mc->nmabde", sl, w[(slice(None), slice(None)) + idx])
    close(y, want, np.float64)


def test_conv_errors():
    x, w = randn(1, 3, 5, 5), randn(4, 2, 3, 3)
    with pytest.raises(state.InvalidArgument, match=r"X \[1,3,5,5\] has 3 channels but W \[4,2,3,3\] expects 2"):
        run1("Conv", {"X": x, "W": w})
    with pytest.raises(state.InvalidArgument, match=r"not a multiple of group 3"):
        run1("Conv", {"X": randn(1, 6, 5, 5), "W": w}, group=3)
    with pytest.raises(state.InvalidArgument, match=r"B must be float \[4\]"):
        run1("Conv", {"X": randn(1, 2, 5, 5), "W": w, "B": randn(3)})
    with pytest.raises(state.InvalidArgument, match=r"kernel_shape \[2,2\] does not match W \[4,2,3,3\]"):
        run1("Conv", {"X": randn(1, 2, 5, 5), "W": w}, kernel_shape=[2, 2])
    with pytest.raises(state.InvalidArgument, match="smaller than the kernel extent"):
        run1("Conv", {"X": randn(1, 2, 2, 5), "W": w})
    with pytest.raises(state.InvalidArgument, match=r"pads \[1,1\] must have 4 values"):
        run1("Conv", {"X": randn(1, 2, 5, 5), "W": w}, pads=[1, 1])
    with pytest.raises(state.NotImplemented, match="int32"):
        run1("Conv", {"X": np.ones((1, 2, 5, 5), np.int32), "W": np.ones((4, 2, 3, 3), np.int32)})
    with pytest.raises(state.InvalidGraph, match="auto_pad must be"):
        run1("Conv", {"X": randn(1, 2, 5, 5), "W": w}, auto_pad="SAME")


# --- FusedConv -------------------------------------------------------------------------------

ACTIVATIONS = {
    "Relu": ([], torch.relu),
    "LeakyRelu": ([0.2], lambda y: F.leaky_relu(y, 0.2)),
    "Clip": ([-0.5, 0.7], lambda y: torch.clamp(y, -0.5, 0.7)),
    "Sigmoid": ([], torch.sigmoid),
    "HardSigmoid": ([0.3, 0.4], lambda y: torch.clamp(0.3 * y + 0.4, 0, 1)),
    "Tanh": ([], torch.tanh),
    "HardSwish": ([], F.hardswish),
    "Silu": ([], F.silu),
}


def run_fused(inputs, constants=(), **attrs):
    return run_ordered("FusedConv", inputs, constants, domain="kiln", **attrs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_z", [False, True])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_fused_conv(activation, with_z, dtype):
    params, fn = ACTIVATIONS[activation]
    x, w, b = randn(2, 4, 7, 6, dtype=dtype), randn(6, 2, 3, 3, dtype=dtype), randn(6, dtype=dtype)
    z = randn(2, 6, 4, 3, dtype=dtype)
    attrs = dict(activation=activation, group=2, strides=[2, 2], pads=[1, 1, 1, 1])
    if params:
        attrs["activation_params"] = params
    inputs = {"X": x, "W": w, "B": b, "Z": z} if with_z else {"X": x, "W": w, "B": b}
    # With Z the bias is fed; without, it is a constant like W.
    y = run_fused(inputs, ["W"] if with_z else ["W", "B"], **attrs)
    ref = F.conv2d(t(x), t(w), t(b), stride=2, padding=1, groups=2)
    if with_z:
        ref = ref + t(z)
    # activation_params are float attributes: float64 sees them rounded to float.
    close(y, fn(ref).numpy(), dtype, rtol=1e-6 if dtype == np.float64 else None,
          atol=1e-6 if dtype == np.float64 else None)


@pytest.mark.parametrize("kernel", [1, 3])
def test_fused_conv_residual_on_plain_and_blocked_layouts(kernel):
    x, w, b = randn(1, 32, 18, 17), randn(16, 32, kernel, kernel), randn(16)
    pad = kernel // 2
    z = randn(1, 16, 18, 17)
    y = run_fused({"X": x, "W": w, "B": b, "Z": z}, ["W", "B"], activation="Relu", pads=[pad] * 4)
    close(y, torch.relu(F.conv2d(t(x), t(w), t(b), padding=pad) + t(z)).numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("z_shape", [(1, 16, 1, 1), (17,), (2, 1, 18, 1), ()])
def test_fused_conv_broadcast_residual(z_shape, dtype):
    x, w, b = randn(2, 8, 18, 17, dtype=dtype), randn(16, 8, 3, 3, dtype=dtype), randn(16, dtype=dtype)
    z = randn(*z_shape, dtype=dtype)
    y = run_fused({"X": x, "W": w, "B": b, "Z": z}, ["W"], activation="LeakyRelu", activation_params=[0.5],
                  pads=[1, 1, 1, 1])
    close(y, F.leaky_relu(F.conv2d(t(x), t(w), t(b), padding=1) + t(z), 0.5).numpy(), dtype)


def test_fused_conv_errors():
    x, w = randn(1, 2, 5, 5), randn(3, 2, 3, 3)
    with pytest.raises(state.InvalidGraph, match="activation 'Gelu' is not one of"):
        run_fused({"X": x, "W": w}, ["W"], activation="Gelu")
    with pytest.raises(state.InvalidGraph, match="Clip takes 2 activation_params, got 1"):
        run_fused({"X": x, "W": w}, activation="Clip", activation_params=[1.0])
    with pytest.raises(state.InvalidArgument, match=r"Z must be float \[1,3,3,3\] \(the output's shape\) or broadcast "
                       r"to it, got float \[1,3,2,2\]"):
        run_fused({"X": x, "W": w, "B": randn(3), "Z": randn(1, 3, 2, 2)}, activation="Relu")


# --- ConvTranspose -------------------------------------------------------------------------------

def conv_transpose_ref(x, w, b, strides, dilations, group, pads_begin, pads_end, out_pad):
    """The full transposed convolution, extended by output_padding, then cropped by the pads
    (a negative pad extends with zeros) and shifted by the bias."""
    r = x.ndim - 2
    full = CONV_T[r](t(x), t(w), None, stride=strides, dilation=dilations, groups=group).numpy()
    full = np.pad(full, [(0, 0), (0, 0)] + [(0, p) for p in out_pad])
    sl = [slice(None), slice(None)]
    for d in range(r):
        pb, pe = pads_begin[d], pads_end[d]
        if pb < 0 or pe < 0:
            full = np.pad(full, [(0, 0)] * (2 + d) + [(max(0, -pb), max(0, -pe))] + [(0, 0)] * (r - d - 1))
        start = max(0, pb)
        sl.append(slice(start, full.shape[2 + d] - max(0, pe)))
    y = full[tuple(sl)]
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * r)
    return y


CONV_T_CASES = [
    # x shape, W shape, group, strides, dilations, pads, output_padding
    ((2, 4, 7), (4, 3, 3), 1, [2], [1], [1, 0], [1]),
    ((1, 6, 5), (6, 1, 4), 6, [3], [2], [0, 2], [0]),
    ((2, 6, 5, 7), (6, 2, 3, 2), 3, [2, 3], [1, 2], [1, 0, 1, 0], [1, 2]),
    ((1, 3, 4, 5), (3, 5, 3, 3), 1, [1, 1], [1, 1], [1, 1, 1, 1], [0, 0]),
    ((1, 4, 3, 4, 5), (4, 2, 2, 3, 2), 2, [2, 1, 2], [1, 2, 1], [0, 1, 1, 1, 0, 0], [1, 0, 1]),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("constant_w", [True, False])
@pytest.mark.parametrize("case", CONV_T_CASES, ids=lambda c: "x".join(map(str, c[0])) + f"g{c[2]}")
def test_conv_transpose_matches_torch(case, constant_w, dtype):
    xs, ws, group, strides, dilations, pads, out_pad = case
    x, w, b = randn(*xs, dtype=dtype), randn(*ws, dtype=dtype), randn(ws[1] * group, dtype=dtype)
    attrs = dict(group=group, strides=strides, dilations=dilations, pads=pads, output_padding=out_pad)
    if constant_w:
        y = run1("ConvTranspose", {"X": x}, initializers={"W": w, "B": b}, **attrs)
    else:
        y = run1("ConvTranspose", {"X": x, "W": w, "B": b}, **attrs)
    r = len(strides)
    close(y, conv_transpose_ref(x, w, b, strides, dilations, group, pads[:r], pads[r:], out_pad), dtype)


def test_conv_transpose_onnx_examples():
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    w = np.ones((1, 2, 3, 3), np.float32)
    # output_shape [10, 8] is one row and one column beyond the natural size: zeros at the end.
    y = run1("ConvTranspose", {"X": x, "W": w}, strides=[3, 2], output_shape=[10, 8])
    want = conv_transpose_ref(x, w, None, [3, 2], [1, 1], 1, [0, 0], [0, 0], [1, 1])
    close(y, want)
    assert y[0, 0, 0].tolist() == [0, 0, 1, 1, 3, 2, 2, 0] and not y[0, :, 9].any()
    close(run1("ConvTranspose", {"X": x, "W": w}, strides=[3, 2], output_padding=[1, 1]), want)
    close(run1("ConvTranspose", {"X": x, "W": w}, strides=[3, 2], output_shape=[10, 8], kernel_shape=[3, 3],
               output_padding=[1, 1]), want)
    # SAME_UPPER: output = input * stride, the odd padding goes at the end.
    y = run1("ConvTranspose", {"X": x, "W": w}, auto_pad="SAME_UPPER", strides=[2, 2])
    assert y[0, 0, :3].tolist() == [[0, 0, 1, 1, 3, 2], [0, 0, 1, 1, 3, 2], [3, 3, 8, 5, 12, 7]]
    y = run1("ConvTranspose", {"X": x, "W": w}, auto_pad="SAME_LOWER", strides=[2, 2])
    close(y, conv_transpose_ref(x, w, None, [2, 2], [1, 1], 1, [1, 1], [0, 0], [0, 0]))
    x = np.array([[[[3, 8, 1], [9, 5, 7], [3, 2, 6]]]], np.float32)
    y = run1("ConvTranspose", {"X": x, "W": np.array([[[[7, 2], [1, 9]]]], np.float32)}, dilations=[2, 2])
    assert y[0, 0].tolist() == [[21, 56, 13, 16, 2], [63, 35, 67, 10, 14], [24, 22, 76, 76, 21], [9, 5, 88, 45, 63],
                                [3, 2, 33, 18, 54]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_transpose_output_shape_and_valid(dtype):
    x, w, b = randn(2, 4, 5, 6, dtype=dtype), randn(4, 3, 3, 3, dtype=dtype), randn(3, dtype=dtype)
    # Natural size (11, 13): total padding (2, 1); without SAME_UPPER the odd one goes at the start.
    y = run1("ConvTranspose", {"X": x, "W": w, "B": b}, strides=[2, 2], output_shape=[9, 12])
    close(y, conv_transpose_ref(x, w, b, [2, 2], [1, 1], 1, [1, 1], [1, 0], [0, 0]), dtype)
    y = run1("ConvTranspose", {"X": x, "W": w, "B": b}, strides=[2, 2], output_shape=[2, 3, 9, 12],
             auto_pad="SAME_UPPER")
    close(y, conv_transpose_ref(x, w, b, [2, 2], [1, 1], 1, [1, 0], [1, 1], [0, 0]), dtype)
    y = run1("ConvTranspose", {"X": x, "W": w, "B": b}, strides=[2, 1], auto_pad="VALID", pads=[1, 1, 1, 1])
    close(y, conv_transpose_ref(x, w, b, [2, 1], [1, 1], 1, [0, 0], [0, 0], [0, 0]), dtype)
    # output_padding beyond the stride (the spec asks for less): still zeros plus bias at the end.
    y = run1("ConvTranspose", {"X": x, "W": w, "B": b}, strides=[2, 1], output_padding=[5, 4])
    close(y, conv_transpose_ref(x, w, b, [2, 1], [1, 1], 1, [0, 0], [0, 0], [5, 4]), dtype)


def test_conv_transpose_errors():
    with pytest.raises(state.InvalidArgument, match=r"X \[1,3,4,4\] has 3 channels but W \[2,3,3,3\] expects 2"):
        run1("ConvTranspose", {"X": randn(1, 3, 4, 4), "W": randn(2, 3, 3, 3)})
    with pytest.raises(state.InvalidArgument, match=r"output_shape \[5\] must have 2 values"):
        run1("ConvTranspose", {"X": randn(1, 2, 4, 4), "W": randn(2, 3, 3, 3)}, output_shape=[5])
    with pytest.raises(state.InvalidArgument, match="negative size"):
        run1("ConvTranspose", {"X": randn(1, 2, 1, 1), "W": randn(2, 3, 3, 3)}, pads=[3, 3, 3, 3])


# --- Gemm --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c_shape", [None, (), (1,), (11,), (1, 11), (7, 1), (7, 11), (1, 1)])
@pytest.mark.parametrize("trans", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_gemm(trans, c_shape, dtype):
    ta, tb = trans
    m, k, n = 7, 13, 11
    a = randn(*((k, m) if ta else (m, k)), dtype=dtype)
    b = randn(*((n, k) if tb else (k, n)), dtype=dtype)
    want_ab = (a.T if ta else a) @ (b.T if tb else b)
    for alpha, beta, constants in [(1.0, 1.0, ["B"]), (0.5, -2.0, []), (2.0, 1.0, ["B", "C"]), (1.0, 0.25, ["B"])]:
        inputs = {"A": a, "B": b}
        want = alpha * want_ab
        if c_shape is not None:
            c = randn(*c_shape, dtype=dtype) if c_shape else np.array(1.5, dtype)
            inputs["C"] = c
            want = want + beta * c
        y = run_ordered("Gemm", inputs, constants, alpha=alpha, beta=beta, transA=ta, transB=tb)
        close(y, want, dtype)


def test_gemm_linear_layer_and_opsets():
    x, w, b = randn(5, 64), randn(32, 64), randn(32)
    sess = kiln.InferenceSession(node_model("Gemm", {"A": x, "B": w, "C": b}, ["Y"], initializers={"B": w, "C": b},
                                            transB=1).SerializeToString())
    for rows in (5, 1, 9, 0):
        xi = randn(rows, 64)
        close(sess.run(None, {"A": xi})[0], xi @ w.T + b)
    close(run1("Gemm", {"A": x, "B": w.T.copy()}, opset=11), x @ w.T)  # C optional from opset 11
    close(run1("Gemm", {"A": x, "B": w.T.copy(), "C": randn(5, 32)}, opset=6, broadcast=0, beta=0.0), x @ w.T)
    close(run1("Gemm", {"A": x, "B": w.T.copy(), "C": b}, alpha=0.0), np.broadcast_to(b, (5, 32)))
    close(run1("Gemm", {"A": randn(3, 0), "B": randn(0, 4), "C": b[:4]}), np.broadcast_to(b[:4], (3, 4)))


def test_gemm_errors():
    with pytest.raises(state.InvalidArgument, match=r"A \[2,3\] and B \[4,5\] do not match: A has K=3, B has K=4"):
        run1("Gemm", {"A": randn(2, 3), "B": randn(4, 5)})
    with pytest.raises(state.InvalidArgument, match=r"C \[3,5\] cannot be broadcast to the output \[2,5\]"):
        run1("Gemm", {"A": randn(2, 3), "B": randn(3, 5), "C": randn(3, 5)})
    with pytest.raises(state.InvalidArgument, match="must be 2-D"):
        run1("Gemm", {"A": randn(2, 3, 1), "B": randn(3, 5)})
    with pytest.raises(state.NotImplemented, match="int32"):
        run1("Gemm", {"A": np.ones((2, 3), np.int32), "B": np.ones((3, 5), np.int32)})


# --- MaxPool -----------------------------------------------------------------------------------

MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}

POOL_CASES = [
    # x shape, kernel, strides, pads (symmetric), dilations, ceil_mode
    ((2, 3, 11), [3], [2], [1], [1], 0),
    ((2, 3, 12), [4], [3], [2], [2], 1),
    ((2, 3, 9, 10), [3, 2], [2, 2], [1, 0], [1, 1], 0),
    ((1, 4, 10, 9), [3, 3], [2, 3], [1, 1], [1, 1], 1),
    ((1, 2, 11, 12), [2, 3], [1, 2], [0, 1], [2, 2], 1),
    ((1, 2, 5, 6, 7), [2, 3, 2], [2, 1, 2], [1, 1, 0], [1, 1, 2], 1),
]


def pool_id(c):
    return "x".join(map(str, c[0])) + f"k{''.join(map(str, c[1]))}c{c[5]}d{max(c[4])}"


def with_indices(x_shape, idx, column_major=False):
    """PyTorch's per-plane indices as ONNX's flattened ones (optionally column-major in the plane)."""
    n, c, spatial = x_shape[0], x_shape[1], x_shape[2:]
    plane = int(np.prod(spatial))
    if column_major:
        coords = np.unravel_index(idx, spatial)
        idx = np.ravel_multi_index(coords, spatial, order="F")
    return idx + (np.arange(n * c).reshape(n, c) * plane).reshape((n, c) + (1,) * len(spatial))


@pytest.mark.parametrize("case", POOL_CASES, ids=pool_id)
def test_max_pool_with_indices(case):
    xs, kernel, strides, pads, dil, ceil = case
    x = randn(*xs)
    attrs = dict(kernel_shape=kernel, strides=strides, pads=pads + pads, dilations=dil, ceil_mode=ceil)
    want, idx = MAX_POOL[len(kernel)](t(x), kernel, strides, pads, dil, bool(ceil), return_indices=True)
    close(run1("MaxPool", {"X": x}, **attrs), want.numpy())
    y, i = run_node("MaxPool", {"X": x}, ["Y", "I"], **attrs)
    close(y, want.numpy())
    np.testing.assert_array_equal(i, with_indices(xs, idx.numpy()))
    y, i = run_node("MaxPool", {"X": x}, ["Y", "I"], storage_order=1, **attrs)
    np.testing.assert_array_equal(i, with_indices(xs, idx.numpy(), column_major=True))
    for dtype in (np.float64, np.int8, np.uint8):
        xd = (x * 40).astype(dtype) if dtype != np.uint8 else (x * 40 + 128).clip(0, 255).astype(dtype)
        want_d = MAX_POOL[len(kernel)](t(xd.astype(np.float64)), kernel, strides, pads, dil, bool(ceil))
        got = run1("MaxPool", {"X": xd}, **attrs)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want_d.numpy().astype(dtype))


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"])
def test_max_pool_auto_pad_and_asymmetric_pads(auto_pad):
    x = randn(2, 3, 9, 8)
    kernel, strides = [3, 4], [2, 3]
    if auto_pad == "NOTSET":
        pads = [0, 2, 2, 1]
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    else:
        pads = same_pads([9, 8], kernel, strides, [1, 1], auto_pad == "SAME_UPPER")
    attrs = dict(kernel_shape=kernel, strides=strides, auto_pad=auto_pad)
    if auto_pad == "NOTSET":
        attrs["pads"] = pads
    want = F.max_pool2d(torch_pad(t(x), pads, value=-np.inf), kernel, strides).numpy()
    close(run1("MaxPool", {"X": x}, **attrs), want)
    y, i = run_node("MaxPool", {"X": x}, ["Y", "I"], **attrs)
    close(y, want)
    assert (x.reshape(-1)[i] == y).all()


def test_max_pool_first_of_equal_values_and_opset_8():
    x = np.array([[[[1, 3, 3], [3, 2, 1], [0, 3, 3]]]], np.float32)
    y, i = run_node("MaxPool", {"X": x}, ["Y", "I"], opset=8, kernel_shape=[2, 2])
    assert y.tolist() == [[[[3, 3], [3, 3]]]] and i.tolist() == [[[[1, 1], [3, 7]]]]


# --- AveragePool -------------------------------------------------------------------------------

AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("include_pad", [0, 1])
@pytest.mark.parametrize("case", [c for c in POOL_CASES if max(c[4]) == 1] +
                         [((1, 2, 10, 11), [3, 3], [2, 2], [1, 1], [1, 1], 1), ((2, 3, 8), [3], [3], [1], [1], 1)],
                         ids=pool_id)
def test_average_pool(case, include_pad, dtype):
    xs, kernel, strides, pads, _, ceil = case
    x = randn(*xs, dtype=dtype)
    y = run1("AveragePool", {"X": x}, kernel_shape=kernel, strides=strides, pads=pads + pads, ceil_mode=ceil,
             count_include_pad=include_pad)
    want = AVG_POOL[len(kernel)](t(x), kernel, strides, pads, bool(ceil), bool(include_pad))
    close(y, want.numpy(), dtype)


def unfold_average(x, kernel, strides, pads, dil, include_pad):
    """2-D average pooling with dilations through F.unfold (which pads with zeros)."""
    n, c, h, w = x.shape
    xp = torch_pad(t(x), pads)
    cols = F.unfold(xp, kernel, dilation=dil, stride=strides).reshape(n, c, kernel[0] * kernel[1], -1)
    ones = torch_pad(torch.ones(1, 1, h, w, dtype=xp.dtype), pads, value=1.0 if include_pad else 0.0)
    counts = F.unfold(ones, kernel, dilation=dil, stride=strides).sum(1)
    oh = (h + pads[0] + pads[2] - dil[0] * (kernel[0] - 1) - 1) // strides[0] + 1
    return (cols.sum(2) / counts).reshape(n, c, oh, -1).numpy()


@pytest.mark.parametrize("include_pad", [0, 1])
def test_average_pool_dilations_opset_19(include_pad):
    x = randn(2, 3, 11, 10)
    kernel, strides, pads, dil = [3, 2], [2, 1], [2, 1, 1, 0], [2, 3]
    y = run1("AveragePool", {"X": x}, opset=19, kernel_shape=kernel, strides=strides, pads=pads, dilations=dil,
             count_include_pad=include_pad)
    close(y, unfold_average(x, kernel, strides, pads, dil, include_pad))


def test_average_pool_same_lower_and_errors():
    x = randn(1, 2, 7, 6)
    pads = same_pads([7, 6], [2, 3], [2, 2], [1, 1], upper=False)
    y = run1("AveragePool", {"X": x}, kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_LOWER")
    close(y, unfold_average(x, [2, 3], [2, 2], pads, [1, 1], include_pad=False))
    with pytest.raises(state.InvalidGraph, match="kernel_shape is required"):
        run1("AveragePool", {"X": x})
    with pytest.raises(state.InvalidArgument, match=r"X \[1,2,7,6\] must be \[N, C\] plus 3 spatial dimensions"):
        run1("AveragePool", {"X": x}, kernel_shape=[2, 2, 2])
    with pytest.raises(state.NotImplemented, match="int8"):
        run1("AveragePool", {"X": x.astype(np.int8)}, kernel_shape=[2, 2])
    with pytest.raises(state.InvalidArgument, match="strides must be positive"):
        run1("MaxPool", {"X": x}, kernel_shape=[2, 2], strides=[0, 1])


# --- LpPool and the global pools ---------------------------------------------------------------

@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pool(p):
    x = randn(2, 3, 9, 8)
    y = run1("LpPool", {"X": x}, kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 0, 1], p=p)
    xp = torch_pad(t(np.abs(x)), [1, 0, 0, 1])
    close(y, F.lp_pool2d(xp, p, [3, 2], [2, 2]).numpy())
    y = run1("LpPool", {"X": x[:, :, 0]}, kernel_shape=[4], strides=[3], p=p)
    close(y, F.lp_pool1d(t(np.abs(x[:, :, 0])), p, 4, 3).numpy())
    y = run1("LpPool", {"X": x.astype(np.float64)}, opset=1, kernel_shape=[2, 2], p=float(p))
    close(y, F.lp_pool2d(t(np.abs(x.astype(np.float64))), p, 2, 1).numpy(), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 5, 7, 9), (1, 2, 3, 4, 5), (0, 3, 4, 4)])
def test_global_pools(shape, dtype):
    x = randn(*shape, dtype=dtype)
    axes = tuple(range(2, len(shape)))
    close(run1("GlobalAveragePool", {"X": x}), x.mean(axis=axes, keepdims=True), dtype)
    close(run1("GlobalMaxPool", {"X": x}), x.max(axis=axes, keepdims=True, initial=-np.inf), dtype)
    close(run1("GlobalLpPool", {"X": x}), np.sqrt((x * x).sum(axis=axes, keepdims=True)), dtype)
    close(run1("GlobalLpPool", {"X": x}, p=3), (np.abs(x) ** 3).sum(axis=axes, keepdims=True) ** (1 / 3), dtype)
    close(run1("GlobalLpPool", {"X": x}, p=1), np.abs(x).sum(axis=axes, keepdims=True), dtype)


def test_global_pool_errors():
    with pytest.raises(state.InvalidArgument, match="at least one spatial dimension"):
        run1("GlobalAveragePool", {"X": randn(2, 3)})
    with pytest.raises(state.NotImplemented, match="int32"):
        run1("GlobalMaxPool", {"X": np.ones((1, 2, 3), np.int32)})


# --- BatchNormalization, InstanceNormalization, LRN --------------------------------------------

@pytest.mark.parametrize("opset", [7, 9, 14, 15])
@pytest.mark.parametrize("shape", [(2, 3), (2, 4, 5), (3, 5, 4, 6), (1, 2, 3, 4, 5), (0, 3, 4)])
def test_batch_normalization(shape, opset):
    for dtype in (np.float32, np.float64):
        c = shape[1]
        x = randn(*shape, dtype=dtype)
        scale, b, mean = randn(c, dtype=dtype), randn(c, dtype=dtype), randn(c, dtype=dtype)
        var = RNG.random(c).astype(dtype) + 0.1
        y = run1("BatchNormalization", {"X": x, "scale": scale, "B": b, "mean": mean, "var": var}, opset=opset,
                 epsilon=1e-3)
        want = F.batch_norm(t(x), t(mean), t(var), t(scale), t(b), training=False, eps=f32(1e-3))
        close(y, want.numpy(), dtype, rtol=1e-9 if dtype == np.float64 else None)


def test_batch_normalization_mixed_types_and_constants():
    x = randn(2, 3, 4, 4)
    scale, b, mean, var = (randn(3, dtype=np.float64) for _ in range(4))
    var = np.abs(var) + 0.5
    y = run1("BatchNormalization", {"X": x}, opset=15,
             initializers={"scale": scale, "B": b, "mean": mean, "var": var})
    want = F.batch_norm(t(x.astype(np.float64)), t(mean), t(var), t(scale), t(b), training=False, eps=1e-5)
    close(y, want.numpy().astype(np.float32))


def test_batch_normalization_per_activation_spatial_0():
    x = randn(3, 2, 4, 5)
    scale, b, mean = randn(2, 4, 5), randn(2, 4, 5), randn(2, 4, 5)
    var = RNG.random((2, 4, 5)).astype(np.float32) + 0.1
    y = run1("BatchNormalization", {"X": x, "scale": scale, "B": b, "mean": mean, "var": var}, opset=7, spatial=0)
    close(y, (x - mean) / np.sqrt(var + 1e-5) * scale + b)
    with pytest.raises(state.InvalidArgument, match=r"scale must be \[2,4,5\] for X \[3,2,4,5\], got \[2\]"):
        run1("BatchNormalization", {"X": x, "scale": randn(2), "B": b, "mean": mean, "var": var}, opset=7, spatial=0)


def test_batch_normalization_training_is_refused():
    x, p = randn(2, 3, 4), randn(3)
    with pytest.raises(state.NotImplemented, match="training_mode=1 is not supported"):
        run1("BatchNormalization", {"X": x, "scale": p, "B": p, "mean": p, "var": p}, opset=15, training_mode=1)
    with pytest.raises(state.NotImplemented, match="exists only in training mode"):
        run_node("BatchNormalization", {"X": x, "scale": p, "B": p, "mean": p, "var": p}, ["Y", "running_mean"],
                 opset=15)
    with pytest.raises(state.InvalidArgument, match=r"var must be \[3\] for X \[2,3,4\], got \[4\]"):
        run1("BatchNormalization", {"X": x, "scale": p, "B": p, "mean": p, "var": randn(4)})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 4, 5, 6), (1, 2, 3, 4, 5), (2, 3, 1)])
def test_instance_normalization(shape, dtype):
    x = randn(*shape, dtype=dtype) * 3 + 2
    scale, b = randn(shape[1], dtype=dtype), randn(shape[1], dtype=dtype)
    y = run1("InstanceNormalization", {"input": x, "scale": scale, "B": b}, epsilon=1e-4)
    axes = tuple(range(2, x.ndim))
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    bshape = (1, -1) + (1,) * (x.ndim - 2)
    close(y, (x - mean) / np.sqrt(var + f32(1e-4)) * scale.reshape(bshape) + b.reshape(bshape), dtype)
    if x.size // (x.shape[0] * x.shape[1]) > 1:
        close(y, F.instance_norm(t(x), weight=t(scale), bias=t(b), eps=1e-4).numpy(), dtype,
              rtol=1e-8 if dtype == np.float64 else None)


def test_instance_normalization_errors():
    with pytest.raises(state.InvalidArgument, match=r"scale must be float \[3\]"):
        run1("InstanceNormalization", {"input": randn(2, 3, 4), "scale": randn(4), "B": randn(3)})


def lrn_ref(x, size, alpha, beta, bias):
    c = x.shape[1]
    below, above = (size - 1) // 2, size - 1 - (size - 1) // 2
    sq = np.zeros_like(x)
    for i in range(c):
        sq[:, i] = (x[:, max(0, i - below):min(c, i + above + 1)] ** 2).sum(axis=1)
    return x / (bias + alpha / size * sq) ** beta


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 3, 4, 5])
def test_lrn(size, dtype):
    x = randn(2, 7, 5, 6, dtype=dtype)
    y = run1("LRN", {"X": x}, size=size, alpha=0.02, beta=0.6, bias=1.5)
    close(y, lrn_ref(x, size, f32(0.02), f32(0.6), f32(1.5)), dtype)
    if size % 2 == 1:  # PyTorch centres the window the same way for odd sizes
        want = F.local_response_norm(t(x), size, alpha=f32(0.02), beta=f32(0.6), k=f32(1.5))
        close(y, want.numpy(), dtype, rtol=1e-9 if dtype == np.float64 else None)
    x3 = randn(1, 6, 4, dtype=dtype)
    close(run1("LRN", {"X": x3}, opset=1, size=size), lrn_ref(x3, size, f32(1e-4), 0.75, 1.0), dtype)


def test_lrn_errors():
    with pytest.raises(state.InvalidGraph, match="size must be a positive"):
        run1("LRN", {"X": randn(1, 2, 3)})
