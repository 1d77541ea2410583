"""The ai.onnx.preview.training optimizers (Adagrad, Adam, Momentum) against ONNX's numpy
update rules, and against torch.optim for plain SGD with momentum."""

import numpy as np
import pytest
import torch

from kiln.capi import onnxruntime_pybind11_state as state
from onnx_builders import run_node

DOMAIN = "ai.onnx.preview.training"
RNG = np.random.default_rng(11)


def run_opt(op, r, t, lists, n_out_lists, dtype=np.float32, **attrs):
    """lists: [X list, G list, state lists...]; returns the output lists."""
    n = len(lists[0])
    inputs = {"R": np.array(r, dtype), "T": np.array(t, np.int64)}
    for li, lst in enumerate(lists):
        for i, a in enumerate(lst):
            inputs[f"in{li}_{i}"] = a
    outs = [f"out{li}_{i}" for li in range(n_out_lists) for i in range(n)]
    res = run_node(op, inputs, outs, domain=DOMAIN, **attrs)
    return [res[li * n:(li + 1) * n] for li in range(n_out_lists)]


def tensors(shapes, dtype):
    return [RNG.standard_normal(s).astype(dtype) for s in shapes]


SHAPES = [[(3,)], [(2, 3), (4,), ()]]


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("t", [0, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adagrad(shapes, t, dtype):
    x, g = tensors(shapes, dtype), tensors(shapes, dtype)
    h = [np.abs(a) for a in tensors(shapes, dtype)]
    r, decay, eps, norm = 0.1, 0.2, 1e-5, 0.01
    xs, hs = run_opt("Adagrad", r, t, [x, g, h], 2, dtype, decay_factor=decay, epsilon=eps, norm_coefficient=norm)
    for i in range(len(shapes)):
        gr = norm * x[i].astype(np.float64) + g[i]
        hn = h[i] + gr * gr
        xn = x[i] - r / (1 + t * decay) * gr / (np.sqrt(hn) + eps)
        assert xs[i].dtype == dtype and xs[i].shape == x[i].shape
        np.testing.assert_allclose(hs[i], hn, rtol=1e-6)
        np.testing.assert_allclose(xs[i], xn, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("t", [0, 3])
def test_adam(shapes, t):
    x, g, v = tensors(shapes, np.float32), tensors(shapes, np.float32), tensors(shapes, np.float32)
    h = [np.abs(a) for a in tensors(shapes, np.float32)]
    r, alpha, beta, eps, norm, post = 0.05, 0.9, 0.8, 1e-3, 0.01, 0.02
    xs, vs, hs = run_opt("Adam", r, t, [x, g, v, h], 3, alpha=alpha, beta=beta, epsilon=eps, norm_coefficient=norm,
                         norm_coefficient_post=post)
    for i in range(len(shapes)):
        gr = norm * x[i].astype(np.float64) + g[i]
        vn = alpha * v[i] + (1 - alpha) * gr
        hn = beta * h[i] + (1 - beta) * gr * gr
        ra = r * np.sqrt(1 - beta ** t) / (1 - alpha ** t) if t > 0 else r
        xn = (1 - post) * (x[i] - ra * vn / (np.sqrt(hn) + eps))
        np.testing.assert_allclose(vs[i], vn, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(hs[i], hn, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(xs[i], xn, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["standard", "nesterov"])
@pytest.mark.parametrize("t", [0, 1])
def test_momentum(mode, t):
    shapes = [(5,), (2, 2)]
    x, g, v = tensors(shapes, np.float64), tensors(shapes, np.float64), tensors(shapes, np.float64)
    r, alpha, beta, norm = 0.1, 0.875, 0.5, 2.0 ** -10  # exact in the float attributes
    xs, vs = run_opt("Momentum", r, t, [x, g, v], 2, np.float64, alpha=alpha, beta=beta, norm_coefficient=norm,
                     mode=mode)
    b = beta if t > 0 else 1.0
    for i in range(2):
        gr = norm * x[i] + g[i]
        vn = alpha * v[i] + b * gr
        xn = x[i] - r * (gr + alpha * vn if mode == "nesterov" else vn)
        np.testing.assert_allclose(vs[i], vn, rtol=1e-12)
        np.testing.assert_allclose(xs[i], xn, rtol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_matches_torch_sgd(nesterov):
    """torch's SGD with dampening 0 is ONNX's Momentum with beta = 1 (beta is 1 at T = 0 anyway)."""
    w = torch.tensor(RNG.standard_normal(6), requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.75, nesterov=nesterov)
    x = w.detach().numpy().copy()
    v = np.zeros(6)
    for step in range(3):
        grad = RNG.standard_normal(6)
        w.grad = torch.from_numpy(grad.copy())
        opt.step()
        (x,), (v,) = run_opt("Momentum", 0.1, step, [[x], [grad], [v]], 2, np.float64, alpha=0.75, beta=1.0,
                             norm_coefficient=0.0, mode="nesterov" if nesterov else "standard")
        np.testing.assert_allclose(x, w.detach().numpy(), rtol=1e-12)


def test_errors():
    x = np.ones(3, np.float32)
    with pytest.raises(state.InvalidArgument, match=r"input 3 is float \[2\] but X 0 is float \[3\]"):
        run_opt("Adagrad", 0.1, 0, [[x], [np.ones(2, np.float32)], [x]], 2)
    with pytest.raises(state.InvalidArgument, match="T must be an int64 scalar"):
        run_node("Adagrad", {"R": np.float32(0.1), "T": np.int32(0), "X": x, "G": x, "H": x}, ["a", "b"], domain=DOMAIN)
    with pytest.raises(Exception, match="expected R, T and 3 lists of equal length"):
        run_node("Momentum", {"R": np.float32(0.1), "T": np.int64(0), "X": x, "G": x}, ["a", "b"], domain=DOMAIN,
                 alpha=0.9, beta=0.1, norm_coefficient=0.0, mode="standard")
    with pytest.raises(Exception, match="mode must be 'standard' or 'nesterov'"):
        run_opt("Momentum", 0.1, 0, [[x], [x], [x]], 2, alpha=0.9, beta=0.1, norm_coefficient=0.0, mode="heavy")
    with pytest.raises(Exception, match="attribute 'alpha' is required"):
        run_opt("Momentum", 0.1, 0, [[x], [x], [x]], 2, beta=0.1, norm_coefficient=0.0, mode="standard")
