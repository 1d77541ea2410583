"""Elementwise ops (arithmetic, comparisons, logic, Where, unary math, activations, Clip, PRelu,
Cast) against numpy, and PyTorch where numpy has no reference."""

import math

import numpy as np
import pytest
import torch

from kiln.capi import onnxruntime_pybind11_state as state
from onnx_builders import run_node

RNG = np.random.default_rng(0)
INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOATS = ["float32", "float64", "float16"]
NUMERIC = FLOATS + INTS
# (shape of A, shape of B): equal, scalar either side, row/column, odd rank-5, empty.
SHAPES = [((3, 5), (3, 5)), ((7, 3), ()), ((), (4,)), ((2, 1, 3), (4, 1)), ((2, 1, 3, 1, 5), (3, 4, 1)),
          ((1, 3), (5, 1)), ((0, 3), (3,)), ((2, 0), (1,))]


def sample(shape, dtype, low=-50, high=50):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return RNG.random(shape) > 0.5
    if dtype.kind == "u":
        return RNG.integers(0, high, size=shape).astype(dtype)
    if dtype.kind == "i":
        return RNG.integers(low, high, size=shape).astype(dtype)
    return RNG.uniform(low / 10, high / 10, size=shape).astype(dtype)


def run1(op, inputs, opset=17, **attrs):
    return run_node(op, inputs, ["Out"], opset=opset, **attrs)[0]


def check(got, want, rtol=1e-6, atol=0.0):
    want = np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(got, want)


def c_div(a, b):
    """Integer division truncating toward zero, as C."""
    q = np.abs(a.astype(object)) // np.abs(b.astype(object))
    return (q * np.sign(a.astype(object)) * np.sign(b.astype(object))).astype(a.dtype)


# --- binary arithmetic -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_arithmetic_broadcasts_every_type(op, shapes, dtype):
    a, b = sample(shapes[0], dtype), sample(shapes[1], dtype)
    if op == "Div":
        b = np.where(b == 0, np.ones_like(b), b)
    with np.errstate(all="ignore"):
        if op == "Div" and np.dtype(dtype).kind in "iu":
            want = c_div(*np.broadcast_arrays(a, b))
        else:
            want = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](a, b)
    got = run1(op, {"A": a, "B": b})
    check(got, want.astype(dtype), rtol=1e-3 if dtype == "float16" else 1e-6)


def test_integer_arithmetic_wraps_like_numpy():
    a = np.array([2**31 - 1, -2**31, 2**30], np.int32)
    b = np.array([1, -1, 4], np.int32)
    with np.errstate(all="ignore"):
        check(run1("Add", {"A": a, "B": b}), a + b)
        check(run1("Mul", {"A": a, "B": b}), a * b)
    check(run1("Div", {"A": np.array([-2**31, 7], np.int32), "B": np.array([-1, -2], np.int32)}),
          np.array([-2**31, -3], np.int32))


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8"])
def test_integer_division_by_zero_fails_clearly(dtype):
    with pytest.raises(state.InvalidArgument, match="integer division by zero"):
        run1("Div", {"A": np.ones(3, dtype), "B": np.array([1, 0, 2], dtype)})
    with pytest.raises(state.InvalidArgument, match="integer division by zero"):
        run1("Mod", {"A": np.ones(3, dtype), "B": np.array([1, 0, 2], dtype)})


def test_float_division_by_zero_gives_ieee_results():
    got = run1("Div", {"A": np.array([1, -1, 0], np.float32), "B": np.zeros(3, np.float32)})
    np.testing.assert_array_equal(got[:2], [np.inf, -np.inf])
    assert np.isnan(got[2])


def test_mismatched_types_and_shapes_are_named():
    with pytest.raises(state.InvalidArgument, match="different element types: float and double"):
        run1("Add", {"A": np.ones(2, np.float32), "B": np.ones(2, np.float64)})
    with pytest.raises(state.InvalidArgument, match=r"shapes \[2,3\] and \[4\] cannot be broadcast"):
        run1("Mul", {"A": np.ones((2, 3), np.float32), "B": np.ones(4, np.float32)})
    with pytest.raises(state.NotImplemented, match="Sub: element type bool is not supported"):
        run1("Sub", {"A": np.ones(2, bool), "B": np.ones(2, bool)})


