"""Resize (opsets 10-19) and Upsample (7, 9) against ONNX's own reference (the installed
onnx.backend.test.case.node.resize), a reference of the newer features written here from the
spec (antialias, axes, keep_aspect_ratio_policy, half_pixel_symmetric), and PyTorch."""

import numpy as np
import pytest
import torch
from onnx.backend.test.case.node.resize import cubic_coeffs, interpolate_nd, linear_coeffs, nearest_coeffs

from kiln.capi import onnxruntime_pybind11_state as state
from onnx_builders import run_node

RNG = np.random.default_rng(0)
F32 = np.float32


def resize(x, scales=None, sizes=None, roi=None, opset=19, **attrs):
    s = None if scales is None else np.array(scales, F32)
    z = None if sizes is None else np.array(sizes, np.int64)
    if opset < 11:
        inputs = {"X": x, "scales": s}
    elif opset < 13:  # roi and scales are required inputs, empty when unused
        empty = np.array([], F32)
        inputs = {"X": x, "roi": empty if roi is None else roi, "scales": empty if s is None else s, "sizes": z}
    else:
        inputs = {"X": x, "roi": roi, "scales": s, "sizes": z}
    return run_node("Resize", inputs, ["Y"], opset=opset, **attrs)[0]


def close(got, want, rtol=1e-5, atol=1e-5):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# --- A reference of the spec, axis by axis -----------------------------------------------------

def _keys(x, a):
    x = abs(x)
    if x <= 1:
        return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
    if x < 2:
        return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
    return 0.0


def _coeffs(mode, ratio, scale, a, antialias, nearest_mode):
    """Weights of the neighbours, left to right, for a coordinate `ratio` past the left one."""
    if mode == "nearest":
        if ratio == 1:
            return np.array([0.0, 1.0])
        up = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5, "floor": False,
              "ceil": True}[nearest_mode]
        return np.array([0.0, 1.0]) if up else np.array([1.0, 0.0])
    s = min(scale, 1.0) if antialias else 1.0  # the filter widens by 1/scale when downscaling
    support = 1 if mode == "linear" else 2
    first = int(np.floor(-support / s)) + 1
    offsets = np.arange(first, 2 - first)
    if mode == "linear":
        w = np.clip(1 - np.abs((offsets - ratio) * s), 0, 1)
    else:
        w = np.array([_keys((o - ratio) * s, a) for o in offsets])
    return w / w.sum()


def _neighbours(x, n, size):
    """The n integer positions nearest x (ties go to the smaller), in the edge-padded axis."""
    pad = -(-n // 2)
    cand = sorted(range(-pad, size + pad), key=lambda i: (abs(x - i), i))[:n]
    return np.sort(np.array(cand))


def _coordinate(ctm, j, in_size, out_size, scale, roi):
    out_w = scale * in_size
    if ctm == "align_corners":
        return 0.0 if out_w == 1 else j * (in_size - 1) / (out_w - 1)
    if ctm == "asymmetric":
        return j / scale
    if ctm == "tf_crop_and_resize":
        start, end = roi
        x = (end - start) * (in_size - 1) / 2 if out_w == 1 else j * (end - start) * (in_size - 1) / (out_w - 1)
        return x + start * (in_size - 1)
    if ctm == "pytorch_half_pixel":
        return -0.5 if out_w == 1 else (j + 0.5) / scale - 0.5
    if ctm == "half_pixel":
        return (j + 0.5) / scale - 0.5
    assert ctm == "half_pixel_symmetric"
    return in_size / 2 * (1 - out_size / out_w) + (j + 0.5) / scale - 0.5


def ref_resize(x, mode="nearest", scales=None, sizes=None, roi=None, axes=None, keep_aspect_ratio_policy="stretch",
               coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_floor", cubic_coeff_a=-0.75,
               exclude_outside=0, extrapolation_value=0.0, antialias=0):
    r = x.ndim
    axes = list(range(r)) if axes is None else [a % r for a in axes]
    if scales is not None:
        scale = [1.0] * r
        for i, a in enumerate(axes):
            scale[a] = float(np.float32(scales[i]))
        out = [int(np.floor(scale[d] * x.shape[d])) for d in range(r)]
    else:
        out = list(x.shape)
        for i, a in enumerate(axes):
            out[a] = int(sizes[i])
        scale = [out[d] / x.shape[d] for d in range(r)]
        if keep_aspect_ratio_policy != "stretch":
            pick = min if keep_aspect_ratio_policy == "not_larger" else max
            s = pick(scale[a] for a in axes)
            scale = [s if d in axes else 1.0 for d in range(r)]
            out = [int(s * x.shape[d] + 0.5) if d in axes else x.shape[d] for d in range(r)]
    y = x.astype(np.float64)
    for d in range(r):
        n_in = x.shape[d]
        w = np.zeros((out[d], n_in))
        outside = np.zeros(out[d], bool)
        axis_roi = None
        if roi is not None:
            k = axes.index(d) if d in axes else None
            axis_roi = (0.0, 1.0) if k is None else (float(roi[k]), float(roi[len(axes) + k]))
        for j in range(out[d]):
            xo = _coordinate(coordinate_transformation_mode, j, n_in, out[d], scale[d], axis_roi)
            if coordinate_transformation_mode == "tf_crop_and_resize" and not 0 <= xo <= n_in - 1:
                outside[j] = True
                continue
            ratio = 1.0 if float(xo).is_integer() else xo - np.floor(xo)
            c = _coeffs(mode, ratio, scale[d], cubic_coeff_a, antialias, nearest_mode)
            idx = _neighbours(xo, len(c), n_in)
            if exclude_outside:
                c = np.where((idx < 0) | (idx >= n_in), 0, c)
                c = c / c.sum()
            for i, cw in zip(idx, c):
                w[j, min(max(i, 0), n_in - 1)] += cw
        y = np.moveaxis(np.tensordot(w, np.moveaxis(y, d, 0), axes=1), 0, d)
        y[(slice(None),) * d + (outside,)] = extrapolation_value
    return y.astype(x.dtype) if x.dtype.kind == "f" else np.trunc(y).astype(x.dtype)


# --- Against ONNX's installed reference (opset 11-13 features) ---------------------------------

X4 = RNG.standard_normal((1, 2, 4, 5)).astype(F32)
UP, DOWN = [1, 1, 2.3, 1.6], [1, 1, 0.6, 0.45]
CTMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]


