"""NonMaxSuppression and RoiAlign against torchvision and ONNX's documented examples."""

import numpy as np
import pytest
import torch
import torchvision

from kiln.capi import onnxruntime_pybind11_state as state
from onnx_builders import run_node

RNG = np.random.default_rng(21)


def nms(boxes, scores, max_out=None, iou=None, score=None, **attrs):
    feeds = {"boxes": boxes, "scores": scores,
             "max": None if max_out is None else np.array([max_out], np.int64),
             "iou": None if iou is None else np.array([iou], np.float32),
             "score": None if score is None else np.array([score], np.float32)}
    (sel,) = run_node("NonMaxSuppression", feeds, ["sel"], opset=11, **attrs)
    return sel


def random_boxes(n):
    xy = RNG.uniform(0, 50, (n, 2))
    wh = RNG.uniform(2, 20, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)  # [x1, y1, x2, y2]


@pytest.mark.parametrize("iou", [0.0, 0.3, 0.5, 0.9])
def test_nms_matches_torchvision(iou):
    xyxy = random_boxes(60)
    scores = RNG.permutation(60).astype(np.float32) / 60  # distinct scores: one order
    keep = torchvision.ops.nms(torch.from_numpy(xyxy), torch.from_numpy(scores), iou).numpy()
    yxyx = xyxy[:, [1, 0, 3, 2]]
    sel = nms(yxyx[None], scores[None, None], 1000, iou)
    assert sel.dtype == np.int64 and sel.shape == (len(keep), 3)
    np.testing.assert_array_equal(sel[:, 2], keep)
    assert (sel[:, :2] == 0).all()
    # flipped corners and the centre format select the same boxes
    flipped = xyxy[:, [3, 2, 1, 0]]
    np.testing.assert_array_equal(nms(flipped[None], scores[None, None], 1000, iou)[:, 2], keep)
    center = np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    np.testing.assert_array_equal(nms(center[None], scores[None, None], 1000, iou, center_point_box=1)[:, 2], keep)


def test_nms_batches_classes_limits_and_thresholds():
    boxes = np.stack([random_boxes(20)[:, [1, 0, 3, 2]] for _ in range(2)])
    scores = RNG.uniform(0, 1, (2, 3, 20)).astype(np.float32)
    sel = nms(boxes, scores, 4, 0.4, 0.3)
    expect = []
    for b in range(2):
        for c in range(3):
            ok = scores[b, c] > 0.3
            idx = np.flatnonzero(ok)
            keep = torchvision.ops.nms(torch.from_numpy(boxes[b][idx][:, [1, 0, 3, 2]]),
                                       torch.from_numpy(scores[b, c][idx]), 0.4).numpy()[:4]
            expect += [[b, c, int(idx[k])] for k in keep]
    np.testing.assert_array_equal(sel, np.array(expect).reshape(-1, 3))


def test_nms_defaults_and_edge_cases():
    boxes = np.array([[[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0]]], np.float32)
    scores = np.array([[[0.5, 0.5, 0.9]]], np.float32)
    assert nms(boxes, scores).shape == (0, 3)  # max_output_boxes_per_class defaults to 0
    # identical boxes: the first of equal scores stays; an empty box never suppresses
    np.testing.assert_array_equal(nms(boxes, scores, 10, 0.5), [[0, 0, 2], [0, 0, 0]])
    # no score threshold keeps negative scores; iou_threshold 1 suppresses nothing
    np.testing.assert_array_equal(nms(boxes, -scores, 10, 1.0)[:, 2], [0, 1, 2])
    assert nms(np.zeros((1, 0, 4), np.float32), np.zeros((1, 1, 0), np.float32), 5).shape == (0, 3)


def test_nms_onnx_example():
    boxes = np.array([[[0.5, 0.5, 1.0, 1.0], [0.5, 0.6, 1.0, 1.0], [0.5, 0.4, 1.0, 1.0],
                       [0.5, 10.5, 1.0, 1.0], [0.5, 10.6, 1.0, 1.0], [0.5, 100.5, 1.0, 1.0]]], np.float32)
    scores = np.array([[[0.9, 0.75, 0.6, 0.95, 0.5, 0.3]]], np.float32)
    np.testing.assert_array_equal(nms(boxes, scores, 3, 0.5, 0.0, center_point_box=1),
                                  [[0, 0, 3], [0, 0, 0], [0, 0, 5]])


