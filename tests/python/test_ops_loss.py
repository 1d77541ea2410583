"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss against numpy and PyTorch."""

import zlib

import numpy as np
import pytest
import torch

from kiln.capi import onnxruntime_pybind11_state as state
from onnx_builders import run_node


def nll_ref(logp, target, weight=None, reduction="mean", ignore_index=None):
    """ONNX's formula: loss[n, d] = -w[t] * logp[n, t, d], ignored targets weigh 0."""
    n, c = logp.shape[:2]
    lp = logp.reshape(n, c, -1).astype(np.float64)
    t = target.reshape(n, -1)
    w = np.ones(c) if weight is None else weight.astype(np.float64)
    keep = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
    tc = np.where(keep, t, 0)
    picked = np.take_along_axis(lp, tc[:, None, :], axis=1)[:, 0, :]
    wt = np.where(keep, w[tc], 0.0)
    loss = -wt * picked
    if reduction == "none":
        return loss.reshape(target.shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / wt.sum()


def log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


SHAPES = [(3, 5), (2, 4, 3), (2, 3, 4, 5), (1, 7, 1, 2, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [None, 1, -3])
def test_nll_matches_reference(shape, reduction, weighted, ignore):
    rng = np.random.default_rng(zlib.crc32(repr((shape, reduction, weighted, ignore)).encode()))
    x = rng.standard_normal(shape).astype(np.float32)
    target = rng.integers(0, shape[1], (shape[0],) + shape[2:]).astype(np.int64)
    if ignore is not None:
        target.flat[::3] = ignore
    attrs = {"reduction": reduction}
    if ignore is not None:
        attrs["ignore_index"] = ignore
    inputs = {"input": x, "target": target}
    w = rng.uniform(0.2, 2.0, shape[1]).astype(np.float32) if weighted else None
    if weighted:
        inputs["weight"] = w
    (loss,) = run_node("NegativeLogLikelihoodLoss", inputs, ["loss"], opset=13, **attrs)
    ref = nll_ref(x, target, w, reduction, ignore)
    assert loss.dtype == np.float32 and loss.shape == np.shape(ref)
    np.testing.assert_allclose(loss, ref, rtol=1e-5, atol=1e-6)


def test_nll_matches_torch_and_int32_double():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6, 5))
    target = rng.integers(0, 6, (4, 5)).astype(np.int32)
    w = rng.uniform(0.5, 1.5, 6)
    for reduction in ("none", "sum", "mean"):
        (loss,) = run_node("NegativeLogLikelihoodLoss", {"input": x, "target": target, "weight": w}, ["loss"],
                           opset=12, reduction=reduction, ignore_index=2)
        ref = torch.nn.functional.nll_loss(torch.from_numpy(x), torch.from_numpy(target.astype(np.int64)),
                                           weight=torch.from_numpy(w), reduction=reduction, ignore_index=2)
        assert loss.dtype == np.float64
        np.testing.assert_allclose(loss, ref.numpy(), rtol=1e-12, atol=1e-12)


def test_nll_float16_and_empty_batch():
    x = np.log(np.full((2, 3), 1 / 3, np.float16))
    (loss,) = run_node("NegativeLogLikelihoodLoss", {"input": x, "target": np.array([0, 2])}, ["loss"],
                       reduction="sum")
    assert loss.dtype == np.float16
    np.testing.assert_allclose(loss, 2 * np.log(3), rtol=1e-3)
    empty = np.zeros((0, 3), np.float32)
    (none,) = run_node("NegativeLogLikelihoodLoss", {"input": empty, "target": np.zeros(0, np.int64)}, ["loss"],
                       reduction="none")
    assert none.shape == (0,)
    (mean,) = run_node("NegativeLogLikelihoodLoss", {"input": empty, "target": np.zeros(0, np.int64)}, ["loss"])
    assert np.isnan(mean)  # 0/0 as in ONNX's reference


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_sce_with_log_prob(shape, reduction):
    rng = np.random.default_rng(len(shape) * 7 + len(reduction))
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    target = rng.integers(0, shape[1], (shape[0],) + shape[2:]).astype(np.int64)
    target.flat[0] = 0
    w = rng.uniform(0.2, 2.0, shape[1]).astype(np.float32)
    z, logp = run_node("SoftmaxCrossEntropyLoss", {"x": x, "y": target, "w": w}, ["z", "log_prob"], opset=13,
                       reduction=reduction, ignore_index=0)
    ref_logp = log_softmax(x.astype(np.float64))
    np.testing.assert_allclose(logp, ref_logp, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(z, nll_ref(ref_logp, target, w, reduction, 0), rtol=1e-5, atol=1e-5)
    (z_only,) = run_node("SoftmaxCrossEntropyLoss", {"x": x, "y": target}, ["z"], reduction=reduction)
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(x), torch.from_numpy(target), reduction=reduction)
    np.testing.assert_allclose(z_only, ref.numpy(), rtol=1e-5, atol=1e-5)


def test_sce_large_scores_stay_finite():
    x = np.array([[1000.0, 0.0, -1000.0]], np.float32)
    z, logp = run_node("SoftmaxCrossEntropyLoss", {"x": x, "y": np.array([1])}, ["z", "lp"], reduction="none")
    np.testing.assert_allclose(logp, [[0.0, -1000.0, -2000.0]])
    np.testing.assert_allclose(z, [1000.0])


def test_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(state.InvalidArgument, match=r"target value 3 is outside \[0, 3\)"):
        run_node("NegativeLogLikelihoodLoss", {"input": x, "target": np.array([0, 3])}, ["loss"])
    with pytest.raises(state.InvalidArgument, match=r"target must have shape \[2\].*got \[3\]"):
        run_node("SoftmaxCrossEntropyLoss", {"x": x, "y": np.array([0, 1, 2])}, ["z"])
    with pytest.raises(state.InvalidArgument, match=r"weight must have shape \[3\]"):
        run_node("NegativeLogLikelihoodLoss", {"input": x, "target": np.array([0, 1]),
                                               "weight": np.ones(2, np.float32)}, ["loss"])
    with pytest.raises(Exception, match="reduction must be"):
        run_node("NegativeLogLikelihoodLoss", {"input": x, "target": np.array([0, 1])}, ["loss"], reduction="avg")
    with pytest.raises(state.InvalidArgument, match="rank >= 2"):
        run_node("SoftmaxCrossEntropyLoss", {"x": np.zeros(3, np.float32), "y": np.array([0])}, ["z"])
