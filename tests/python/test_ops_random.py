"""Random operators: shapes, types, statistics within tolerance (means, variances, frequencies,
Kolmogorov-Smirnov distances), reproducibility with kiln.set_seed and with the seed attribute."""

import math

import numpy as np
import pytest
from onnx import TensorProto, helper

import kiln
from kiln.capi import onnxruntime_pybind11_state as state
from onnx_builders import run_node

N = 200_000  # standard errors ~ 0.0022 * sigma: the 6-sigma bounds below never flake


def session(op, inputs=(), opset=17, **attrs):
    node = helper.make_node(op, [n for n, _ in inputs], ["y"], **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, t, None) for n, t in inputs],
                          [helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)])
    return kiln.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString())


def ks_distance(samples, cdf):
    s = np.sort(samples.astype(np.float64).ravel())
    n = len(s)
    c = cdf(s)
    return max(np.max(np.arange(1, n + 1) / n - c), np.max(c - np.arange(n) / n))


@pytest.mark.parametrize("dtype,np_dtype", [(TensorProto.FLOAT, np.float32), (TensorProto.DOUBLE, np.float64),
                                            (TensorProto.FLOAT16, np.float16)])
def test_random_normal_statistics(dtype, np_dtype):
    (y,) = session("RandomNormal", shape=[400, 500], mean=2.0, scale=3.0, dtype=dtype).run(None, {})
    assert y.dtype == np_dtype and y.shape == (400, 500)
    y = y.astype(np.float64)
    assert abs(y.mean() - 2.0) < 6 * 3.0 / math.sqrt(N)
    assert abs(y.std() - 3.0) < 0.03
    erf = np.vectorize(math.erf)
    assert ks_distance(y[:50].ravel(), lambda v: 0.5 * (1 + erf((v - 2.0) / (3.0 * math.sqrt(2))))) < 0.01


@pytest.mark.parametrize("dtype,np_dtype", [(TensorProto.FLOAT, np.float32), (TensorProto.DOUBLE, np.float64),
                                            (TensorProto.FLOAT16, np.float16)])
def test_random_uniform_statistics(dtype, np_dtype):
    (y,) = session("RandomUniform", shape=[N], low=-1.0, high=3.0, dtype=dtype).run(None, {})
    assert y.dtype == np_dtype and y.shape == (N,)
    assert y.min() >= -1.0 and y.max() < 3.0
    y = y.astype(np.float64)
    assert abs(y.mean() - 1.0) < 6 * 4 / math.sqrt(12 * N)
    assert abs(y.var() - 16 / 12) < 0.03
    assert ks_distance(y, lambda v: (v + 1) / 4) < 0.01


def test_like_ops_take_shape_and_type():
    x = np.zeros((3, 0, 4), np.float64)
    (y,) = run_node("RandomNormalLike", {"x": x}, ["y"])
    assert y.shape == (3, 0, 4) and y.dtype == np.float64
    x = np.zeros((50, 400), np.int32)
    (y,) = run_node("RandomUniformLike", {"x": x}, ["y"], dtype=TensorProto.FLOAT, low=5.0, high=6.0)
    assert y.shape == (50, 400) and y.dtype == np.float32 and 5 <= y.min() and y.max() < 6
    (y,) = run_node("RandomNormalLike", {"x": x}, ["y"], dtype=TensorProto.DOUBLE, mean=-1.0, scale=0.5)
    assert abs(y.mean() + 1) < 0.02 and abs(y.std() - 0.5) < 0.02
    with pytest.raises(state.NotImplemented, match="element type int32 is not supported"):
        run_node("RandomUniformLike", {"x": x}, ["y"])


