"""Real models through Kiln against PyTorch eager: every zoo model (tests/models/build_zoo.py) at
opset 13 and 17, static and dynamic shapes, must match PyTorch's fp32 outputs (rtol 1e-4, atol
1e-5), or, where fp32 rounding in a deep net alone exceeds that, be as close to the float64
answer as PyTorch's fp32 output is.

The fast tier (mlp, lstm, squeezenet1_1, mobilenet_v3_large at opset 17) always runs; the rest is
marked slow and runs when KILN_SLOW=1 or CI=true. Models are built on first use and cached
(KILN_ZOO_DIR, default ~/.cache/kiln-zoo).
"""

import os
import sys
import warnings

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models"))

import build_zoo  # noqa: E402
import kiln  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
FAST = {"mlp", "lstm", "squeezenet1_1", "mobilenet_v3_large"}
RUN_SLOW = os.environ.get("KILN_SLOW") == "1" or os.environ.get("CI") == "true"


def _cases():
    for name in build_zoo.all_variants():
        spec, opset, _ = build_zoo.parse_variant(name)
        marks = []
        if not (spec.name in FAST and opset == 17):
            marks = [pytest.mark.slow, pytest.mark.skipif(not RUN_SLOW, reason="slow tier: set KILN_SLOW=1")]
        yield pytest.param(name, marks=marks, id=name)


def max_abs_diff(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b))) if b.size else 0.0


@pytest.mark.parametrize("name", _cases())
def test_model_matches_pytorch(name):
    spec, _, dynamic = build_zoo.parse_variant(name)
    files = build_zoo.ensure(name, log=lambda *a: None)
    feeds = build_zoo.load_npz(files["inputs"])
    ref = build_zoo.load_npz(files["ref"])
    ref64 = build_zoo.load_npz(files["ref64"])

    sess = kiln.InferenceSession(files["onnx"])
    inputs = {i.name: i for i in sess.get_inputs()}
    assert list(inputs) == list(feeds)
    for n, _, template in spec.inputs:  # dynamic axes are symbolic, the rest fixed
        declared = inputs[n].shape
        expected = [d if isinstance(d, int) else (d if dynamic and d in spec.dynamic else spec.static_dims[d])
                    for d in template]
        assert declared == expected, f"{n}: declared {declared}, expected {expected}"
    assert [o.name for o in sess.get_outputs()] == list(ref)

    outs = sess.run(None, feeds)
    for (out_name, want), got in zip(ref.items(), outs):
        assert got.dtype == want.dtype and got.shape == want.shape, \
            f"{out_name}: got {got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}"
        diff = max_abs_diff(got, want)
        if np.allclose(got, want, rtol=RTOL, atol=ATOL):
            continue
        # Through fifty layers fp32 rounding alone can exceed the tolerance: PyTorch's own fp32
        # output is then as far from the exact (float64) answer. Kiln passes if it is as close to
        # that answer as PyTorch is, with room for a different summation order.
        exact = ref64[out_name]
        kiln_err, torch_err = max_abs_diff(got, exact), max_abs_diff(want, exact)
        if kiln_err <= 2 * torch_err:
            warnings.warn(f"{name} output '{out_name}': max abs diff {diff:.3g} to PyTorch fp32 exceeds "
                          f"rtol {RTOL:g}/atol {ATOL:g}, but it is fp32 rounding: Kiln is {kiln_err:.3g} from the "
                          f"float64 answer, PyTorch fp32 {torch_err:.3g}")
            continue
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{name} output '{out_name}': max abs diff {diff:.3g}; from the float64 "
                                           f"answer Kiln is {kiln_err:.3g} off, PyTorch fp32 {torch_err:.3g}")
