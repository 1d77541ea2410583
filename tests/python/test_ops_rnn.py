"""LSTM, GRU and RNN against torch.nn (weights moved into ONNX's gate order) and against a numpy
reference of the ONNX equations for what torch lacks (sequence_lens, peepholes, clip,
input_forget, GRU linear_before_reset=0, other activations)."""

import numpy as np
import pytest
import torch

import kiln
from kiln.capi import onnxruntime_pybind11_state as state
from concurrency import run_concurrently
from onnx_builders import node_model

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
OUTS = {"LSTM": ["Y", "Y_h", "Y_c"], "GRU": ["Y", "Y_h"], "RNN": ["Y", "Y_h"]}
INPUT_NAMES = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]


def run_rnn(op, inputs, outputs=None, opset=14, constants=(), threads=0, **attrs):
    """Runs one RNN node; `inputs` maps input names to arrays or None (omitted); names listed in
    `constants` become initializers; `threads` is the session's intra-op thread count (0: all
    cores). Returns a dict of the requested outputs."""
    outputs = OUTS[op] if outputs is None else outputs
    last = max(i for i, n in enumerate(INPUT_NAMES) if inputs.get(n) is not None)
    ordered = {n: inputs.get(n) for n in INPUT_NAMES[:last + 1]}
    inits = {n: ordered[n] for n in constants}
    model = node_model(op, ordered, outputs, opset, inits, **attrs)
    so = kiln.SessionOptions()
    so.intra_op_num_threads = threads
    sess = kiln.InferenceSession(model.SerializeToString(), so)
    feeds = {k: v for k, v in ordered.items() if v is not None and k not in inits}
    res = sess.run(None, feeds)
    return dict(zip([o for o in outputs if o], res))


# --- numpy reference of the ONNX equations, in float64 ------------------------------------------

def act_fn(name, alpha=None, beta=None):
    n = name.lower()
    return {
        "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "tanh": np.tanh,
        "relu": lambda x: np.maximum(x, 0),
        "leakyrelu": lambda x: np.where(x >= 0, x, (0.01 if alpha is None else alpha) * x),
        "thresholdedrelu": lambda x: np.where(x > (1.0 if alpha is None else alpha), x, 0),
        "scaledtanh": lambda x: (1.0 if alpha is None else alpha) * np.tanh((1.0 if beta is None else beta) * x),
        "hardsigmoid": lambda x: np.clip((0.2 if alpha is None else alpha) * x + (0.5 if beta is None else beta), 0, 1),
        "elu": lambda x: np.where(x >= 0, x, (1.0 if alpha is None else alpha) * (np.exp(x) - 1)),
        "softsign": lambda x: x / (1 + np.abs(x)),
        "softplus": lambda x: np.log1p(np.exp(x)),
        "affine": lambda x: (1.0 if alpha is None else alpha) * x + (0.0 if beta is None else beta),
    }[n]