@pytest.mark.parametrize("ctm", CTMS)
@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
@pytest.mark.parametrize("scales", [UP, DOWN])
def test_nearest_matches_onnx_reference(ctm, nearest_mode, scales):
    got = resize(X4, scales=scales, opset=13, mode="nearest", coordinate_transformation_mode=ctm,
                 nearest_mode=nearest_mode)
    want = interpolate_nd(X4, lambda r: nearest_coeffs(r, nearest_mode), scale_factors=np.array(scales, F32),
                          coordinate_transformation_mode=ctm).astype(F32)
    close(got, want, atol=0)


@pytest.mark.parametrize("ctm", CTMS)
@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", [UP, DOWN])
def test_linear_cubic_match_onnx_reference(ctm, mode, scales):
    got = resize(X4, scales=scales, opset=13, mode=mode, coordinate_transformation_mode=ctm)
    coeffs = linear_coeffs if mode == "linear" else cubic_coeffs
    want = interpolate_nd(X4, coeffs, scale_factors=np.array(scales, F32), coordinate_transformation_mode=ctm)
    close(got, want.astype(F32))


@pytest.mark.parametrize("sizes", [[1, 2, 9, 3], [1, 1, 1, 1], [2, 2, 3, 7]])
def test_sizes_cubic_a_and_exclude_outside_match_onnx_reference(sizes):
    got = resize(X4, sizes=sizes, opset=11, mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1)
    want = interpolate_nd(X4, lambda r: cubic_coeffs(r, A=-0.5), output_size=np.array(sizes), exclude_outside=True)
    close(got, want.astype(F32))


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_tf_crop_and_resize_matches_onnx_reference(mode):
    roi = np.array([0, 0, 0.2, 0.3, 1, 1, 0.9, 1.3], F32)
    coeffs = {"nearest": nearest_coeffs, "linear": linear_coeffs, "cubic": cubic_coeffs}[mode]
    got = resize(X4, sizes=[1, 2, 4, 6], roi=roi, opset=13, mode=mode,
                 coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=10.0)
    want = interpolate_nd(X4, coeffs, output_size=np.array([1, 2, 4, 6]), roi=roi,
                          coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=10.0)
    close(got, want.astype(F32))
    assert (got[..., -1] == 10).all()  # x beyond the crop window takes the extrapolation value


# --- Opset 18/19 features, against the reference above -----------------------------------------