def test_large_broadcast_runs_in_parallel_chunks():
    a = RNG.standard_normal((64, 3, 700)).astype(np.float32)
    b = RNG.standard_normal((3, 1)).astype(np.float32)
    check(run1("Add", {"A": a, "B": b}), a + b)
    c = RNG.standard_normal((64, 1, 700)).astype(np.float32)
    check(run1("Mul", {"A": a, "B": c}), a * c)


# --- Pow, Mod, BitShift, bitwise ----------------------------------------------------------------

@pytest.mark.parametrize("exp_dtype", NUMERIC)
@pytest.mark.parametrize("base_dtype", ["float32", "float64", "int32", "int64", "float16"])
def test_pow_mixed_types(base_dtype, exp_dtype):
    base = sample((3, 4), base_dtype, -6, 6)
    exp = sample((4,), exp_dtype, 0, 5)
    got = run1("Pow", {"X": base, "Y": exp}, opset=15)
    if np.dtype(base_dtype).kind == "i" and np.dtype(exp_dtype).kind in "iu":
        want = np.power(base.astype(np.int64), exp.astype(np.int64)).astype(base_dtype)
        check(got, want)
    elif np.dtype(base_dtype).kind == "i":  # float exponent: double pow, truncated
        with np.errstate(invalid="ignore"):
            want = np.trunc(np.power(base.astype(np.float64), exp.astype(np.float64)))
        want = np.nan_to_num(want, nan=0).astype(base_dtype)
        check(got, want)
    else:
        with np.errstate(invalid="ignore"):
            want = np.power(base.astype(np.float64), exp.astype(np.float64)).astype(base_dtype)
        check(got, want, rtol=1e-3 if base_dtype == "float16" else 1e-6)


@pytest.mark.parametrize("e", [2.0, 3.0, 1.0, 0.5, 1.7, -1.0])
def test_pow_scalar_exponent_fast_paths(e):
    x = np.concatenate([RNG.uniform(-4, 4, 100), [0.0, -0.0, np.inf, -np.inf]]).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.power(x, np.float32(e))
    got = run1("Pow", {"X": x, "Y": np.array(e, np.float32)})
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_array_equal(np.signbit(got[~np.isnan(got)]), np.signbit(want[~np.isnan(want)]))


