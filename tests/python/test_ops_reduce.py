"""Reductions and their relatives against numpy and PyTorch: Reduce*, ArgMax/ArgMin, Softmax,
LogSoftmax, Hardmax, LayerNormalization, GroupNormalization, MeanVarianceNormalization, TopK,
Einsum."""

import numpy as np
import pytest
import torch

from kiln.capi import onnxruntime_pybind11_state as state
from onnx_builders import run_node

RNG = np.random.default_rng(0)


def randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def run1(op, inputs, opset=17, **attrs):
    return run_node(op, inputs, ["Y"], opset=opset, **attrs)[0]


def close(got, want, rtol=1e-5, atol=1e-6):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# --- Reduce* -----------------------------------------------------------------------------------

def _sum(x, axis, keepdims):
    return np.sum(x, axis=axis, keepdims=keepdims)


REDUCE = {
    "ReduceSum": _sum,
    "ReduceMean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "ReduceMax": lambda x, a, k: np.max(x, axis=a, keepdims=k),
    "ReduceMin": lambda x, a, k: np.min(x, axis=a, keepdims=k),
    "ReduceProd": lambda x, a, k: np.prod(x, axis=a, keepdims=k),
    "ReduceL1": lambda x, a, k: _sum(np.abs(x), a, k),
    "ReduceL2": lambda x, a, k: np.sqrt(_sum(x * x, a, k)),
    "ReduceLogSum": lambda x, a, k: np.log(_sum(x, a, k)),
    "ReduceLogSumExp": lambda x, a, k: np.log(_sum(np.exp(x), a, k)),
    "ReduceSumSquare": lambda x, a, k: _sum(x * x, a, k),
}
AXES_INPUT_SINCE = {op: 13 if op == "ReduceSum" else 18 for op in REDUCE}


def reduce_node(op, x, axes=None, opset=17, **attrs):
    """Runs `op` with axes as an attribute or an input, whichever the opset takes."""
    if opset >= AXES_INPUT_SINCE[op]:
        inputs = {"X": x, "axes": None if axes is None else np.array(axes, np.int64)}
        return run1(op, inputs, opset, **attrs)
    if axes is not None:
        attrs["axes"] = list(axes)
    return run1(op, {"X": x}, opset, **attrs)


def reduce_ref(op, x, axes, keepdims):
    want = REDUCE[op](x.astype(np.float64), None if axes is None else tuple(axes), bool(keepdims))
    return np.asarray(want).astype(x.dtype)


def positive(*shape, dtype=np.float32):
    return (RNG.random(shape) + 0.5).astype(dtype)


@pytest.mark.parametrize("op", list(REDUCE))
@pytest.mark.parametrize("axes", [None, [0], [1], [2], [-1], [0, 2], [-3, -2], [1, 2], [0, 1, 2]])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_float_axes(op, axes, keepdims):
    x = positive(3, 4, 5)  # positive: ReduceLogSum is defined
    got = reduce_node(op, x, axes, opset=17, keepdims=keepdims)
    close(got, reduce_ref(op, x, axes, keepdims), rtol=2e-5)


@pytest.mark.parametrize("op", list(REDUCE))
@pytest.mark.parametrize("opset", [11, 13, 18])
def test_reduce_opsets_and_odd_shapes(op, opset):
    x = positive(2, 3, 5, 7, dtype=np.float64)
    for axes in ([1, 3], [0, 2], [-1]):  # strided groups both ways, and the contiguous row
        close(reduce_node(op, x, axes, opset=opset), reduce_ref(op, x, axes, 1), rtol=1e-12)
    close(reduce_node(op, x, None, opset=opset, keepdims=0), reduce_ref(op, x, None, 0), rtol=1e-12)