def reference(op, X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None,
              direction="forward", layout=0, clip=None, input_forget=0, linear_before_reset=0,
              activations=None, activation_alpha=None, activation_beta=None, hidden_size=None):
    X, W, R = (np.asarray(a, np.float64) for a in (X, W, R))
    if layout:
        X = X.transpose(1, 0, 2)
        initial_h = None if initial_h is None else initial_h.transpose(1, 0, 2)
        initial_c = None if initial_c is None else initial_c.transpose(1, 0, 2)
    seq, batch, _ = X.shape
    nd = W.shape[0]
    H = R.shape[2]
    G = GATES[op]
    per = len(DEFAULT_ACTS[op])
    names = activations or DEFAULT_ACTS[op]
    names = names * nd if len(names) == per else names
    alphas, betas = list(activation_alpha or []), list(activation_beta or [])
    fns = []
    for n in names:  # alphas and betas go, in order, to the functions that take them
        a = alphas.pop(0) if n.lower() in ("leakyrelu", "thresholdedrelu", "scaledtanh", "hardsigmoid", "elu", "affine") and alphas else None
        b = betas.pop(0) if n.lower() in ("scaledtanh", "hardsigmoid", "affine") and betas else None
        fns.append(act_fn(n, a, b))
    lens = np.full(batch, seq) if sequence_lens is None else np.asarray(sequence_lens)
    cl = (lambda v: np.clip(v, -clip, clip)) if clip else (lambda v: v)
    Y = np.zeros((seq, nd, batch, H))
    Yh = np.zeros((nd, batch, H))
    Yc = np.zeros((nd, batch, H))
    for d in range(nd):
        rev = direction == "reverse" or d == 1
        f, g, h = (fns[d * per:(d + 1) * per] + [None, None])[:3]
        Wb = np.zeros(G * H) if B is None else B[d, :G * H].astype(np.float64)
        Rb = np.zeros(G * H) if B is None else B[d, G * H:].astype(np.float64)
        pi, po, pf = (np.zeros(H),) * 3 if P is None else np.split(P[d].astype(np.float64), 3)
        for b in range(batch):
            Ht = np.zeros(H) if initial_h is None else initial_h[d, b].astype(np.float64)
            Ct = np.zeros(H) if initial_c is None else initial_c[d, b].astype(np.float64)
            L = lens[b]
            for s in range(L):
                t = L - 1 - s if rev else s
                x = X[t, b]
                if op == "LSTM":
                    gates = W[d] @ x + R[d] @ Ht + Wb + Rb
                    i, o, fg, c = np.split(gates, 4)
                    i = f(cl(i + pi * Ct))
                    fg = 1 - i if input_forget else f(cl(fg + pf * Ct))
                    c = g(cl(c))
                    Ct = fg * Ct + i * c
                    o = f(cl(o + po * Ct))
                    Ht = o * h(Ct)
                elif op == "GRU":
                    Wz, Wr, Wh = np.split(W[d], 3)
                    Rz, Rr, Rh = np.split(R[d], 3)
                    Wbz, Wbr, Wbh = np.split(Wb, 3)
                    Rbz, Rbr, Rbh = np.split(Rb, 3)
                    z = f(cl(Wz @ x + Rz @ Ht + Wbz + Rbz))
                    r = f(cl(Wr @ x + Rr @ Ht + Wbr + Rbr))
                    if linear_before_reset:
                        hh = g(cl(Wh @ x + r * (Rh @ Ht + Rbh) + Wbh))
                    else:
                        hh = g(cl(Wh @ x + Rh @ (r * Ht) + Rbh + Wbh))
                    Ht = (1 - z) * hh + z * Ht
                else:
                    Ht = f(cl(W[d] @ x + R[d] @ Ht + Wb + Rb))
                Y[t, d, b] = Ht
            Yh[d, b] = Ht if L else 0
            Yc[d, b] = Ct if L else 0
    if layout:
        Y, Yh, Yc = Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return {"Y": Y, "Y_h": Yh, "Y_c": Yc}


def make_inputs(op, seq, batch, inp, hidden, nd=1, layout=0, dtype=np.float32, seed=0, bias=True,
                states=True, peep=False):
    rng = np.random.default_rng(seed)
    G = GATES[op]
    x_shape = (batch, seq, inp) if layout else (seq, batch, inp)
    s_shape = (batch, nd, hidden) if layout else (nd, batch, hidden)
    r = lambda *s: rng.uniform(-0.6, 0.6, s).astype(dtype)
    ins = {"X": r(*x_shape), "W": r(nd, G * hidden, inp), "R": r(nd, G * hidden, hidden)}
    if bias:
        ins["B"] = r(nd, 2 * G * hidden)
    if states:
        ins["initial_h"] = r(*s_shape)
        if op == "LSTM":
            ins["initial_c"] = r(*s_shape)
    if peep:
        ins["P"] = r(nd, 3 * hidden)
    return ins


def check(op, ins, got_outputs=None, rtol=1e-4, atol=2e-5, opset=14, constants=(), threads=0, **attrs):
    got = run_rnn(op, ins, got_outputs, opset, constants, threads, **attrs)
    ref_attrs = {k: v for k, v in attrs.items() if k != "hidden_size"}
    want = reference(op, **ins, **ref_attrs)
    for name, value in got.items():
        assert value.dtype == ins["X"].dtype
        assert value.shape == want[name].shape, name
        np.testing.assert_allclose(value, want[name], rtol=rtol, atol=atol, err_msg=name)
    return got


# --- against torch ------------------------------------------------------------------------------

TORCH_ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}  # ONNX gate k = torch chunk order[k]


