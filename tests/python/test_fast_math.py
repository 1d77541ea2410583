"""Opt-in fast-math ("kiln.fast_math" = "1"): convolutions and matmuls in bfloat16 with fp32
accumulation. Results stay within bfloat16's precision of PyTorch's fp32 answer; without the
entry nothing changes, and neither does it on a machine without AVX-512 (no bfloat16 kernels)."""

import io

import numpy as np
import onnx
import torch
from torch import nn

import kiln
from machine import HAS_AVX512


def export(module, x):
    f = io.BytesIO()
    torch.onnx.export(module.eval(), (torch.from_numpy(x),), f, opset_version=17, input_names=["x"],
                      output_names=["y"])
    return f.getvalue()


def session(data, fast, path=None):
    so = kiln.SessionOptions()
    if fast:
        so.add_session_config_entry("kiln.fast_math", "1")
    if path:
        so.optimized_model_filepath = str(path)
    return kiln.InferenceSession(data, so)


def relative_error(got, ref):
    return float(np.linalg.norm(got - ref) / np.linalg.norm(ref))


def check(module, x, tmp_path):
    data = export(module, x)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    exact = session(data, False).run(None, {"x": x})[0]
    fast = session(data, True, tmp_path / "fast.onnx").run(None, {"x": x})[0]
    np.testing.assert_allclose(exact, ref, rtol=1e-4, atol=1e-5)
    m = onnx.load(str(tmp_path / "fast.onnx"))
    marked = any(a.name == "kiln_bf16" for n in m.graph.node for a in n.attribute)
    if not HAS_AVX512:  # fp32 as without the entry
        assert not marked
        np.testing.assert_array_equal(fast, exact)
        return
    err = relative_error(fast, ref)
    assert 0 < err < 2e-2, err  # bfloat16 keeps 8 bits of mantissa: ~0.4% per product
    assert marked


def test_conv_net_in_bfloat16(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(32, 16, 1))
    check(net, np.random.default_rng(0).standard_normal((1, 3, 20, 20)).astype(np.float32), tmp_path)


def test_transformer_ffn_in_bfloat16(tmp_path):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 64))
    check(net, np.random.default_rng(1).standard_normal((2, 16, 64)).astype(np.float32), tmp_path)