@pytest.mark.parametrize("op", list(REDUCE))
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_reduce_integers(op, dtype):
    x = RNG.integers(1, 3, size=(2, 3, 4)).astype(dtype)  # products stay within int32
    for axes in ([1], [0, 2], None):
        got = reduce_node(op, x, axes, keepdims=0)
        want = REDUCE[op](x.astype(np.float64), None if axes is None else tuple(axes), False)
        close(got, np.trunc(want).astype(dtype))  # integer results truncate, as numpy's astype


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_reduce_max_min_small_ints(op, dtype):
    info = np.iinfo(dtype)
    x = RNG.integers(info.min, info.max, size=(4, 37), endpoint=True).astype(dtype)
    for axes in ([0], [1], None):
        close(reduce_node(op, x, axes, opset=18), reduce_ref(op, x, axes, 1))


def test_reduce_large_parallel_paths():
    x = positive(100000)  # one output: threads split the row
    close(reduce_node("ReduceSum", x, None, keepdims=0), np.sum(x, dtype=np.float64).astype(np.float32), rtol=1e-4)
    y = positive(70000, 3)  # few outputs, many reduced rows
    close(reduce_node("ReduceMean", y, [0], keepdims=0), y.mean(0, dtype=np.float64).astype(np.float32), rtol=1e-4)
    close(reduce_node("ReduceMax", y, [0], keepdims=0), y.max(0))
    z = randn(64, 300, 9)
    close(reduce_node("ReduceSum", z, [1]), z.sum(1, keepdims=True), rtol=1e-4, atol=1e-4)
    close(reduce_node("ReduceL2", z, [0, 2]), np.sqrt((z * z).sum((0, 2), keepdims=True)), rtol=1e-4)


def test_reduce_empty_reductions_follow_the_spec():
    x = np.zeros((2, 0, 3), np.float32)
    want = {"ReduceSum": 0, "ReduceProd": 1, "ReduceMax": -np.inf, "ReduceMin": np.inf, "ReduceL1": 0,
            "ReduceL2": 0, "ReduceSumSquare": 0, "ReduceLogSum": -np.inf, "ReduceLogSumExp": -np.inf,
            "ReduceMean": np.nan}
    for op, v in want.items():
        close(reduce_node(op, x, [1], keepdims=0), np.full((2, 3), v, np.float32))
    xi = np.zeros((0, 4), np.int32)
    close(reduce_node("ReduceMax", xi, [0], keepdims=1), np.full((1, 4), np.iinfo(np.int32).min, np.int32))
    close(reduce_node("ReduceMin", xi, [0], keepdims=0), np.full((4,), np.iinfo(np.int32).max, np.int32))
    # Nothing left to produce: an empty output.
    close(reduce_node("ReduceSum", np.zeros((0, 3), np.float32), [1], keepdims=0), np.zeros((0,), np.float32))
    close(reduce_node("ReduceSum", np.zeros((0, 3), np.float32), [1]), np.zeros((0, 1), np.float32))


def test_reduce_noop_with_empty_axes():
    x = randn(2, 3)
    close(reduce_node("ReduceSum", x, None, opset=13, noop_with_empty_axes=1), x)
    close(reduce_node("ReduceSum", x, [], opset=13, noop_with_empty_axes=1), x)
    close(reduce_node("ReduceSum", x, [], opset=13), x.sum(keepdims=True))
    close(reduce_node("ReduceMax", x, None, opset=18, noop_with_empty_axes=1), x)
    close(reduce_node("ReduceMean", x, [1], opset=18, noop_with_empty_axes=1), x.mean(1, keepdims=True))


def test_reduce_scalar_input_and_size_one_axes():
    close(reduce_node("ReduceSum", np.array(3.5, np.float32), None), np.array(3.5, np.float32))
    x = randn(1, 5, 1)
    close(reduce_node("ReduceMax", x, [0, 2], keepdims=0), x.reshape(5))


