"""Det against numpy.linalg.det and Shrink against PyTorch's hard and soft shrink."""

import numpy as np
import pytest
import torch

from kiln.capi import onnxruntime_pybind11_state as state
from onnx_builders import run_node

RNG = np.random.default_rng(17)


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 3), (5, 5), (4, 3, 3), (2, 3, 6, 6), (0, 2, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_det(shape, dtype):
    x = RNG.standard_normal(shape).astype(dtype)
    (y,) = run_node("Det", {"x": x}, ["y"], opset=11)
    assert y.dtype == dtype and y.shape == shape[:-2]
    np.testing.assert_allclose(y, np.linalg.det(x.astype(np.float64)), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6)


def test_det_singular_permuted_and_float16():
    sing = np.array([[1, 2, 3], [2, 4, 6], [0, 1, 1]], np.float64)
    perm = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 2]], np.float64)
    (y,) = run_node("Det", {"x": np.stack([sing, perm])}, ["y"], opset=11)
    np.testing.assert_allclose(y, [0.0, -2.0], atol=1e-12)
    x = RNG.standard_normal((3, 2, 2)).astype(np.float16)
    (y,) = run_node("Det", {"x": x}, ["y"], opset=11)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.astype(np.float64), np.linalg.det(x.astype(np.float64)), rtol=2e-3, atol=2e-3)
    with pytest.raises(state.InvalidArgument, match=r"square matrices\), got \[2,3\]"):
        run_node("Det", {"x": np.zeros((2, 3), np.float32)}, ["y"], opset=11)


@pytest.mark.parametrize("lambd,bias", [(0.5, 0.0), (1.5, 1.5), (0.25, 0.1)])
def test_shrink_float(lambd, bias):
    x = RNG.uniform(-3, 3, (4, 7)).astype(np.float32)
    (y,) = run_node("Shrink", {"x": x}, ["y"], opset=9, lambd=lambd, bias=bias)
    ref = np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, 0)).astype(np.float32)
    np.testing.assert_allclose(y, ref, rtol=1e-6)
    t = torch.from_numpy(x)
    if bias == 0:
        np.testing.assert_allclose(y, torch.nn.functional.hardshrink(t, lambd).numpy())
    if bias == lambd:
        np.testing.assert_allclose(y, torch.nn.functional.softshrink(t, lambd).numpy(), rtol=1e-6)


def test_shrink_integers_and_defaults():
    x = np.arange(-5, 6, dtype=np.int8)
    (y,) = run_node("Shrink", {"x": x}, ["y"], opset=9, lambd=1.5, bias=1.5)
    np.testing.assert_array_equal(y, np.trunc(np.where(x < -1.5, x + 1.5, np.where(x > 1.5, x - 1.5, 0))).astype(np.int8))
    (y,) = run_node("Shrink", {"x": np.array([120, -128, 3], np.int8)}, ["y"], opset=9, lambd=0.0, bias=-20.0)
    np.testing.assert_array_equal(y, [127, -128, 23])  # clamped to int8's range
    (y,) = run_node("Shrink", {"x": np.array([0.4, 0.6, -0.6], np.float64)}, ["y"], opset=9)
    np.testing.assert_allclose(y, [0.0, 0.6, -0.6])