@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", [[1, 1, 0.6, 0.35], [1, 1, 0.5, 2.5]])
def test_antialias(mode, scales):
    x = RNG.standard_normal((1, 2, 9, 12)).astype(F32)
    got = resize(x, scales=scales, opset=18, mode=mode, antialias=1)
    close(got, ref_resize(x, mode, scales=scales, antialias=1))
    got = resize(x, sizes=[1, 2, 4, 5], opset=18, mode=mode, antialias=1, exclude_outside=1)
    close(got, ref_resize(x, mode, sizes=[1, 2, 4, 5], antialias=1, exclude_outside=1))


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_half_pixel_symmetric(mode):
    x = RNG.standard_normal((1, 1, 5, 7)).astype(F32)
    for scales in ([1, 1, 1.7, 0.55], [1, 1, 2.0, 3.0]):
        got = resize(x, scales=scales, opset=19, mode=mode, coordinate_transformation_mode="half_pixel_symmetric")
        close(got, ref_resize(x, mode, scales=scales, coordinate_transformation_mode="half_pixel_symmetric"))


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_axes_with_scales_sizes_and_roi(mode):
    x = RNG.standard_normal((2, 3, 4, 5)).astype(F32)
    close(resize(x, scales=[1.5, 0.5], opset=18, mode=mode, axes=[3, 1]),
          ref_resize(x, mode, scales=[1.5, 0.5], axes=[3, 1]))
    close(resize(x, sizes=[7, 3], opset=18, mode=mode, axes=[-2, -1]), ref_resize(x, mode, sizes=[7, 3], axes=[2, 3]))
    roi = np.array([0.1, 0.2, 0.8, 0.9], F32)
    close(resize(x, sizes=[3, 6], roi=roi, opset=18, mode=mode, axes=[2, 3],
                 coordinate_transformation_mode="tf_crop_and_resize"),
          ref_resize(x, mode, sizes=[3, 6], roi=roi, axes=[2, 3], coordinate_transformation_mode="tf_crop_and_resize"))


@pytest.mark.parametrize("policy", ["not_larger", "not_smaller"])
def test_keep_aspect_ratio_policy(policy):
    x = RNG.standard_normal((1, 1, 4, 6)).astype(F32)
    for sizes, axes in (([1, 1, 7, 7], None), ([5, 5], [2, 3]), ([2, 9], [2, 3])):
        got = resize(x, sizes=sizes, opset=18, mode="linear", axes=axes, keep_aspect_ratio_policy=policy)
        want = ref_resize(x, "linear", sizes=sizes, axes=axes, keep_aspect_ratio_policy=policy)
        close(got, want)
    assert resize(x, sizes=[5, 5], opset=18, axes=[2, 3], keep_aspect_ratio_policy=policy).shape == \
        ((1, 1, 3, 5) if policy == "not_larger" else (1, 1, 5, 8))


def test_other_ranks():
    x5 = RNG.standard_normal((1, 2, 3, 4, 5)).astype(F32)
    close(resize(x5, scales=[1, 1, 2, 0.5, 1.5], mode="linear"), ref_resize(x5, "linear", scales=[1, 1, 2, 0.5, 1.5]))
    close(resize(x5, sizes=[2, 1, 4, 4, 2], mode="cubic"), ref_resize(x5, "cubic", sizes=[2, 1, 4, 4, 2]))
    x1 = RNG.standard_normal(6).astype(F32)
    close(resize(x1, scales=[1.5], mode="linear"), ref_resize(x1, "linear", scales=[1.5]))
    close(resize(x1, sizes=[4], mode="nearest"), ref_resize(x1, "nearest", sizes=[4]))


# --- Against PyTorch ---------------------------------------------------------------------------