def test_pow_integer_is_exact_and_negative_exponents_truncate():
    base = np.array([3, -3, 7, 2, 1, -1, -1, 5], np.int64)
    exp = np.array([39, 39, 22, -1, -5, -3, -4, 0], np.int64)
    check(run1("Pow", {"X": base, "Y": exp}),
          np.array([3**39, (-3)**39, 7**22, 0, 1, -1, 1, 1], np.int64))


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("fmod", [0, 1])
def test_mod_integers(dtype, fmod):
    a = sample((4, 5), dtype, -40, 40)
    b = sample((5,), dtype, -7, 7)
    b = np.where(b == 0, np.ones_like(b), b)
    want = np.fmod(a, b) if fmod else np.mod(a, b)
    check(run1("Mod", {"A": a, "B": b}, fmod=fmod), want.astype(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
def test_mod_floats_need_fmod(dtype):
    a, b = sample((3, 4), dtype), sample((4,), dtype, 1, 30)
    check(run1("Mod", {"A": a, "B": b}, fmod=1), np.fmod(a, b), rtol=1e-3 if dtype == "float16" else 1e-6)
    with pytest.raises(state.InvalidArgument, match="fmod=0 needs integer inputs"):
        run1("Mod", {"A": a, "B": b})


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64"])
def test_bitshift(dtype):
    bits = np.dtype(dtype).itemsize * 8
    x = sample((3, 6), dtype, 0, 200)
    s = np.array([0, 1, 3, bits - 1, bits, bits + 5], dtype)
    big = s >= bits
    left = np.where(big, 0, np.left_shift(x, np.where(big, 0, s))).astype(dtype)
    right = np.where(big, 0, np.right_shift(x, np.where(big, 0, s))).astype(dtype)
    check(run1("BitShift", {"X": x, "Y": s}, direction="LEFT"), left)
    check(run1("BitShift", {"X": x, "Y": s}, direction="RIGHT"), right)
    with pytest.raises(state.NotImplemented, match="BitShift: element type int32 is not supported"):
        run1("BitShift", {"X": np.ones(2, np.int32), "Y": np.ones(2, np.int32)}, direction="LEFT")


@pytest.mark.parametrize("dtype", INTS)
def test_bitwise_ops(dtype):
    info = np.iinfo(dtype)
    a = RNG.integers(info.min, info.max, size=(4, 3), dtype=dtype, endpoint=True)
    b = RNG.integers(info.min, info.max, size=(3,), dtype=dtype, endpoint=True)
    check(run1("BitwiseAnd", {"A": a, "B": b}, opset=18), a & b)
    check(run1("BitwiseOr", {"A": a, "B": b}, opset=18), a | b)
    check(run1("BitwiseXor", {"A": a, "B": b}, opset=18), a ^ b)
    check(run1("BitwiseNot", {"X": a}, opset=18), ~a)


# --- variadic --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("op", ["Min", "Max", "Sum", "Mean"])
def test_variadic_broadcasting(op, dtype):
    if op == "Mean" and dtype not in FLOATS:
        return
    xs = [sample((2, 3, 4), dtype, 0, 40), sample((3, 1), dtype, 0, 40), sample((4,), dtype, 0, 40)]
    fn = {"Min": np.minimum, "Max": np.maximum, "Sum": np.add, "Mean": np.add}[op]
    tol = 1e-3 if dtype == "float16" else 1e-6
    for n in (1, 2, 3):
        want = xs[0]
        for x in xs[1:n]:
            want = fn(want, x)
        if op == "Mean":
            want = (want / np.array(n, dtype)).astype(dtype)
        got = run1(op, {f"X{i}": xs[i] for i in range(n)})
        check(got, want.astype(dtype), rtol=tol)


def test_min_max_propagate_nan_and_need_one_type():
    a = np.array([1, np.nan, 3], np.float32)
    b = np.array([np.nan, 2, 0], np.float32)
    check(run1("Max", {"A": a, "B": b}), np.maximum(a, b))
    check(run1("Min", {"A": a, "B": b}), np.minimum(a, b))
    with pytest.raises(state.InvalidArgument, match="input 1 is double but input 0 is float"):
        run1("Sum", {"A": a, "B": b.astype(np.float64)})


# --- comparisons and logic -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
def test_comparisons(op, dtype):
    a = sample((3, 4), dtype, 0, 5)
    b = sample((4,), dtype, 0, 5)
    fn = {"Equal": np.equal, "Less": np.less, "Greater": np.greater, "LessOrEqual": np.less_equal,
          "GreaterOrEqual": np.greater_equal}[op]
    check(run1(op, {"A": a, "B": b}), fn(a, b))


def test_comparisons_with_nan_and_empty():
    a = np.array([np.nan, 1, 2], np.float32)
    b = np.array([np.nan, 1, np.nan], np.float32)
    check(run1("Equal", {"A": a, "B": b}), a == b)
    check(run1("LessOrEqual", {"A": a, "B": b}), a <= b)
    check(run1("Greater", {"A": np.zeros((0, 2), np.int64), "B": np.ones(2, np.int64)}), np.zeros((0, 2), bool))


def test_equal_bool_and_string():
    a, b = sample((2, 3), bool), sample((3,), bool)
    check(run1("Equal", {"A": a, "B": b}), a == b)
    s = np.array([["ab", "", "x"], ["y", "ab", "é"]], dtype=object)
    t = np.array(["ab", "", "é"], dtype=object)
    check(run1("Equal", {"A": s, "B": t}, opset=19), s == t)


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logic_binary(op):
    a, b = sample((2, 3, 4), bool), sample((3, 1), bool)
    fn = {"And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor}[op]
    check(run1(op, {"A": a, "B": b}), fn(a, b))
    with pytest.raises(state.NotImplemented, match=f"{op}: element type int32"):
        run1(op, {"A": np.ones(2, np.int32), "B": np.ones(2, np.int32)})


def test_not():
    a = sample((5, 7), bool)
    check(run1("Not", {"X": a}), ~a)


@pytest.mark.parametrize("dtype", NUMERIC + ["bool", "object"])
def test_where_three_way_broadcast(dtype):
    c = sample((2, 1, 4), bool)
    if dtype == "object":
        x = np.array([["a", "bb", "c", "d"]] * 3, dtype=object)
        y = np.array(["zz"], dtype=object)
    else:
        x, y = sample((3, 4), dtype), sample((1,), dtype)
    check(run1("Where", {"C": c, "X": x, "Y": y}), np.where(c, x, y))
    check(run1("Where", {"C": c, "X": y, "Y": x}), np.where(c, y, x))


def test_where_large_and_errors():
    c = sample((300, 257), bool)
    x, y = sample((300, 257), "float32"), sample((300, 1), "float32")
    check(run1("Where", {"C": c, "X": x, "Y": y}), np.where(c, x, y))
    # 16 conditions at a time with a tail, X or Y broadcast along the row or not, 4-byte types.
    check(run1("Where", {"C": c, "X": y, "Y": x}), np.where(c, y, x))
    xi, yi = sample((300, 257), "int32"), sample((300, 257), "int32")
    check(run1("Where", {"C": c, "X": xi, "Y": yi}), np.where(c, xi, yi))
    check(run1("Where", {"C": c[:1], "X": xi, "Y": np.int32(7)}), np.where(c[:1], xi, np.int32(7)))
    with pytest.raises(state.InvalidArgument, match="condition must be bool, got int32"):
        run1("Where", {"C": np.ones(2, np.int32), "X": x[0, :2], "Y": x[0, :2]})
    with pytest.raises(state.InvalidArgument, match="X and Y have different element types: float and double"):
        run1("Where", {"C": c[0], "X": x[0], "Y": x[0].astype(np.float64)})


# --- unary math ------------------------------------------------------------------------------

def torch_ref(fn):
    return lambda x: fn(torch.from_numpy(x.astype(np.float64))).numpy()


# op -> (reference in float64, input range)
UNARY = {
    "Sqrt": (np.sqrt, (0, 50)), "Exp": (np.exp, (-80, 80)), "Log": (np.log, (1e-3, 100)), "Neg": (np.negative, None),
    "Abs": (np.abs, None), "Reciprocal": (np.reciprocal, (0.5, 9)), "Floor": (np.floor, None),
    "Ceil": (np.ceil, None), "Sign": (np.sign, None), "Sin": (np.sin, None), "Cos": (np.cos, None),
    "Tan": (np.tan, (-1.5, 1.5)), "Asin": (np.arcsin, (-1, 1)), "Acos": (np.arccos, (-1, 1)),
    "Atan": (np.arctan, None), "Sinh": (np.sinh, (-10, 10)), "Cosh": (np.cosh, (-10, 10)),
    "Asinh": (np.arcsinh, None), "Acosh": (np.arccosh, (1, 50)), "Atanh": (np.arctanh, (-0.99, 0.99)),
    "Erf": (np.vectorize(math.erf, otypes=[np.float64]), (-5, 5)), "Sigmoid": (torch_ref(torch.sigmoid), (-30, 30)),
    "Tanh": (np.tanh, (-12, 12)), "Relu": (torch_ref(torch.relu), None),
    "Softplus": (lambda x: np.logaddexp(0, x), (-30, 30)),
    "Softsign": (torch_ref(torch.nn.functional.softsign), None), "Mish": (torch_ref(torch.nn.functional.mish), (-20, 20)),
    "HardSwish": (torch_ref(torch.nn.functional.hardswish), (-8, 8)),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_float_math(op, dtype):
    ref, rng = UNARY[op]
    lo, hi = rng or (-10, 10)
    # Odd sizes cover the vector tails; 40001 elements split across threads.
    for shape in [(3, 5), (40001,), (0, 4)]:
        x = RNG.uniform(lo, hi, size=shape).astype(dtype)
        with np.errstate(over="ignore"):
            want = ref(x.astype(np.float64)).astype(dtype)
        got = run1(op, {"X": x}, opset=18)
        if dtype == "float16":
            check(got, want, rtol=2e-3, atol=1e-3)
        else:
            check(got, want, rtol=2e-6 if dtype == "float32" else 1e-12, atol=1e-7 if dtype == "float32" else 1e-15)


def test_unary_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 100.0, -100.0], np.float32)
    with np.errstate(all="ignore"):
        check(run1("Exp", {"X": x}), np.exp(x))
        check(run1("Log", {"X": x}), np.log(x))
        check(run1("Tanh", {"X": x}), np.tanh(x))
        check(run1("Sqrt", {"X": x}), np.sqrt(x))
    check(run1("Erf", {"X": x}), torch.erf(torch.from_numpy(x)).numpy())
    with np.errstate(over="ignore"):
        check(run1("Sigmoid", {"X": x}), (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32))


def test_round_halves_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6, -2.6], np.float32)
    check(run1("Round", {"X": x}), np.round(x))


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64"])
def test_integer_abs_neg_sign_relu(dtype):
    info = np.iinfo(dtype)
    x = np.array([info.min, -5, 0, 7, info.max], dtype)
    with np.errstate(all="ignore"):
        check(run1("Abs", {"X": x}), np.abs(x))
        check(run1("Neg", {"X": x}), np.negative(x))
    check(run1("Sign", {"X": x}), np.sign(x))
    check(run1("Relu", {"X": x}, opset=14), np.maximum(x, 0))