@pytest.mark.parametrize("dtype", [None, TensorProto.DOUBLE, TensorProto.INT32, TensorProto.BOOL])
def test_bernoulli_frequencies(dtype):
    p = np.repeat(np.array([0.0, 0.1, 0.5, 0.9, 1.0], np.float32), 40_000)
    attrs = {} if dtype is None else {"dtype": dtype}
    (y,) = run_node("Bernoulli", {"p": p}, ["y"], opset=15, **attrs)
    expect_dtype = {None: np.float32, TensorProto.DOUBLE: np.float64, TensorProto.INT32: np.int32,
                    TensorProto.BOOL: np.bool_}[dtype]
    assert y.dtype == expect_dtype and y.shape == p.shape
    freq = y.astype(np.float64).reshape(5, -1).mean(axis=1)
    assert set(np.unique(y.astype(np.float64))) <= {0.0, 1.0}
    assert freq[0] == 0 and freq[4] == 1
    np.testing.assert_allclose(freq[1:4], [0.1, 0.5, 0.9], atol=6 * 0.5 / math.sqrt(40_000))


def test_bernoulli_rejects_bad_probabilities():
    with pytest.raises(state.InvalidArgument, match=r"probabilities must be in \[0, 1\], got 1.5"):
        run_node("Bernoulli", {"p": np.array([0.5, 1.5], np.float32)}, ["y"], opset=15)


@pytest.mark.parametrize("dtype,np_dtype", [(None, np.int32), (TensorProto.INT64, np.int64)])
def test_multinomial_frequencies(dtype, np_dtype):
    probs = np.array([[0.1, 0.2, 0.3, 0.4], [0.97, 0.01, 0.01, 0.01]])
    attrs = {"sample_size": 50_000} if dtype is None else {"sample_size": 50_000, "dtype": dtype}
    (y,) = run_node("Multinomial", {"x": np.log(probs).astype(np.float32)}, ["y"], opset=7, **attrs)
    assert y.dtype == np_dtype and y.shape == (2, 50_000)
    assert y.min() >= 0 and y.max() <= 3
    for r in range(2):
        freq = np.bincount(y[r], minlength=4) / 50_000
        np.testing.assert_allclose(freq, probs[r], atol=6 * 0.5 / math.sqrt(50_000))
    (one,) = run_node("Multinomial", {"x": np.array([[-1e9, 0.0, -1e9]])}, ["y"], opset=7, sample_size=20)
    assert (one == 1).all()


def test_set_seed_reproduces_runs():
    sess = session("RandomNormal", shape=[1000])
    kiln.set_seed(123)
    (a,) = sess.run(None, {})
    (b,) = sess.run(None, {})
    assert not np.array_equal(a, b)  # each run draws anew
    kiln.set_seed(123)
    (a2,) = sess.run(None, {})
    (b2,) = sess.run(None, {})
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    kiln.set_seed(124)
    assert not np.array_equal(sess.run(None, {})[0], a)


def test_seed_attribute_fixes_the_stream_per_session():
    def first_two(seed):
        s = session("RandomUniform", shape=[64], seed=seed)
        return s.run(None, {})[0], s.run(None, {})[0]

    kiln.set_seed(1)
    a1, a2 = first_two(7.0)
    kiln.set_seed(2)  # the process seed does not touch seeded nodes
    b1, b2 = first_two(7.0)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)
    assert not np.array_equal(first_two(8.0)[0], a1)
    kiln.set_seed(5)
    (p,) = session("Bernoulli", [("p", TensorProto.FLOAT)], opset=15, seed=3.0).run(None, {"p": np.full(64, 0.5, np.float32)})
    (q,) = session("Bernoulli", [("p", TensorProto.FLOAT)], opset=15, seed=3.0).run(None, {"p": np.full(64, 0.5, np.float32)})
    np.testing.assert_array_equal(p, q)


def test_errors():
    with pytest.raises(Exception, match="needs the shape attribute"):
        session("RandomNormal")
    with pytest.raises(Exception, match="low 2 must not exceed high 1"):
        session("RandomUniform", shape=[2], low=2.0, high=1.0)
    with pytest.raises(Exception, match="dtype must be int32 or int64"):
        run_node("Multinomial", {"x": np.zeros((1, 2), np.float32)}, ["y"], opset=7, dtype=TensorProto.FLOAT)
    with pytest.raises(state.InvalidArgument, match=r"\[batch, classes\]"):
        run_node("Multinomial", {"x": np.zeros(3, np.float32)}, ["y"], opset=7)
    with pytest.raises(Exception, match="seed must be an integer"):
        kiln.set_seed(1.5)