def test_reduce_log_sum_exp_is_stable_and_max_min_keep_nan():
    x = np.array([[1000.0, 1000.0], [-1000.0, -np.inf]], np.float32)
    close(reduce_node("ReduceLogSumExp", x, [1], keepdims=0), np.array([1000 + np.log(2), -1000], np.float32))
    y = np.array([[1, np.nan, 3], [4, 5, 6]], np.float32)
    close(reduce_node("ReduceMax", y, [1], keepdims=0), np.array([np.nan, 6], np.float32))
    close(reduce_node("ReduceMin", y, [1], keepdims=0), np.array([np.nan, 4], np.float32))


def test_reduce_errors():
    x = randn(2, 3)
    with pytest.raises(state.InvalidArgument, match=r"axes entry 2 is out of range for a tensor of rank 2"):
        reduce_node("ReduceSum", x, [2])
    with pytest.raises(state.InvalidArgument, match="lists dimension 1 twice"):
        reduce_node("ReduceMean", x, [1, -1], opset=11)
    with pytest.raises(state.InvalidArgument, match=r"axes must be a 1-D tensor\(int64\)"):
        run1("ReduceSum", {"X": x, "axes": np.array([0], np.int32)}, opset=13)
    with pytest.raises(state.InvalidGraph, match="axes is an input since opset 18"):
        run1("ReduceMax", {"X": x}, opset=18, axes=[0])
    with pytest.raises(state.NotImplemented, match="ReduceSum: element type uint8 is not supported"):
        reduce_node("ReduceSum", x.astype(np.uint8), [0])


# --- ArgMax / ArgMin ---------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis", [-3, -1, 0, 1, 2])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("last", [0, 1])
def test_arg_reduce_with_ties(op, axis, keepdims, last):
    x = RNG.integers(0, 3, size=(3, 4, 5)).astype(np.float32)  # many ties
    f = np.argmax if op == "ArgMax" else np.argmin
    if last:
        n = x.shape[axis]
        want = n - 1 - f(np.flip(x, axis), axis=axis)
    else:
        want = f(x, axis=axis)
    if keepdims:
        want = np.expand_dims(want, axis)
    close(run1(op, {"X": x}, opset=13, axis=axis, keepdims=keepdims, select_last_index=last), want.astype(np.int64))


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64, np.uint8, np.int8])
def test_arg_reduce_dtypes_and_long_rows(dtype):
    x = RNG.integers(0, 100, size=(3, 1000)).astype(dtype)
    close(run1("ArgMax", {"X": x}, axis=1, keepdims=0), np.argmax(x, 1))
    close(run1("ArgMin", {"X": x}, axis=0, keepdims=0), np.argmin(x, 0))
    close(run1("ArgMax", {"X": x}, opset=11), np.argmax(x, 0)[None])  # default axis 0, keepdims 1
    close(run1("ArgMax", {"X": x}, opset=12, axis=1, keepdims=0, select_last_index=1), 999 - np.argmax(x[:, ::-1], 1))
    close(run1("ArgMin", {"X": x}, opset=12, axis=1, keepdims=0, select_last_index=1), 999 - np.argmin(x[:, ::-1], 1))


def test_arg_reduce_errors_and_empty():
    with pytest.raises(state.InvalidArgument, match="empty axis 1"):
        run1("ArgMax", {"X": np.zeros((2, 0), np.float32)}, axis=1)
    with pytest.raises(state.InvalidArgument, match="axis 2 is out of range"):
        run1("ArgMin", {"X": np.zeros((2, 3), np.float32)}, axis=2)
    close(run1("ArgMax", {"X": np.zeros((0, 3), np.float32)}, axis=1), np.zeros((0, 1), np.int64))


# --- Softmax / LogSoftmax / Hardmax ------------------------------------------------------------