def torch_to_onnx(op, module, nd):
    """W, R, B in ONNX's layout and gate order from a torch.nn recurrent module."""
    order = TORCH_ORDER[op]
    Ws, Rs, Bs = [], [], []
    for sfx in ["", "_reverse"][:nd]:
        get = lambda n: getattr(module, n + "_l0" + sfx).detach().numpy()
        re = lambda a: np.concatenate([np.split(a, len(order))[k] for k in order])
        Ws.append(re(get("weight_ih")))
        Rs.append(re(get("weight_hh")))
        Bs.append(np.concatenate([re(get("bias_ih")), re(get("bias_hh"))]))
    return np.stack(Ws), np.stack(Rs), np.stack(Bs)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layout", [0, 1])
def test_matches_torch(op, bidirectional, layout):
    torch.manual_seed(0)
    seq, batch, inp, hidden = 6, 3, 7, 9
    nd = 2 if bidirectional else 1
    module = getattr(torch.nn, op)(inp, hidden, bidirectional=bidirectional, batch_first=bool(layout))
    W, R, B = torch_to_onnx(op, module, nd)
    x = torch.randn((batch, seq, inp) if layout else (seq, batch, inp))
    h0 = torch.randn(nd, batch, hidden)
    c0 = torch.randn(nd, batch, hidden)
    with torch.no_grad():
        y, st = module(x, (h0, c0) if op == "LSTM" else h0)
    hn, cn = st if op == "LSTM" else (st, None)
    # ONNX's states are [batch, num_directions, hidden] under layout 1; torch's stay [dirs, batch, hidden].
    to_state = (lambda t: t.numpy().transpose(1, 0, 2).copy()) if layout else (lambda t: t.numpy())
    ins = {"X": x.numpy(), "W": W, "R": R, "B": B, "initial_h": to_state(h0)}
    if op == "LSTM":
        ins["initial_c"] = to_state(c0)
    attrs = dict(hidden_size=hidden, direction="bidirectional" if bidirectional else "forward", layout=layout)
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    got = run_rnn(op, ins, **attrs)
    # torch's Y is [seq, batch, dirs*hidden] (or batch-first); ONNX's [seq, dirs, batch, hidden].
    y = y.numpy()
    want_y = (y.reshape(batch, seq, nd, hidden) if layout else
              y.reshape(seq, batch, nd, hidden).transpose(0, 2, 1, 3))
    np.testing.assert_allclose(got["Y"], want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["Y_h"], to_state(hn), rtol=1e-4, atol=1e-5)
    if op == "LSTM":
        np.testing.assert_allclose(got["Y_c"], to_state(cn), rtol=1e-4, atol=1e-5)


def test_rnn_relu_matches_torch_and_weights_as_initializers():
    torch.manual_seed(1)
    module = torch.nn.RNN(5, 8, nonlinearity="relu")
    W, R, B = torch_to_onnx("RNN", module, 1)
    x = torch.randn(4, 2, 5)
    with torch.no_grad():
        y, hn = module(x)
    got = run_rnn("RNN", {"X": x.numpy(), "W": W, "R": R, "B": B}, constants=("W", "R", "B"),
                  hidden_size=8, activations=["Relu"])
    np.testing.assert_allclose(got["Y"][:, 0], y.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["Y_h"], hn.numpy(), rtol=1e-4, atol=1e-5)


# --- against the numpy reference ----------------------------------------------------------------