@pytest.mark.parametrize("dtype", ["uint8", "uint64"])
def test_unsigned_abs_and_sign(dtype):
    x = np.array([0, 3, np.iinfo(dtype).max], dtype)
    check(run1("Abs", {"X": x}), x)
    check(run1("Sign", {"X": x}), np.sign(x))


def test_unary_rejects_integers_for_float_math():
    with pytest.raises(state.NotImplemented, match="Sqrt: element type int32 is not supported"):
        run1("Sqrt", {"X": np.ones(3, np.int32)})
    with pytest.raises(state.NotImplemented, match="Neg: element type uint8 is not supported"):
        run1("Neg", {"X": np.ones(3, np.uint8)})


def test_is_nan_and_is_inf():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0], np.float32)
    for dtype in FLOATS:
        v = x.astype(dtype)
        check(run1("IsNaN", {"X": v}), np.isnan(v))
        check(run1("IsInf", {"X": v}), np.isinf(v))
    check(run1("IsInf", {"X": x}, detect_negative=0), np.isposinf(x))
    check(run1("IsInf", {"X": x}, detect_positive=0), np.isneginf(x))


# --- activations with attributes -------------------------------------------------------------

def f32(v):
    """An ONNX float attribute's value: rounded to float32."""
    return float(np.float32(v))