def test_matches_torch_interpolate():
    x = RNG.standard_normal((2, 3, 17, 23)).astype(F32)
    t = torch.from_numpy(x)
    F = torch.nn.functional
    close(resize(x, sizes=[2, 3, 40, 31], mode="linear"),
          F.interpolate(t, size=(40, 31), mode="bilinear", align_corners=False).numpy(), atol=1e-5)
    close(resize(x, sizes=[2, 3, 40, 31], mode="linear", coordinate_transformation_mode="align_corners"),
          F.interpolate(t, size=(40, 31), mode="bilinear", align_corners=True).numpy(), atol=1e-5)
    close(resize(x, sizes=[2, 3, 33, 50], mode="cubic"),
          F.interpolate(t, size=(33, 50), mode="bicubic", align_corners=False).numpy(), atol=1e-4)
    close(resize(x, sizes=[2, 3, 40, 31], mode="nearest", coordinate_transformation_mode="asymmetric",
                 nearest_mode="floor"), F.interpolate(t, size=(40, 31), mode="nearest").numpy(), atol=0)
    # PyTorch's antialias filters renormalize over the taps inside the image: exclude_outside.
    close(resize(x, sizes=[2, 3, 8, 11], mode="linear", antialias=1, exclude_outside=1),
          F.interpolate(t, size=(8, 11), mode="bilinear", antialias=True, align_corners=False).numpy(), atol=1e-5)
    close(resize(x, sizes=[2, 3, 8, 11], mode="cubic", antialias=1, exclude_outside=1, cubic_coeff_a=-0.5),
          F.interpolate(t, size=(8, 11), mode="bicubic", antialias=True, align_corners=False).numpy(), atol=1e-5)


def test_large_bilinear_upscale_and_nearest_rows():
    x = RNG.standard_normal((1, 3, 64, 64)).astype(F32)
    t = torch.from_numpy(x)
    close(resize(x, scales=[1, 1, 2, 2], mode="linear"),
          torch.nn.functional.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False).numpy(), atol=1e-5)
    close(resize(x, scales=[1, 1, 3, 2], mode="nearest"), x.repeat(3, axis=2).repeat(2, axis=3), atol=0)


# --- Element types, identity, empty tensors ----------------------------------------------------

def test_element_types():
    x = RNG.integers(0, 255, size=(1, 2, 4, 5)).astype(np.uint8)
    close(resize(x, scales=UP, mode="nearest"), ref_resize(x, "nearest", scales=UP), atol=0)
    close(resize(x, scales=DOWN, mode="linear"), ref_resize(x, "linear", scales=DOWN), atol=1)  # truncation ties
    xi = RNG.integers(-100, 100, size=(1, 2, 4, 5)).astype(np.int32)
    close(resize(xi, scales=UP, mode="nearest"), ref_resize(xi, "nearest", scales=UP), atol=0)
    x8 = RNG.integers(-100, 100, size=(1, 2, 4, 5)).astype(np.int8)
    close(resize(x8, sizes=[1, 2, 7, 3], mode="cubic"), ref_resize(x8, "cubic", sizes=[1, 2, 7, 3]), atol=1)
    xd = X4.astype(np.float64)
    close(resize(xd, scales=UP, mode="cubic"), ref_resize(xd, "cubic", scales=UP), rtol=1e-12, atol=1e-12)


def test_identity_and_empty():
    close(resize(X4, scales=[1, 1, 1, 1], mode="cubic"), X4, atol=0)
    close(resize(X4, sizes=[1, 2, 4, 5], mode="linear", coordinate_transformation_mode="align_corners"), X4, atol=0)
    e = np.zeros((0, 3, 4, 4), F32)
    close(resize(e, scales=[1, 1, 2, 2], mode="linear"), np.zeros((0, 3, 8, 8), F32))
    close(resize(X4, sizes=[1, 2, 0, 5], mode="linear"), np.zeros((1, 2, 0, 5), F32))


# --- Resize-10 and Upsample: asymmetric coordinates, floor up / ceil down ----------------------

def test_resize_opset10():
    data = np.array([[[[1, 2, 3, 4], [5, 6, 7, 8]]]], F32)
    close(resize(data, scales=[1, 1, 0.6, 0.6], opset=10, mode="nearest"), np.array([[[[1, 3]]]], F32))
    up = np.array([[[[1, 2], [3, 4]]]], F32)
    close(resize(up, scales=[1, 1, 2, 3], opset=10, mode="nearest"),
          np.array([[[[1, 1, 1, 2, 2, 2]] * 2 + [[3, 3, 3, 4, 4, 4]] * 2]], F32))
    x = RNG.standard_normal((1, 2, 4, 5)).astype(F32)
    close(resize(x, scales=[1, 1, 1.5, 2.5], opset=10, mode="linear"),
          ref_resize(x, "linear", scales=[1, 1, 1.5, 2.5], coordinate_transformation_mode="asymmetric"))


