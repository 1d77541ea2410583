"""GridSample and MaxUnpool against PyTorch (grid_sample, max_pool2d/max_unpool2d)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kiln.capi import onnxruntime_pybind11_state as state
from onnx_builders import run_node

RNG = np.random.default_rng(13)


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample_matches_torch(mode, padding, align):
    x = RNG.standard_normal((2, 3, 5, 7))
    grid = RNG.uniform(-1.6, 1.6, (2, 4, 6, 2))
    grid[0, 0, :3] = [[-1, -1], [1, 1], [0, 0]]  # edges and centre exactly
    (y,) = run_node("GridSample", {"X": x, "grid": grid}, ["Y"], opset=16, mode=mode, padding_mode=padding,
                    align_corners=align)
    ref = F.grid_sample(torch.from_numpy(x), torch.from_numpy(grid), mode=mode, padding_mode=padding,
                        align_corners=bool(align)).numpy()
    assert y.shape == (2, 3, 4, 6) and y.dtype == np.float64
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)


def test_grid_sample_float_far_and_nonfinite_locations():
    x = RNG.standard_normal((1, 2, 4, 4)).astype(np.float32)
    grid = np.array([[[[1e30, 0], [-1e30, 5], [np.nan, 0], [np.inf, 0.5]]]], np.float32)
    for mode in ("bilinear", "nearest", "bicubic"):
        (y,) = run_node("GridSample", {"X": x, "grid": grid}, ["Y"], opset=16, mode=mode)
        np.testing.assert_array_equal(y, np.zeros((1, 2, 1, 4), np.float32))
    (y,) = run_node("GridSample", {"X": x, "grid": grid[:, :, :2]}, ["Y"], opset=16, padding_mode="border")
    ref = F.grid_sample(torch.from_numpy(x), torch.from_numpy(grid[:, :, :2]), padding_mode="border",
                        align_corners=False).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-6)


def test_grid_sample_errors():
    with pytest.raises(state.InvalidArgument, match=r"grid must be \[1, H_out, W_out, 2\]"):
        run_node("GridSample", {"X": np.zeros((1, 1, 2, 2), np.float32), "grid": np.zeros((1, 2, 2, 3), np.float32)},
                 ["Y"], opset=16)
    with pytest.raises(Exception, match="mode must be bilinear, nearest or bicubic"):
        run_node("GridSample", {"X": np.zeros((1, 1, 2, 2), np.float32), "grid": np.zeros((1, 2, 2, 2), np.float32)},
                 ["Y"], opset=16, mode="linear")


@pytest.mark.parametrize("size,kernel,stride,pad", [((6, 8), 2, 2, 0), ((7, 9), 3, 2, 1), ((5, 5), 2, 1, 0)])
def test_max_unpool_matches_torch(size, kernel, stride, pad):
    x = torch.from_numpy(RNG.standard_normal((2, 3) + size).astype(np.float32))
    pooled, idx = F.max_pool2d(x, kernel, stride, pad, return_indices=True)
    # ONNX's indices are flat over the whole tensor; PyTorch's are per (n, c) plane.
    n, c = pooled.shape[:2]
    plane = size[0] * size[1]
    flat = idx.numpy() + (np.arange(n * c).reshape(n, c, 1, 1) * plane)
    (y,) = run_node("MaxUnpool", {"X": pooled.numpy(), "I": flat, "shape": np.array((n, c) + size, np.int64)}, ["y"],
                    opset=11, kernel_shape=[kernel] * 2, strides=[stride] * 2, pads=[pad] * 4)
    ref = F.max_unpool2d(pooled, idx, kernel, stride, pad, output_size=size).numpy()
    np.testing.assert_array_equal(y, ref)


def test_max_unpool_default_shape_1d_and_errors():
    x = np.array([[[5, 6, 7]]], np.int32)
    (y,) = run_node("MaxUnpool", {"X": x, "I": np.array([[[1, 2, 5]]])}, ["y"], opset=11, kernel_shape=[2],
                    strides=[2])
    np.testing.assert_array_equal(y, [[[0, 5, 6, 0, 0, 7]]])
    with pytest.raises(state.InvalidArgument, match="index 6 at position 2 is outside the output of 6 values"):
        run_node("MaxUnpool", {"X": x, "I": np.array([[[1, 2, 6]]])}, ["y"], opset=11, kernel_shape=[2], strides=[2])
    with pytest.raises(state.InvalidArgument, match="is smaller than the unpooled size"):
        run_node("MaxUnpool", {"X": x, "I": np.array([[[1, 2, 5]]]), "s": np.array([1, 1, 4])}, ["y"], opset=11,
                 kernel_shape=[2], strides=[2])
