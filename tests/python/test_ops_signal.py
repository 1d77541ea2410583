"""DFT, STFT, the cosine windows and MelWeightMatrix against numpy (np.fft) and ONNX's
reference formulas."""

import numpy as np
import pytest
import torch
from onnx import TensorProto

from kiln.capi import onnxruntime_pybind11_state as state
from onnx_builders import run_node

RNG = np.random.default_rng(3)


def as_pairs(c):
    return np.stack([c.real, c.imag], axis=-1)


@pytest.mark.parametrize("n", [1, 2, 7, 8, 10, 16, 97, 128, 360])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dft_real_every_length(n, dtype):
    x = RNG.standard_normal((3, n, 1)).astype(dtype)
    (y,) = run_node("DFT", {"x": x}, ["y"], axis=1)
    ref = as_pairs(np.fft.fft(x[..., 0].astype(np.float64), axis=1))
    assert y.dtype == dtype and y.shape == (3, n, 2)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * np.sqrt(n))


@pytest.mark.parametrize("axis", [1, 2, 3, -2])
def test_dft_complex_axes_inverse(axis):
    x = RNG.standard_normal((2, 5, 6, 9, 2))
    c = x[..., 0] + 1j * x[..., 1]
    ax = axis if axis >= 0 else axis + 4
    (y,) = run_node("DFT", {"x": x}, ["y"], axis=axis)
    np.testing.assert_allclose(y, as_pairs(np.fft.fft(c, axis=ax)), rtol=1e-10, atol=1e-10)
    (yi,) = run_node("DFT", {"x": x}, ["y"], axis=axis, inverse=1)
    np.testing.assert_allclose(yi, as_pairs(np.fft.ifft(c, axis=ax)), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("length", [4, 12, 17])
def test_dft_length_and_onesided(length):
    x = RNG.standard_normal((2, 12, 3, 1)).astype(np.float32)
    (y,) = run_node("DFT", {"x": x, "n": np.array(length, np.int64)}, ["y"], axis=1, onesided=1)
    ref = np.fft.rfft(x[..., 0].astype(np.float64), n=length, axis=1)
    assert y.shape == (2, length // 2 + 1, 3, 2)
    np.testing.assert_allclose(y, as_pairs(ref), rtol=1e-4, atol=1e-4)


def test_dft_float16_and_empty_batch():
    x = RNG.standard_normal((2, 8, 1)).astype(np.float16)
    (y,) = run_node("DFT", {"x": x}, ["y"])
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.astype(np.float64), as_pairs(np.fft.fft(x[..., 0].astype(np.float64), axis=1)),
                               rtol=2e-2, atol=2e-2)
    (y,) = run_node("DFT", {"x": np.zeros((0, 8, 1), np.float32)}, ["y"])
    assert y.shape == (0, 8, 2)


def test_stft_matches_torch():
    sig = RNG.standard_normal((2, 200)).astype(np.float64)
    win = np.hanning(32)
    (y,) = run_node("STFT", {"s": sig[..., None], "step": np.array(10, np.int64), "w": win}, ["y"], opset=17)
    ref = torch.stft(torch.from_numpy(sig), n_fft=32, hop_length=10, window=torch.from_numpy(win), center=False,
                     onesided=True, return_complex=True).numpy()  # [batch, bins, frames]
    assert y.shape == (2, (200 - 32) // 10 + 1, 17, 2)
    np.testing.assert_allclose(y, as_pairs(ref.transpose(0, 2, 1)), rtol=1e-10, atol=1e-10)


def test_stft_frame_length_complex_twosided():
    sig = RNG.standard_normal((1, 50, 2)).astype(np.float32)
    c = sig[0, :, 0] + 1j * sig[0, :, 1]
    (y,) = run_node("STFT", {"s": sig, "step": np.array(7, np.int64), "w": None, "len": np.array(9, np.int64)}, ["y"],
                    onesided=0)
    frames = [np.fft.fft(c[i * 7:i * 7 + 9]) for i in range((50 - 9) // 7 + 1)]
    np.testing.assert_allclose(y[0], as_pairs(np.array(frames)), rtol=1e-4, atol=1e-4)


def onnx_window(kind, n, periodic):
    a0, a1, a2 = {"HannWindow": (0.5, 0.5, 0), "HammingWindow": (25 / 46, 21 / 46, 0),
                  "BlackmanWindow": (0.42, 0.5, 0.08)}[kind]
    d = n if periodic else n - 1
    k = np.arange(n)
    return a0 - a1 * np.cos(2 * np.pi * k / d) + a2 * np.cos(4 * np.pi * k / d)


@pytest.mark.parametrize("kind", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("periodic", [0, 1])
@pytest.mark.parametrize("n", [0, 2, 10, 33])
def test_windows(kind, periodic, n):
    (y,) = run_node(kind, {"size": np.array(n, np.int64)}, ["y"], periodic=periodic)
    assert y.dtype == np.float32 and y.shape == (n,)
    np.testing.assert_allclose(y, onnx_window(kind, n, periodic), rtol=1e-6, atol=1e-7)
    (y,) = run_node(kind, {"size": np.array(n, np.int32)}, ["y"], periodic=periodic,
                    output_datatype=TensorProto.DOUBLE)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, onnx_window(kind, n, periodic), rtol=1e-12, atol=1e-15)


def test_windows_match_numpy():
    (y,) = run_node("HammingWindow", {"size": np.array(20, np.int64)}, ["y"], periodic=0)
    np.testing.assert_allclose(y, np.hamming(20), atol=0.007)  # numpy: 0.54, 0.46; ONNX: 25/46, 21/46
    (y,) = run_node("HannWindow", {"size": np.array(20, np.int64)}, ["y"], periodic=0)
    np.testing.assert_allclose(y, np.hanning(20), atol=1e-6)
    (y,) = run_node("BlackmanWindow", {"size": np.array(20, np.int64)}, ["y"], periodic=0)
    np.testing.assert_allclose(y, np.blackman(20), atol=1e-6)


def mel_ref(num_mel_bins, dft_length, sample_rate, lower, upper):
    bins = np.arange(0, num_mel_bins + 2)
    low_mel = 2595 * np.log10(1 + lower / 700)
    high_mel = 2595 * np.log10(1 + upper / 700)
    step = (high_mel - low_mel) / bins.shape[0]
    hz = 700 * (np.power(10, (bins * step + low_mel) / 2595) - 1)
    edge = (((dft_length + 1) * hz) // sample_rate).astype(int)
    out = np.zeros((dft_length // 2 + 1, num_mel_bins))
    for i in range(num_mel_bins):
        lo, c, hi = edge[i], edge[i + 1], edge[i + 2]
        if c == lo:
            out[c, i] = 1
        else:
            for j in range(lo, c + 1):
                out[j, i] = (j - lo) / (c - lo)
        for j in range(c, hi):
            out[j, i] = (hi - j) / (hi - c)
    return out


@pytest.mark.parametrize("args", [(8, 16, 8192, 0.0, 4096.0), (20, 512, 16000, 20.0, 7600.0), (3, 64, 1000, 100.0, 400.0)])
def test_mel_weight_matrix(args):
    m, d, sr, lo, hi = args
    feeds = {"m": np.array(m, np.int64), "d": np.array(d, np.int64), "sr": np.array(sr, np.int32),
             "lo": np.array(lo, np.float32), "hi": np.array(hi, np.float32)}
    (y,) = run_node("MelWeightMatrix", feeds, ["y"])
    assert y.dtype == np.float32 and y.shape == (d // 2 + 1, m)
    np.testing.assert_allclose(y, mel_ref(m, d, sr, np.float64(lo), np.float64(hi)), rtol=1e-6, atol=1e-7)


def test_errors():
    with pytest.raises(state.InvalidArgument, match=r"\[batch, \.\.\., 1\] \(real\) or"):
        run_node("DFT", {"x": np.zeros((2, 3, 3), np.float32)}, ["y"])
    with pytest.raises(state.InvalidArgument, match="axis 3 is out of range"):
        run_node("DFT", {"x": np.zeros((2, 3, 1), np.float32)}, ["y"], axis=3)
    with pytest.raises(state.InvalidArgument, match="onesided=1 needs a real input"):
        run_node("DFT", {"x": np.zeros((2, 3, 2), np.float32)}, ["y"], onesided=1)
    with pytest.raises(state.InvalidArgument, match="frame_length 8 differs from the window's length 6"):
        run_node("STFT", {"s": np.zeros((1, 20, 1), np.float32), "step": np.array(2), "w": np.ones(6, np.float32),
                          "len": np.array(8)}, ["y"])
    with pytest.raises(state.InvalidArgument, match="frame length 30 must be in"):
        run_node("STFT", {"s": np.zeros((1, 20, 1), np.float32), "step": np.array(2), "w": None,
                          "len": np.array(30)}, ["y"])
    with pytest.raises(state.InvalidArgument, match="size must not be negative"):
        run_node("HannWindow", {"size": np.array(-1)}, ["y"])
    with pytest.raises(state.InvalidArgument, match="upper_edge_hertz <="):
        run_node("MelWeightMatrix", {"m": np.array(4), "d": np.array(16), "sr": np.array(100),
                                     "lo": np.float32(0), "hi": np.float32(80)}, ["y"])