SELU_ALPHA, SELU_GAMMA = f32(1.6732632423543772), f32(1.0507009873554805)
ACTIVATIONS = [
    ("Elu", {"alpha": 0.7}, lambda t: torch.nn.functional.elu(t, alpha=f32(0.7))),
    ("Elu", {}, torch.nn.functional.elu),
    ("Selu", {}, lambda t: SELU_GAMMA * torch.where(t > 0, t, SELU_ALPHA * torch.expm1(t))),
    ("Selu", {"alpha": 2.0, "gamma": 3.0}, lambda t: 3.0 * torch.where(t > 0, t, 2.0 * torch.expm1(t))),
    ("Celu", {"alpha": 1.5}, lambda t: torch.nn.functional.celu(t, alpha=1.5)),
    ("LeakyRelu", {}, lambda t: torch.nn.functional.leaky_relu(t, f32(0.01))),
    ("LeakyRelu", {"alpha": 0.2}, lambda t: torch.nn.functional.leaky_relu(t, f32(0.2))),
    ("ThresholdedRelu", {"alpha": 0.5}, lambda t: torch.where(t > 0.5, t, torch.zeros_like(t))),
    ("ThresholdedRelu", {}, lambda t: torch.where(t > 1.0, t, torch.zeros_like(t))),
    ("HardSigmoid", {}, lambda t: torch.clamp(f32(0.2) * t + 0.5, 0, 1)),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, lambda t: torch.clamp(f32(0.3) * t + f32(0.4), 0, 1)),
    ("Gelu", {}, lambda t: torch.nn.functional.gelu(t)),
    ("Gelu", {"approximate": "tanh"}, lambda t: torch.nn.functional.gelu(t, approximate="tanh")),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op,attrs,ref", ACTIVATIONS, ids=[f"{a[0]}-{'-'.join(a[1]) or 'default'}" for a in ACTIVATIONS])