@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("layout", [0, 1])
def test_sequence_lens(op, direction, layout):
    nd = 2 if direction == "bidirectional" else 1
    ins = make_inputs(op, 5, 4, 3, 6, nd, layout, seed=2)
    ins["sequence_lens"] = np.array([5, 2, 0, 3], np.int32)
    got = check(op, ins, direction=direction, layout=layout, hidden_size=6)
    y = got["Y"] if layout else got["Y"].transpose(2, 0, 1, 3)  # [batch, seq, dirs, hidden]
    assert not y[1, 2:].any() and not y[2].any() and not y[3, 3:].any()


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_one_session_across_shapes_and_weights(op):
    # Initializer weights are packed once and must survive new shapes; fed weights are packed
    # on every run, so new values must show.
    rng = np.random.default_rng(3)
    ins = make_inputs(op, 4, 3, 5, 7, 2, seed=3, states=False)
    lens = np.array([4, 1, 3], np.int32)
    attrs = dict(direction="bidirectional", linear_before_reset=0) if op == "GRU" else dict(direction="bidirectional")
    ordered = {"X": ins["X"], "W": ins["W"], "R": ins["R"], "B": ins["B"], "sequence_lens": lens}
    const_sess = kiln.InferenceSession(node_model(op, ordered, ["Y", "Y_h"], 14, {"W": ins["W"], "R": ins["R"]},
                                                  **attrs).SerializeToString())
    fed_sess = kiln.InferenceSession(node_model(op, ordered, ["Y", "Y_h"], 14, **attrs).SerializeToString())
    for seq, batch in [(4, 3), (9, 2), (1, 5), (9, 2), (4, 3)]:
        x = rng.uniform(-1, 1, (seq, batch, 5)).astype(np.float32)
        lens = rng.integers(0, seq + 1, batch).astype(np.int32)
        b = rng.uniform(-1, 1, ins["B"].shape).astype(np.float32)
        got = const_sess.run(None, {"X": x, "B": b, "sequence_lens": lens})
        want = reference(op, x, ins["W"], ins["R"], b, lens, **attrs)
        np.testing.assert_allclose(got[0], want["Y"], rtol=1e-4, atol=2e-5)
        np.testing.assert_allclose(got[1], want["Y_h"], rtol=1e-4, atol=2e-5)
        w = rng.uniform(-0.6, 0.6, ins["W"].shape).astype(np.float32)
        r = rng.uniform(-0.6, 0.6, ins["R"].shape).astype(np.float32)
        got = fed_sess.run(None, {"X": x, "W": w, "R": r, "B": b, "sequence_lens": lens})
        want = reference(op, x, w, r, b, lens, **attrs)
        np.testing.assert_allclose(got[0], want["Y"], rtol=1e-4, atol=2e-5)
        np.testing.assert_allclose(got[1], want["Y_h"], rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("threads", [1, 2])
def test_recurrent_product_at_every_row_tiling(op, threads):
    # Batches of up to 24 rows take Kiln's recurrent product in passes of up to 6 rows, each pass
    # over 16-unit blocks of R (200 units: 12 blocks and a partial one); larger ones oneDNN's.
    # From 4 rows, 2 threads split the rows rather than the units. Rows end at their own lengths.
    for batch in [1, 2, 3, 4, 5, 6, 7, 8, 13, 24, 25]:
        ins = make_inputs(op, 3, batch, 6, 200, seed=batch)
        ins["sequence_lens"] = np.random.default_rng(batch).integers(0, 4, batch).astype(np.int32)
        check(op, ins, hidden_size=200, constants=("W", "R", "B"), threads=threads)


def test_lstm_peepholes_clip_input_forget():
    ins = make_inputs("LSTM", 6, 3, 4, 5, 2, peep=True, seed=4)
    ins["X"] *= 4  # push pre-activations past the clip
    check("LSTM", ins, direction="bidirectional", clip=1.5)
    check("LSTM", ins, direction="bidirectional", input_forget=1)
    check("LSTM", ins, direction="bidirectional", input_forget=1, clip=0.7, constants=("W", "R", "P"))


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_gru_linear_before_reset_0_and_1(direction):
    nd = 2 if direction == "bidirectional" else 1
    ins = make_inputs("GRU", 5, 3, 4, 6, nd, seed=5)
    for lbr in (0, 1):
        check("GRU", ins, direction=direction, linear_before_reset=lbr)
        check("GRU", ins, direction=direction, linear_before_reset=lbr, clip=0.5, constants=("W", "R", "B"))
    no_bias = {k: v for k, v in ins.items() if k != "B"}
    check("GRU", no_bias, direction=direction, linear_before_reset=1)


@pytest.mark.parametrize("acts,alpha,beta", [
    (["LeakyRelu"], [0.3], None),
    (["ThresholdedRelu"], [0.1], None),
    (["ScaledTanh"], [1.5], [0.7]),
    (["HardSigmoid"], None, None),
    (["Elu"], [0.5], None),
    (["Softsign"], None, None),
    (["Softplus"], None, None),
    (["Affine"], [0.6], [0.1]),
    (["sigmoid"], None, None),
])
def test_rnn_activations(acts, alpha, beta):
    ins = make_inputs("RNN", 4, 2, 3, 5, seed=6)
    attrs = {"activations": acts}
    if alpha:
        attrs["activation_alpha"] = alpha
    if beta:
        attrs["activation_beta"] = beta
    check("RNN", ins, **attrs)


def test_activations_per_direction_with_alphas_in_order():
    ins = make_inputs("LSTM", 4, 2, 3, 5, 2, seed=7)
    check("LSTM", ins, direction="bidirectional",
          activations=["HardSigmoid", "Tanh", "ScaledTanh", "Sigmoid", "LeakyRelu", "Softsign"],
          activation_alpha=[0.25, 0.9, 0.2], activation_beta=[0.45, 1.1])
    gins = make_inputs("GRU", 4, 2, 3, 5, 2, seed=8)
    # One direction's list serves both directions.
    check("GRU", gins, direction="bidirectional", activations=["Sigmoid", "Elu"], activation_alpha=[0.4])


def test_optional_outputs_and_inputs():
    ins = make_inputs("LSTM", 5, 2, 3, 4, states=False, bias=False, seed=9)
    got = check("LSTM", ins, ["", "Y_h"])
    assert list(got) == ["Y_h"]
    got = check("LSTM", ins, ["Y", "", "Y_c"], direction="reverse")
    assert list(got) == ["Y", "Y_c"]
    gins = make_inputs("GRU", 5, 2, 3, 4, seed=10)
    assert list(check("GRU", gins, ["Y"])) == ["Y"]
    # hidden_size may be left out: R tells it.
    check("RNN", make_inputs("RNN", 3, 2, 3, 4, seed=11))


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_float64(op):
    ins = make_inputs(op, 5, 3, 4, 6, 2, dtype=np.float64, seed=12)
    ins["sequence_lens"] = np.array([5, 3, 1], np.int32)
    check(op, ins, rtol=1e-10, atol=1e-12, direction="bidirectional", clip=2.0)
    check(op, ins, rtol=1e-10, atol=1e-12, direction="bidirectional", constants=("W", "R"))


@pytest.mark.parametrize("opset", [1, 7, 14, 21])
def test_opsets(opset):
    ins = make_inputs("GRU", 3, 2, 3, 4, seed=13)
    check("GRU", ins, opset=opset)  # linear_before_reset 0: the only behaviour before opset 3
    if opset >= 3:
        check("GRU", ins, opset=opset, linear_before_reset=1)
    check("LSTM", make_inputs("LSTM", 3, 2, 3, 4, seed=14), opset=opset)


def test_empty_sequence_batch_and_input():
    ins = make_inputs("LSTM", 0, 3, 4, 5, seed=15)
    got = check("LSTM", ins)
    assert got["Y"].shape == (0, 1, 3, 5) and not got["Y_h"].any()
    check("GRU", make_inputs("GRU", 4, 0, 3, 5, seed=16))
    # input_size 0: only the bias and the recurrence drive the state.
    check("RNN", make_inputs("RNN", 3, 2, 0, 4, seed=17))
    check("LSTM", make_inputs("LSTM", 3, 2, 0, 4, seed=18, dtype=np.float64), rtol=1e-10, atol=1e-12)


def test_longer_sequence_bigger_batch():
    # Enough batch rows for the gate loop to split across threads.
    ins = make_inputs("LSTM", 40, 64, 48, 64, 2, seed=19)
    ins["sequence_lens"] = np.random.default_rng(0).integers(1, 41, 64).astype(np.int32)
    check("LSTM", ins, direction="bidirectional", constants=("W", "R", "B"), rtol=1e-3, atol=1e-4)
    gins = make_inputs("GRU", 30, 33, 20, 40, seed=20)
    check("GRU", gins, linear_before_reset=0, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("op,hidden,attrs", [("LSTM", 120, {}), ("GRU", 120, {"linear_before_reset": 1}),
                                            ("RNN", 200, {})])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [4, 5])
def test_small_batch_units_split_over_threads(op, hidden, attrs, threads, batch):
    # Batches of up to 6 rows run the recurrent product per block of 16 hidden units (in passes
    # of up to 3 rows: 2 + 2, 2 + 3), the blocks split over the threads with one barrier per
    # step. 120 and 200 units end in a partial block; a finished row (length 5, 0) must keep its
    # state while the others run on. R is scaled down so the recurrence contracts: at full scale
    # float32 rounding grows chaotically over steps.
    ins = make_inputs(op, 12, batch, 10, hidden, 2, seed=23)
    ins["R"] *= 0.3
    ins["sequence_lens"] = np.array([12, 5, 0, 9, 3][:batch], np.int32)
    check(op, ins, direction="bidirectional", threads=threads, **attrs)
    check(op, ins, direction="bidirectional", threads=threads, constants=("R",), **attrs)


def test_concurrent_runs_of_the_split_recurrence():
    # Each run's frame has its own kernels, packed R and state buffers; runs from many threads,
    # each with its own team for the per-step barrier, must not mix.
    ins = make_inputs("LSTM", 10, 2, 8, 128, 1, seed=24)
    ins["R"] *= 0.3
    model = node_model("LSTM", {k: ins[k] for k in ("X", "W", "R", "B")}, ["Y"], 14,
                       {"W": ins["W"], "R": ins["R"], "B": ins["B"]}, hidden_size=128)
    so = kiln.SessionOptions()
    so.intra_op_num_threads = 2
    sess = kiln.InferenceSession(model.SerializeToString(), so)
    rng = np.random.default_rng(25)
    xs = [rng.uniform(-1, 1, (10, 2, 8)).astype(np.float32) for _ in range(4)]
    wants = [reference("LSTM", x, ins["W"], ins["R"], ins["B"])["Y"] for x in xs]
    bad = []

    def worker(k):
        for _ in range(10):
            if not np.allclose(sess.run(None, {"X": xs[k]})[0], wants[k], rtol=1e-4, atol=2e-5):
                bad.append(k)

    run_concurrently(worker, 4)
    assert bad == []


# --- errors -------------------------------------------------------------------------------------

def test_wrong_shapes_name_expected_and_got():
    ins = make_inputs("LSTM", 3, 2, 4, 5, seed=21)
    bad = dict(ins, W=np.zeros((1, 16, 4), np.float32))
    with pytest.raises(state.InvalidArgument, match=r"W must have shape \[1,20,4\].*got \[1,16,4\]"):
        run_rnn("LSTM", bad, hidden_size=5)
    with pytest.raises(state.InvalidArgument, match=r"R must have shape \[2,20,5\].*got \[1,20,5\]"):
        run_rnn("LSTM", dict(ins, W=np.concatenate([ins["W"]] * 2)), hidden_size=5, direction="bidirectional")
    with pytest.raises(state.InvalidArgument, match=r"B must have shape \[1,40\].*got \[1,20\]"):
        run_rnn("LSTM", dict(ins, B=np.zeros((1, 20), np.float32)), hidden_size=5)
    with pytest.raises(state.InvalidArgument, match=r"initial_h must have shape \[3,1,5\].*got \[1,2,5\]"):
        run_rnn("LSTM", ins, hidden_size=5, layout=1)
    with pytest.raises(state.InvalidArgument, match=r"P must have shape \[1,15\].*got \[1,5\]"):
        run_rnn("LSTM", dict(ins, P=np.zeros((1, 5), np.float32)), hidden_size=5)
    with pytest.raises(state.InvalidArgument, match=r"X must have rank 3.*got \[3,4\]"):
        run_rnn("RNN", {"X": np.zeros((3, 4), np.float32), "W": np.zeros((1, 5, 4), np.float32),
                        "R": np.zeros((1, 5, 5), np.float32)})


def test_bad_values_and_attributes():
    ins = make_inputs("GRU", 3, 2, 4, 5, seed=22)
    with pytest.raises(state.InvalidArgument, match=r"sequence_lens\[1\] = 4 is outside \[0, 3\]"):
        run_rnn("GRU", dict(ins, sequence_lens=np.array([3, 4], np.int32)))
    with pytest.raises(state.InvalidArgument, match="sequence_lens must be int32, got int64"):
        run_rnn("GRU", dict(ins, sequence_lens=np.array([3, 3], np.int64)))
    with pytest.raises(state.InvalidArgument, match="W is double but X is float"):
        run_rnn("GRU", dict(ins, W=ins["W"].astype(np.float64)))
    with pytest.raises(Exception, match="direction must be forward, reverse or bidirectional, got 'sideways'"):
        run_rnn("GRU", ins, direction="sideways")
    with pytest.raises(Exception, match="activation 'Swish' is not one of"):
        run_rnn("GRU", ins, activations=["Sigmoid", "Swish"])
    with pytest.raises(Exception, match=r"expected 2 activations \(2 per direction\), got 3"):
        run_rnn("GRU", ins, activations=["Sigmoid", "Tanh", "Tanh"])
    with pytest.raises(Exception, match="layout must be 0 or 1, got 2"):
        run_rnn("GRU", ins, layout=2)
    with pytest.raises(Exception, match="clip must be positive"):
        run_rnn("GRU", ins, clip=0.0)
    with pytest.raises(state.NotImplemented, match="element type int32 is not supported"):
        run_rnn("RNN", {"X": np.zeros((2, 1, 3), np.int32), "W": np.zeros((1, 4, 3), np.int32),
                        "R": np.zeros((1, 4, 4), np.int32)})