def softmax_ref(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax_ref(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def hardmax_ref(x, axis):
    idx = np.expand_dims(np.argmax(x, axis), axis)
    out = np.zeros_like(x)
    np.put_along_axis(out, idx, 1, axis)
    return out


FAMILY = {"Softmax": softmax_ref, "LogSoftmax": log_softmax_ref, "Hardmax": hardmax_ref}


def flattened(ref, x, axis):
    """The pre-opset-13 semantics: normalize rows of the 2-D flattening at axis."""
    n = int(np.prod(x.shape[:axis]))
    return ref(x.reshape(n, -1), 1).reshape(x.shape)


@pytest.mark.parametrize("op", list(FAMILY))
@pytest.mark.parametrize("axis", [-3, -2, -1, 0, 1, 2])
def test_softmax_family_along_axis(op, axis):
    x = randn(3, 4, 37)
    close(run1(op, {"X": x}, opset=13, axis=axis), FAMILY[op](x, axis), rtol=1e-5, atol=1e-6)
    xd = x.astype(np.float64)
    close(run1(op, {"X": xd}, opset=13, axis=axis), FAMILY[op](xd, axis), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("op", list(FAMILY))
@pytest.mark.parametrize("opset", [1, 11])
@pytest.mark.parametrize("axis", [None, 0, 2, -1])
def test_softmax_family_flattens_before_opset_13(op, opset, axis):
    if opset == 1 and axis is not None and axis < 0:
        return
    x = randn(2, 3, 5)
    attrs = {} if axis is None else {"axis": axis}
    a = 1 if axis is None else axis % 3
    close(run1(op, {"X": x}, opset=opset, **attrs), flattened(FAMILY[op], x, a), rtol=1e-5, atol=1e-6)


def test_softmax_attention_rows_match_torch():
    for seq in (128, 131, 7):  # whole vectors, a masked tail, a row shorter than a vector
        x = randn(2, 4, 16, seq) * 4
        want = torch.softmax(torch.from_numpy(x), -1).numpy()
        close(run1("Softmax", {"X": x}), want, rtol=1e-5, atol=1e-7)
        want_log = torch.log_softmax(torch.from_numpy(x), -1).numpy()
        close(run1("LogSoftmax", {"X": x}), want_log, rtol=1e-5, atol=2e-5)


def test_softmax_masking_large_values_and_empty():
    x = randn(4, 20)
    x[0, 5:] = -np.inf  # masked positions get exactly 0
    x[1] = x[1] * 1e4
    x[2, 1:] = -np.inf  # even beside a lone term of 1
    x[3] = np.linspace(-100, 0, 20)  # terms from 1 down to e^-100, across the float range's end
    y = run1("Softmax", {"X": x})
    close(y, softmax_ref(x, -1), rtol=1e-5, atol=1e-7)
    close(y[3], softmax_ref(x[3:], -1)[0], rtol=1e-5, atol=1e-37)
    assert (y[0, 5:] == 0).all() and (y[2, 1:] == 0).all() and y[2, 0] == 1
    ls = run1("LogSoftmax", {"X": x})
    assert np.isneginf(ls[0, 5:]).all()
    assert np.isnan(run1("Softmax", {"X": np.full((1, 4), -np.inf, np.float32)})).all()  # as numpy
    close(run1("Softmax", {"X": np.zeros((0, 5), np.float32)}), np.zeros((0, 5), np.float32))
    close(run1("Softmax", {"X": np.zeros((2, 0, 3), np.float32)}, axis=1), np.zeros((2, 0, 3), np.float32))


def test_hardmax_ties_pick_the_first():
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2]], np.float32)
    close(run1("Hardmax", {"X": x}), np.array([[0, 1, 0, 0], [1, 0, 0, 0]], np.float32))
    close(run1("Hardmax", {"X": x}, axis=0), np.array([[0, 1, 1, 0], [1, 0, 0, 1]], np.float32))


def test_softmax_errors():
    with pytest.raises(state.InvalidArgument, match="axis 3 is out of range for a tensor of rank 3"):
        run1("Softmax", {"X": randn(2, 3, 4)}, axis=3)
    with pytest.raises(state.NotImplemented, match="Softmax: element type int32 is not supported"):
        run1("Softmax", {"X": np.zeros((2, 3), np.int32)})


# --- LayerNormalization ------------------------------------------------------------------------