def test_activations(op, attrs, ref, dtype):
    x = np.concatenate([RNG.uniform(-8, 8, 40001), [0.0, -0.0, 0.5, 1.0, -1.0]]).astype(dtype)
    want = ref(torch.from_numpy(x.astype(np.float64))).numpy().astype(dtype)
    got = run1(op, {"X": x}, opset=20, **attrs)
    tol = {"float16": (2e-3, 1e-3), "float32": (2e-6, 1e-7), "float64": (1e-12, 1e-15)}[dtype]
    check(got, want, *tol)


def test_gelu_needs_opset_20_and_a_known_approximation():
    x = np.ones(3, np.float32)
    with pytest.raises(state.NotImplemented, match="Gelu"):
        run1("Gelu", {"X": x}, opset=17)
    with pytest.raises(state.InvalidGraph, match="approximate must be 'none' or 'tanh', got 'fast'"):
        run1("Gelu", {"X": x}, opset=20, approximate="fast")


def test_gelu_tail_matches_erfc_form():
    x = np.linspace(-14, -3, 1001).astype(np.float32)
    want = 0.5 * x.astype(np.float64) * np.vectorize(math.erfc)(-x.astype(np.float64) / math.sqrt(2))
    np.testing.assert_allclose(run1("Gelu", {"X": x}, opset=20), want, rtol=1e-5, atol=1e-40)


# --- Clip, PRelu -----------------------------------------------------------------------------

def test_clip_opset6_attributes():
    x = sample((4, 5), "float32")
    check(run1("Clip", {"X": x}, opset=6, min=-1.0, max=2.0), np.clip(x, -1, 2))
    check(run1("Clip", {"X": x}, opset=6, min=0.0), np.clip(x, 0, None))
    check(run1("Clip", {"X": x}, opset=6), x)


@pytest.mark.parametrize("dtype", NUMERIC)
def test_clip_inputs(dtype):
    x = sample((3, 7), dtype, 0, 50)
    lo, hi = np.array(10, dtype), np.array(30, dtype)
    check(run1("Clip", {"X": x, "min": lo, "max": hi}, opset=13), np.clip(x, lo, hi))
    check(run1("Clip", {"X": x, "min": None, "max": hi}, opset=13), np.minimum(x, hi))
    check(run1("Clip", {"X": x, "min": lo}, opset=13), np.maximum(x, lo))
    # min > max: everything becomes max, as min(max(x, lo), hi).
    check(run1("Clip", {"X": x, "min": hi, "max": lo}, opset=13), np.full_like(x, lo))


def test_clip_opset11_float_and_errors():
    x = np.array([-3, np.nan, 0.5, 9], np.float32)
    check(run1("Clip", {"X": x, "min": np.array(-1, np.float32), "max": np.array(1, np.float32)}, opset=11),
          np.clip(x, -1, 1))
    with pytest.raises(state.InvalidArgument, match="max is double but input is float"):
        run1("Clip", {"X": x, "min": np.array(0, np.float32), "max": np.array(1.0)}, opset=11)
    with pytest.raises(state.InvalidArgument, match=r"min must be a scalar, got shape \[2\]"):
        run1("Clip", {"X": x, "min": np.zeros(2, np.float32)}, opset=11)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int32", "int64"])