def test_nms_errors():
    with pytest.raises(state.InvalidArgument, match=r"scores must be \[1, classes, 3\]"):
        nms(np.zeros((1, 3, 4), np.float32), np.zeros((1, 1, 4), np.float32), 1)
    with pytest.raises(state.InvalidArgument, match="iou_threshold must be in"):
        nms(np.zeros((1, 3, 4), np.float32), np.zeros((1, 1, 3), np.float32), 1, 1.5)
    with pytest.raises(state.InvalidArgument, match=r"boxes must be \[batch, boxes, 4\]"):
        nms(np.zeros((1, 3, 5), np.float32), np.zeros((1, 1, 3), np.float32), 1)


def roi_align(x, rois, idx, **attrs):
    (y,) = run_node("RoiAlign", {"X": x, "rois": rois, "batch_indices": idx}, ["Y"], opset=16, **attrs)
    return y


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling", [0, 1, 2, 3])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_roi_align_matches_torchvision(aligned, sampling, scale):
    x = RNG.standard_normal((2, 3, 12, 15)).astype(np.float32)
    rois = np.concatenate([RNG.uniform(-2, 10, (7, 2)), RNG.uniform(10, 30, (7, 2))], axis=1).astype(np.float32)
    idx = RNG.integers(0, 2, 7).astype(np.int64)
    y = roi_align(x, rois, idx, output_height=4, output_width=5, sampling_ratio=sampling, spatial_scale=scale,
                  coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel")
    ref = torchvision.ops.roi_align(torch.from_numpy(x), [torch.from_numpy(rois[idx == b]) for b in range(2)],
                                    (4, 5), spatial_scale=scale, sampling_ratio=sampling, aligned=aligned).numpy()
    order = np.concatenate([np.flatnonzero(idx == b) for b in range(2)])  # torchvision groups rois by image
    assert y.shape == (7, 3, 4, 5)
    np.testing.assert_allclose(y[order], ref, rtol=1e-5, atol=1e-5)


def test_roi_align_double_max_mode_and_empty():
    x = RNG.standard_normal((1, 2, 6, 6))
    rois = np.array([[0.0, 0.0, 5.0, 5.0]])
    y = roi_align(x, rois, np.zeros(1, np.int64), output_height=2, output_width=2, sampling_ratio=1, mode="max")
    # one sample per bin at the bin's centre: the largest of its four weighted corners
    expect = np.zeros((1, 2, 2, 2))
    for ph in range(2):
        for pw in range(2):
            yy, xx = -0.5 + (ph + 0.5) * 2.5, -0.5 + (pw + 0.5) * 2.5
            y0, x0 = int(yy), int(xx)
            ly, lx = yy - y0, xx - x0
            w = [(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx]
            v = x[0, :, [y0, y0, y0 + 1, y0 + 1], [x0, x0 + 1, x0, x0 + 1]]  # [4, C]
            expect[0, :, ph, pw] = (np.array(w)[:, None] * v).max(axis=0)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, expect, rtol=1e-12)
    assert roi_align(x, np.zeros((0, 4)), np.zeros(0, np.int64)).shape == (0, 2, 1, 1)


def test_roi_align_errors():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(state.InvalidArgument, match=r"batch_indices\[0\] = 1 is outside \[0, 1\)"):
        roi_align(x, np.zeros((1, 4), np.float32), np.array([1]))
    with pytest.raises(state.InvalidArgument, match=r"rois must be float \[num_rois, 4\]"):
        roi_align(x, np.zeros((1, 3), np.float32), np.array([0]))
    with pytest.raises(Exception, match="mode must be avg or max"):
        roi_align(x, np.zeros((1, 4), np.float32), np.array([0]), mode="min")