def layer_norm_ref(x, scale, bias, axis, eps):
    axes = tuple(range(axis % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    inv = 1 / np.sqrt(var + eps)
    y = (x - mean) * inv * scale
    return (y if bias is None else y + bias), mean, inv


def test_layer_norm_matches_torch_over_last_axis():
    x = randn(2, 5, 768)
    w, b = randn(768), randn(768)
    want = torch.nn.functional.layer_norm(torch.from_numpy(x), (768,), torch.from_numpy(w), torch.from_numpy(b), 1e-5)
    y, mean, inv = run_node("LayerNormalization", {"X": x, "Scale": w, "B": b}, ["Y", "Mean", "InvStdDev"])
    close(y, want.numpy(), rtol=1e-4, atol=1e-5)
    _, m, i = layer_norm_ref(x.astype(np.float64), w, b, -1, 1e-5)
    close(mean, m.astype(np.float32), rtol=1e-5, atol=1e-6)
    close(inv, i.astype(np.float32), rtol=1e-4)


@pytest.mark.parametrize("axis", [0, 1, -2, 2])
def test_layer_norm_axes_broadcast_scale_and_no_bias(axis):
    x = randn(3, 4, 5, dtype=np.float64)
    norm = x.shape[axis % 3:]
    scale = RNG.standard_normal(norm[-1:]).astype(np.float64)  # broadcast over the leading normalized dims
    bias = RNG.standard_normal(norm).astype(np.float64)
    want, _, _ = layer_norm_ref(x, scale, bias, axis, 1e-3)
    close(run1("LayerNormalization", {"X": x, "Scale": scale, "B": bias}, axis=axis, epsilon=1e-3), want, rtol=1e-10)
    want, _, _ = layer_norm_ref(x, scale, None, axis, 1e-5)
    close(run1("LayerNormalization", {"X": x, "Scale": scale}, axis=axis), want, rtol=1e-10)


def test_layer_norm_only_mean_output_and_odd_rows():
    x = randn(7, 13)
    w = randn(13)
    y, mean = run_node("LayerNormalization", {"X": x, "Scale": w}, ["Y", "Mean"])
    want, m, _ = layer_norm_ref(x.astype(np.float64), w, None, -1, 1e-5)
    close(y, want.astype(np.float32), rtol=1e-4, atol=1e-5)
    close(mean, m.astype(np.float32), atol=1e-6)
    y, inv = run_node("LayerNormalization", {"X": x.astype(np.float64), "Scale": w.astype(np.float64)},
                         ["Y", "", "InvStdDev"], stash_type=11)
    assert inv.dtype == np.float64 and inv.shape == (7, 1)


@pytest.mark.parametrize("d", [100, 1000, 64 * 12 + 1])
def test_layer_norm_float_rows_of_whole_groups_and_a_tail(d):
    """Rows of float that the vector path takes in groups of four registers and then one
    register at a time, the last masked."""
    x = (randn(9, d) * 3 + 1.5).astype(np.float32)
    w, b = randn(d), randn(d)
    y, mean, inv = run_node("LayerNormalization", {"X": x, "Scale": w, "B": b}, ["Y", "Mean", "InvStdDev"])
    want, m, i = layer_norm_ref(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), -1, 1e-5)
    close(y, want.astype(np.float32), rtol=1e-4, atol=2e-5)
    close(mean, m.astype(np.float32), rtol=1e-5, atol=1e-6)
    close(inv, i.astype(np.float32), rtol=1e-5)


def test_layer_norm_errors():
    x = randn(2, 3)
    with pytest.raises(state.InvalidArgument, match=r"Scale of shape \[2\] does not broadcast to the normalized shape \[3\]"):
        run1("LayerNormalization", {"X": x, "Scale": randn(2)})
    with pytest.raises(state.InvalidArgument, match="axis -3 is out of range"):
        run1("LayerNormalization", {"X": x, "Scale": randn(3)}, axis=-3)
    with pytest.raises(state.NotImplemented, match="stash_type 16 is not supported"):
        run1("LayerNormalization", {"X": x, "Scale": randn(3)}, stash_type=16)
    with pytest.raises(state.InvalidArgument, match="Scale is double but X is float"):
        run1("LayerNormalization", {"X": x, "Scale": randn(3, dtype=np.float64)})


# --- GroupNormalization ------------------------------------------------------------------------

def group_norm_ref(x, groups, scale, bias, eps):
    n, c = x.shape[:2]
    g = x.reshape(n, groups, -1)
    mean = g.mean(-1, keepdims=True)
    var = g.var(-1, keepdims=True)
    y = ((g - mean) / np.sqrt(var + eps)).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return y * scale.reshape(shape) + bias.reshape(shape)


def test_group_norm_opset21_per_channel_matches_torch():
    x = randn(2, 6, 3, 5)
    w, b = randn(6), randn(6)
    want = torch.nn.functional.group_norm(torch.from_numpy(x), 3, torch.from_numpy(w), torch.from_numpy(b), 1e-5)
    got = run1("GroupNormalization", {"X": x, "scale": w, "bias": b}, opset=21, num_groups=3)
    close(got, want.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape,groups", [((2, 6, 4, 3), 2), ((3, 4, 7), 4), ((2, 8), 1), ((1, 5, 2, 2, 2), 5)])
def test_group_norm_opset18_per_group(shape, groups):
    x = RNG.standard_normal(shape)
    s, b = RNG.standard_normal(groups), RNG.standard_normal(groups)
    per_channel = shape[1] // groups
    want = group_norm_ref(x, groups, np.repeat(s, per_channel), np.repeat(b, per_channel), 1e-2)
    close(run1("GroupNormalization", {"X": x, "scale": s, "bias": b}, opset=18, num_groups=groups, epsilon=1e-2),
          want, rtol=1e-10)


def test_group_norm_errors():
    x = randn(2, 6, 3)
    with pytest.raises(state.InvalidArgument, match="num_groups 4 must be positive and divide the channel count 6"):
        run1("GroupNormalization", {"X": x, "scale": randn(4), "bias": randn(4)}, opset=18, num_groups=4)
    with pytest.raises(state.InvalidArgument, match=r"scale must have shape \[6\] \(one per channel\), got \[3\]"):
        run1("GroupNormalization", {"X": x, "scale": randn(3), "bias": randn(3)}, opset=21, num_groups=3)
    with pytest.raises(state.InvalidGraph, match="num_groups attribute is required"):
        run1("GroupNormalization", {"X": x, "scale": randn(3), "bias": randn(3)}, opset=18)


# --- MeanVarianceNormalization -----------------------------------------------------------------

def mvn_ref(x, axes):
    mean = x.mean(axis=axes, keepdims=True)
    std = np.sqrt((x ** 2).mean(axis=axes, keepdims=True) - mean ** 2)
    return (x - mean) / (std + 1e-9)


@pytest.mark.parametrize("axes", [None, [2, 3], [0, 1], [1], [-1], [0, 1, 2, 3]])
@pytest.mark.parametrize("opset", [9, 13])
def test_mean_variance_normalization(axes, opset):
    x = randn(2, 3, 4, 5) * 3 + 1
    attrs = {} if axes is None else {"axes": axes}
    want = mvn_ref(x.astype(np.float64), tuple(axes or [0, 2, 3]))
    close(run1("MeanVarianceNormalization", {"X": x}, opset=opset, **attrs), want.astype(np.float32), rtol=1e-4, atol=1e-5)
    xd = x.astype(np.float64)
    close(run1("MeanVarianceNormalization", {"X": xd}, opset=opset, **attrs), want, rtol=1e-9, atol=1e-10)


def test_mean_variance_normalization_errors_and_empty():
    with pytest.raises(state.InvalidArgument, match="axes entry 3 is out of range for a tensor of rank 3"):
        run1("MeanVarianceNormalization", {"X": randn(2, 3, 4)})  # default axes need rank 4
    close(run1("MeanVarianceNormalization", {"X": np.zeros((0, 2, 3, 4), np.float32)}), np.zeros((0, 2, 3, 4), np.float32))


# --- TopK --------------------------------------------------------------------------------------

def topk_ref(x, k, axis, largest):
    keyed = -x.astype(np.float64) if largest else x.astype(np.float64)
    order = np.argsort(keyed, axis=axis, kind="stable")  # stable: ties keep the lower index first
    idx = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis), idx.astype(np.int64)


def topk(x, k, opset=11, **attrs):
    if opset < 10:
        return run_node("TopK", {"X": x}, ["V", "I"], opset=opset, k=k, **attrs)
    return run_node("TopK", {"X": x, "K": np.array([k], np.int64)}, ["V", "I"], opset=opset, **attrs)


@pytest.mark.parametrize("axis", [-1, 0, 1, 2])
@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("k", [0, 1, 3, 7])
def test_topk_against_stable_sort(axis, largest, k):
    x = RNG.integers(0, 5, size=(7, 7, 9)).astype(np.float32)  # many ties
    v, i = topk(x, k, axis=axis, largest=largest)
    want_v, want_i = topk_ref(x, k, axis, largest)
    close(v, want_v)
    close(i, want_i)


@pytest.mark.parametrize("opset", [1, 10, 11])
def test_topk_opsets(opset):
    x = randn(4, 50)
    v, i = topk(x, 5, opset=opset)
    want_v, want_i = torch.topk(torch.from_numpy(x), 5, dim=-1)
    close(v, want_v.numpy())
    close(i, want_i.numpy())


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64, np.uint8, np.int8])
def test_topk_dtypes(dtype):
    x = RNG.integers(0, 100, size=(3, 40)).astype(dtype)
    for largest in (0, 1):
        v, i = topk(x, 6, axis=1, largest=largest)
        want_v, want_i = topk_ref(x, 6, 1, largest)
        close(v, want_v)
        close(i, want_i)