@pytest.mark.parametrize("slope_shape", [(), (1,), (3, 1, 1), (5,), (2, 3, 4, 5)])
def test_prelu_unidirectional_broadcast(dtype, slope_shape):
    x = sample((2, 3, 4, 5), dtype, -20, 20)
    slope = sample(slope_shape, dtype, 1, 5)
    check(run1("PRelu", {"X": x, "S": slope}), np.where(x < 0, x * slope, x).astype(dtype), rtol=1e-3)


def test_prelu_slope_must_not_grow_x():
    with pytest.raises(state.InvalidArgument, match=r"slope of shape \[2,3\] does not broadcast to X's shape \[3\]"):
        run1("PRelu", {"X": np.ones(3, np.float32), "S": np.ones((2, 3), np.float32)})


# --- Cast ------------------------------------------------------------------------------------

ONNX_TYPE = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7, "object": 8,
             "bool": 9, "float16": 10, "float64": 11, "uint32": 12, "uint64": 13}
CAST_TYPES = FLOATS + INTS + ["bool"]


@pytest.mark.parametrize("dst", CAST_TYPES)
@pytest.mark.parametrize("src", CAST_TYPES)
def test_cast_between_numbers(src, dst):
    # In-range values of every type, where numpy's conversion is defined.
    x = np.array([0, 1, 2, 3, 7, 100, 127], np.int64).reshape(7, 1) * np.ones((1, 3), np.int64)
    if np.dtype(src).kind in "if":
        x[::2] = -x[::2] if np.dtype(dst).kind not in "ub" else x[::2]
    if np.dtype(src).kind == "f":
        x = x + 0.25 * np.sign(x)
    x = x.astype(src)
    got = run1("Cast", {"X": x}, to=ONNX_TYPE[dst])
    check(got, x.astype(dst), rtol=0)


def test_cast_float_truncates_and_rounds_half_even_to_float16():
    x = np.array([1.9, -1.9, 2.5, -0.7], np.float32)
    check(run1("Cast", {"X": x}, to=ONNX_TYPE["int32"]), np.array([1, -1, 2, 0], np.int32))
    y = np.array([1 + 2**-11, 1 + 3 * 2**-11, 65520.0, 1e-8, np.nan, -np.inf], np.float32)
    with np.errstate(over="ignore"):
        check(run1("Cast", {"X": y}, to=ONNX_TYPE["float16"]), y.astype(np.float16), rtol=0)
    big = RNG.standard_normal(40003).astype(np.float32) * 1000
    check(run1("Cast", {"X": big}, to=ONNX_TYPE["float16"]), big.astype(np.float16), rtol=0)
    h = big.astype(np.float16)
    check(run1("Cast", {"X": h}, to=ONNX_TYPE["float32"]), h.astype(np.float32), rtol=0)


@pytest.mark.parametrize("dtype", FLOATS)
def test_cast_float_to_string_is_shortest_round_trip(dtype):
    x = np.concatenate([RNG.standard_normal(200) * 10.0 ** RNG.integers(-8, 20, 200),
                        [0.1, 1.0, -0.0, 0.0, 1e16, 9.999e15, 1e-4, 9.9e-5, 123456789.0, 1 / 3, 65504]])
    with np.errstate(over="ignore"):
        x = x.astype(dtype)
    x = x[np.isfinite(x)]
    got = run1("Cast", {"X": x}, to=ONNX_TYPE["object"])
    assert got.dtype == object
    assert list(got) == [str(v) for v in x]
    special = np.array([np.nan, np.inf, -np.inf], dtype)
    assert list(run1("Cast", {"X": special}, to=ONNX_TYPE["object"])) == ["NaN", "INF", "-INF"]