def test_tf_half_pixel_for_nn_in_opsets_11_and_12():
    data = np.arange(1, 17, dtype=F32).reshape(1, 1, 4, 4)
    want = np.array([[[[6, 8], [10, 12], [14, 16]]]], F32)  # x = (j + 0.5) / scale, then rounded
    close(resize(data, sizes=[1, 1, 3, 2], opset=11, coordinate_transformation_mode="tf_half_pixel_for_nn"), want, atol=0)
    with pytest.raises(state.InvalidGraph, match="coordinate_transformation_mode 'tf_half_pixel_for_nn' is not one of"):
        resize(data, sizes=[1, 1, 3, 2], opset=13, coordinate_transformation_mode="tf_half_pixel_for_nn")


@pytest.mark.parametrize("opset", [7, 9])
def test_upsample(opset):
    data = np.array([[[[1, 2], [3, 4]]]], F32)
    scales = [1.0, 1.0, 2.0, 3.0]
    want = np.array([[[[1, 1, 1, 2, 2, 2]] * 2 + [[3, 3, 3, 4, 4, 4]] * 2]], F32)

    def upsample(x, s, **attrs):
        if opset < 9:
            return run_node("Upsample", {"X": x}, ["Y"], opset=opset, scales=s, **attrs)[0]
        return run_node("Upsample", {"X": x, "scales": np.array(s, F32)}, ["Y"], opset=opset, **attrs)[0]

    close(upsample(data, scales, mode="nearest"), want, atol=0)
    x = RNG.standard_normal((1, 2, 3, 4)).astype(F32)
    close(upsample(x, [1.0, 1.0, 2.0, 1.5], mode="linear"),
          ref_resize(x, "linear", scales=[1, 1, 2, 1.5], coordinate_transformation_mode="asymmetric"))
    with pytest.raises(state.InvalidArgument, match="scales must be at least 1, got 0.5"):
        upsample(x, [1.0, 1.0, 0.5, 1.0])


# --- Errors ------------------------------------------------------------------------------------

def test_errors():
    with pytest.raises(state.InvalidArgument, match="only one of scales and sizes may be given"):
        resize(X4, scales=[1, 1, 2, 2], sizes=[1, 2, 8, 10])
    with pytest.raises(state.InvalidArgument, match="one of scales and sizes must be given"):
        resize(X4, opset=13)
    with pytest.raises(state.InvalidArgument, match="scales has 3 entries but the input has rank 4"):
        resize(X4, scales=[1, 2, 2])
    with pytest.raises(state.InvalidArgument, match="sizes has 3 entries but axes lists 2 axes"):
        resize(X4, sizes=[1, 2, 2], axes=[2, 3], opset=18)
    with pytest.raises(state.InvalidArgument, match="scales must be positive, got 0"):
        resize(X4, scales=[1, 1, 0, 2])
    with pytest.raises(state.InvalidArgument, match="sizes must not be negative, got -2"):
        resize(X4, sizes=[1, 2, -2, 2])
    with pytest.raises(state.InvalidArgument, match="axes entry 4 is out of range"):
        resize(X4, scales=[2.0], axes=[4], opset=18)
    with pytest.raises(state.InvalidArgument, match="tf_crop_and_resize needs the roi input"):
        resize(X4, sizes=[1, 2, 3, 3], coordinate_transformation_mode="tf_crop_and_resize")
    with pytest.raises(state.InvalidArgument, match=r"roi must have 8 entries \(starts then ends\), got 4"):
        resize(X4, sizes=[1, 2, 3, 3], roi=np.zeros(4, F32), coordinate_transformation_mode="tf_crop_and_resize")
    with pytest.raises(state.InvalidArgument, match="cannot resize the empty dim 2"):
        resize(np.zeros((1, 1, 0, 3), F32), sizes=[1, 1, 2, 3])
    with pytest.raises(state.InvalidGraph, match="mode 'area' is not supported"):
        resize(X4, scales=[1, 1, 2, 2], mode="area")
    with pytest.raises(state.InvalidGraph, match="coordinate_transformation_mode 'corner' is not one of"):
        resize(X4, scales=[1, 1, 2, 2], coordinate_transformation_mode="corner")
    with pytest.raises(state.InvalidGraph, match="nearest_mode 'round' is not one of"):
        resize(X4, scales=[1, 1, 2, 2], nearest_mode="round")
    with pytest.raises(state.InvalidGraph, match="keep_aspect_ratio_policy 'fit' is not one of"):
        resize(X4, sizes=[1, 2, 3, 3], keep_aspect_ratio_policy="fit")
    with pytest.raises(state.InvalidArgument, match=r"scales must be tensor\(float\), got double"):
        run_node("Resize", {"X": X4, "roi": None, "scales": np.ones(4)}, ["Y"], opset=13)