def test_topk_nan_ranks_above_numbers_and_sorted_flag():
    x = np.array([[1, np.nan, 3, 2]], np.float32)
    v, i = topk(x, 2)
    np.testing.assert_array_equal(v, [[np.nan, 3]])
    close(i, np.array([[1, 2]], np.int64))
    v, i = topk(x, 2, largest=0, sorted=0)
    close(v, np.array([[1, 2]], np.float32))
    close(i, np.array([[0, 3]], np.int64))


def test_topk_errors():
    x = randn(2, 3)
    with pytest.raises(state.InvalidArgument, match=r"k must be in \[0, 3\] \(the size of axis 1\), got 4"):
        topk(x, 4)
    with pytest.raises(state.InvalidArgument, match=r"got -1"):
        topk(x, -1)
    with pytest.raises(state.InvalidArgument, match=r"K must hold a single int64"):
        run_node("TopK", {"X": x, "K": np.array([1], np.int32)}, ["V", "I"], opset=11)
    with pytest.raises(state.InvalidGraph, match="k attribute is required"):
        run_node("TopK", {"X": x}, ["V", "I"], opset=1)


# --- Einsum ------------------------------------------------------------------------------------

EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 5, 8), (2, 3, 6, 8)]),  # attention scores: B read transposed
    ("bhqk,bhkd->bhqd", [(2, 3, 5, 6), (2, 3, 6, 8)]),
    ("ij->ji", [(3, 4)]),
    ("ba", [(3, 4)]),  # implicit output sorts the labels: a transpose
    ("ij->i", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("bii->b", [(2, 3, 3)]),
    ("iij,jk->ik", [(3, 3, 4), (4, 2)]),
    ("i,i", [(5,), (5,)]),
    ("i,i->i", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i->", [(6,)]),
    ("ijk,ikl,lm->jm", [(2, 3, 4), (2, 4, 5), (5, 2)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    ("ab,cd->", [(2, 3), (4, 5)]),
    ("ab,cd", [(2, 3), (4, 5)]),
    (",ij->ij", [(), (2, 3)]),
    ("...ij,...jk", [(2, 3, 4), (4, 5)]),
    ("...j,j...->...", [(2, 1, 3), (3, 2, 2)]),
    ("...i,...i->...", [(2, 1, 3), (4, 3)]),
    ("Ab,bC", [(2, 3), (3, 4)]),  # implicit: uppercase sorts before lowercase
    ("i j , j k -> i k", [(2, 3), (3, 2)]),
    ("ijk->kji", [(2, 3, 4)]),
    ("jk,ij->ik", [(4, 5), (3, 4)]),
    ("ij,kj->ik", [(0, 3), (4, 3)]),
    ("ij,jk->ik", [(2, 0), (0, 3)]),
    ("ij,jk->", [(2, 0), (0, 3)]),
]


@pytest.mark.parametrize("equation,shapes", EINSUM_CASES)
def test_einsum_matches_numpy(equation, shapes):
    ops = [RNG.standard_normal(s).astype(np.float32) for s in shapes]
    got = run1("Einsum", {f"x{i}": o for i, o in enumerate(ops)}, opset=12, equation=equation)
    close(got, np.einsum(equation, *ops).astype(np.float32), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64])
def test_einsum_other_dtypes(dtype):
    a = RNG.integers(-5, 5, size=(2, 3, 4)).astype(dtype)
    b = RNG.integers(-5, 5, size=(4, 5)).astype(dtype)
    c = RNG.integers(-5, 5, size=(3, 3)).astype(dtype)
    for eq, ops in (("bij,jk->bik", [a, b]), ("bij,jk->kb", [a, b]), ("bij->ji", [a]), ("bij,jk", [a, b]),
                    ("ii->i", [c]), ("ij,bjk->ik", [c, a])):
        got = run1("Einsum", {f"x{i}": o for i, o in enumerate(ops)}, opset=12, equation=eq)
        close(got, np.einsum(eq, *ops).astype(dtype))


def test_einsum_matches_torch_on_attention():
    q, k = randn(2, 4, 16, 32), randn(2, 4, 24, 32)
    got = run1("Einsum", {"q": q, "k": k}, opset=12, equation="bhid,bhjd->bhij")
    close(got, torch.einsum("bhid,bhjd->bhij", torch.from_numpy(q), torch.from_numpy(k)).numpy(), rtol=1e-4, atol=1e-4)


def test_einsum_errors():
    x = randn(2, 3)
    with pytest.raises(state.InvalidArgument, match="has 2 operands but the node has 1 inputs"):
        run1("Einsum", {"x": x}, opset=12, equation="ij,jk->ik")
    with pytest.raises(state.InvalidArgument, match=r"operand 0 of shape \[2,3\] does not match term 0"):
        run1("Einsum", {"x": x}, opset=12, equation="ijk->i")
    with pytest.raises(state.InvalidGraph, match="malformed near '1j'"):
        run1("Einsum", {"x": x}, opset=12, equation="i1j->i")
    with pytest.raises(state.InvalidGraph, match="output label 'z' that no input has"):
        run1("Einsum", {"x": x}, opset=12, equation="ij->z")
    with pytest.raises(state.InvalidGraph, match="repeats 'i' in its output"):
        run1("Einsum", {"x": x}, opset=12, equation="ij->ii")
    with pytest.raises(state.InvalidArgument, match="label 'j' has sizes 3 and 4 that do not broadcast"):
        run1("Einsum", {"x": x, "y": randn(4, 2)}, opset=12, equation="ij,jk->ik")
    with pytest.raises(state.InvalidArgument, match="label 'i' has sizes 2 and 3 that do not broadcast"):
        run1("Einsum", {"x": x}, opset=12, equation="ii->i")
    with pytest.raises(state.InvalidArgument, match=r"operand 0 repeats label 'i' over dims of different sizes in \[1,3\]"):
        run1("Einsum", {"x": randn(1, 3)}, opset=12, equation="ii->i")