@pytest.mark.parametrize("dtype", INTS + ["bool"])
def test_cast_ints_and_bool_to_string(dtype):
    x = sample((2, 3), dtype, -100, 100)
    got = run1("Cast", {"X": x}, to=ONNX_TYPE["object"])
    check(got, x.astype(str).astype(object))


@pytest.mark.parametrize("dtype", CAST_TYPES)
def test_cast_string_to_numbers(dtype):
    if np.dtype(dtype).kind == "f":
        s = np.array(["0.47892547", "-1e-5", "1E8", "NaN", "INF", "+INF", "-INF", "inf", " 3.25 "], dtype=object)
        with np.errstate(over="ignore"):
            want = np.array([float(v) for v in s], np.float64).astype(dtype)
    elif dtype == "bool":
        s = np.array(["true", "False", "0", "1", "2.5", "0.0"], dtype=object)
        want = np.array([True, False, False, True, True, False])
    else:
        s = np.array(["0", "17", "+5", "100.5", "1e2", "99"], dtype=object)
        want = np.array([0, 17, 5, 100, 100, 99], dtype)
    check(run1("Cast", {"X": s}, to=ONNX_TYPE[dtype]), want, rtol=0)


def test_cast_string_errors_and_round_trip():
    with pytest.raises(state.InvalidArgument, match="cannot cast string 'Hello World!' to float: not a number"):
        run1("Cast", {"X": np.array(["1", "Hello World!"], dtype=object)}, to=1)
    with pytest.raises(state.InvalidArgument, match="cannot cast string '-1' to uint8: out of range"):
        run1("Cast", {"X": np.array(["-1"], dtype=object)}, to=2)
    with pytest.raises(state.InvalidArgument, match="cannot cast string '1e30' to int64: out of range"):
        run1("Cast", {"X": np.array(["1e30"], dtype=object)}, to=7)
    x = RNG.standard_normal(100).astype(np.float32)
    s = run1("Cast", {"X": x}, to=ONNX_TYPE["object"])
    check(run1("Cast", {"X": s}, to=ONNX_TYPE["float32"]), x, rtol=0)


def test_cast_empty_and_bad_target():
    check(run1("Cast", {"X": np.zeros((0, 3), np.float32)}, to=ONNX_TYPE["int64"]), np.zeros((0, 3), np.int64))
    with pytest.raises(state.NotImplemented, match="casting to element type 14 is not supported"):
        run1("Cast", {"X": np.ones(2, np.float32)}, to=14)


def test_cast_like():
    x = np.array([1.7, -2.2, 0.0], np.float32)
    check(run1("CastLike", {"X": x, "T": np.zeros(1, np.int16)}, opset=15), x.astype(np.int16))
    check(run1("CastLike", {"X": x, "T": np.zeros(0, object)}, opset=15), np.array(["1.7", "-2.2", "0.0"], object))
    with pytest.raises(state.NotImplemented, match="CastLike"):
        run1("CastLike", {"X": x, "T": np.zeros(1, np.int16)}, opset=13)


@pytest.mark.parametrize("opset", [7, 9, 11, 13, 14, 17, 21])
def test_common_ops_across_opsets(opset):
    a, b = sample((2, 3), "float32"), sample((3,), "float32", 1, 20)
    check(run1("Add", {"A": a, "B": b}, opset=opset), a + b)
    check(run1("Div", {"A": a, "B": b}, opset=opset), a / b)
    check(run1("Less", {"A": a, "B": b}, opset=opset), a < b)
    check(run1("Max", {"A": a, "B": b}, opset=opset), np.maximum(a, b))
    check(run1("Tanh", {"X": a}, opset=opset), np.tanh(a))
    check(run1("Cast", {"X": a}, opset=opset, to=ONNX_TYPE["int32"]), a.astype(np.int32))
    lo, hi = np.array(-1, np.float32), np.array(1, np.float32)
    clip = run1("Clip", {"X": a}, opset=opset, min=-1.0, max=1.0) if opset < 11 else \
        run1("Clip", {"X": a, "min": lo, "max": hi}, opset=opset)
    check(clip, np.clip(a, -1, 1))
