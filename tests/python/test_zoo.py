"""Real models through Kiln against PyTorch eager: every zoo model (tests/models/build_zoo.py) at
opset 13 and 17, static and dynamic shapes, must match PyTorch's fp32 outputs.

The fast tier (mlp, lstm, squeezenet1_1, mobilenet_v3_large at opset 17) always runs; the rest is
marked slow and runs when KILN_SLOW=1 or CI=true. Models are built on first use and cached
(KILN_ZOO_DIR, default ~/.cache/kiln-zoo).
"""

import os
import sys

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


@pytest.mark.parametrize("name", _cases())
def test_model_matches_pytorch(name):
    spec, _, dynamic = build_zoo.parse_variant(name)
    files = build_zoo.ensure(name, log=lambda *a: None)
    feeds = build_zoo.load_npz(files["inputs"])
    ref = build_zoo.load_npz(files["ref"])

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
        diff = float(np.max(np.abs(got.astype(np.float64) - want))) if want.size else 0.0
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{name} output '{out_name}': max abs diff {diff:.3g}")
