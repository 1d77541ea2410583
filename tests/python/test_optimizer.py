"""Graph rewrites: the optimized graph computes what the plain one does (checked against
PyTorch), and the fusions really happen (read back through optimized_model_filepath)."""

import collections
import io

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import kiln
from machine import HAS_AVX512
from concurrency import run_concurrently


def export(module, *args, opset=17, dynamic=None):
    module.eval()
    f = io.BytesIO()
    names = [f"in{i}" for i in range(len(args))]
    torch.onnx.export(module, args, f, opset_version=opset, input_names=names, output_names=["out"],
                      dynamic_axes=dynamic)
    return f.getvalue()


def assert_topological(graph):
    """Every node reads only graph inputs, initializers and outputs of the nodes before it."""
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    for n in graph.node:
        assert set(n.input) <= known, (n.name, set(n.input) - known)
        known |= set(n.output)


def run(model_bytes, feeds, level, tmp_path=None):
    so = kiln.SessionOptions()
    so.graph_optimization_level = level
    path = None
    if tmp_path is not None:
        path = str(tmp_path / f"opt{int(level)}.onnx")
        so.optimized_model_filepath = path
    sess = kiln.InferenceSession(model_bytes, so)
    out = sess.run(None, feeds)[0]
    ops = None
    if path:
        m = onnx.load(path)
        assert_topological(m.graph)
        ops = collections.Counter((n.domain + "::" if n.domain else "") + n.op_type for n in m.graph.node)
        ops.update(a.name for n in m.graph.node for a in n.attribute if a.name.startswith("kiln_"))
    return out, ops


def assert_concurrent_runs_match(sess, reference, inputs, workers, feed="in0", atol=1e-5):
    """Runs `sess` on `workers` threads at once, worker k on each array `inputs(k)` yields as
    `feed`, and checks every output against `reference`: a PyTorch module, or a function of the
    array."""
    errors = []

    def want_of(x):
        if not isinstance(reference, nn.Module):
            return reference(x)
        with torch.no_grad():
            return reference(torch.from_numpy(x)).numpy()

    def worker(k):
        for x in inputs(k):
            want = want_of(x)
            got = sess.run(None, {feed: x})[0]
            if not np.allclose(got, want, rtol=1e-4, atol=atol):
                errors.append((k, x.shape[0], float(np.abs(got - want).max())))

    run_concurrently(worker, workers)
    assert not errors, errors


def optimized_ops(module, x, tmp_path, opset=17, dynamic=None, plain_too=False):
    """Exports `module`, checks the optimized (and, if asked, the unoptimized) session against
    PyTorch on `x`, and returns the model bytes and the optimized graph's op/attribute counts."""
    data = export(module, torch.from_numpy(x), opset=opset, dynamic=dynamic)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    if plain_too:
        plain, _ = run(data, {"in0": x}, kiln.GraphOptimizationLevel.ORT_DISABLE_ALL)
        np.testing.assert_allclose(plain, ref, rtol=1e-4, atol=1e-5)
    fused, ops = run(data, {"in0": x}, kiln.GraphOptimizationLevel.ORT_ENABLE_ALL, tmp_path)
    np.testing.assert_allclose(fused, ref, rtol=1e-4, atol=1e-5)
    return data, ops


class ConvBlock(nn.Module):
    """conv-bn-relu, conv-bn + residual, relu; a 1x1 projection whose output is broadcast-added."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.b1 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c3 = nn.Conv2d(8, 4, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        for bn in (self.b1, self.b2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.2, 0.2)

    def forward(self, x):
        y = torch.relu(self.b1(self.c1(x)))
        y = torch.relu(self.b2(self.c2(y)) + x)
        return torch.clamp(self.c3(y) + self.pool(y)[:, :4], 0, 6)  # Z of shape [N, 4, 1, 1]: broadcast


@pytest.mark.parametrize("opset", [13, 17])
def test_conv_bn_activation_and_residual_fusions(opset, tmp_path):
    x = np.random.default_rng(1).standard_normal((2, 8, 9, 7)).astype(np.float32)
    _, ops = optimized_ops(ConvBlock(), x, tmp_path, opset=opset, plain_too=True)
    assert ops["BatchNormalization"] == 0 and ops["Relu"] == 0 and ops["Clip"] == 0, ops
    assert ops["kiln::FusedConv"] == 3, ops
    # c1 -> c2 stays channels-last between the two convolutions
    assert ops["kiln_y_nhwc"] == 1 and ops["kiln_x_nhwc"] == 1, ops


@pytest.mark.parametrize("threads", [1, 2])
def test_new_batch_sizes(threads):
    # A run at a new batch size that scales the last one (2 -> 4 -> 6 -> 3 -> 1) first makes the
    # convolutions' primitives for it on the session's threads, or, at up to twice the batch a
    # primitive was made for (1 -> 2, 4 -> 8, and back to 4), runs that primitive on each half;
    # the runs must give the same answers.
    block = ConvBlock().eval()
    data = export(block, torch.zeros(2, 8, 9, 7), dynamic={"in0": {0: "n"}, "out": {0: "n"}})
    so = kiln.SessionOptions()
    so.intra_op_num_threads = threads
    sess = kiln.InferenceSession(data, so)
    rng = np.random.default_rng(4)
    for n in [2, 4, 6, 3, 1, 4, 1, 2, 4, 8, 4, 2, 1]:
        x = rng.standard_normal((n, 8, 9, 7)).astype(np.float32)
        with torch.no_grad():
            want = block(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(sess.run(None, {"in0": x})[0], want, rtol=1e-4, atol=1e-5, err_msg=f"n={n}")


class FeedForward(nn.Module):
    def __init__(self, d=32, h=96, approximate=False):
        super().__init__()
        torch.manual_seed(2)
        self.up, self.down = nn.Linear(d, h), nn.Linear(h, d)

    def forward(self, x):
        return self.down(torch.nn.functional.gelu(self.up(x))) + x


def test_matmul_bias_gelu_fusion(tmp_path):
    x = np.random.default_rng(3).standard_normal((2, 5, 32)).astype(np.float32)
    ff = FeedForward()
    data, ops = optimized_ops(ff, x, tmp_path, dynamic={"in0": {0: "b", 1: "s"}})
    assert ops["kiln::FusedMatMul"] == 2 and ops["Erf"] == 0 and ops["MatMul"] == 0, ops
    assert ops["Add"] == 0, ops  # the residual + x rides on the second matmul
    # another sequence length through the same session's fused kernels
    x2 = np.random.default_rng(4).standard_normal((3, 11, 32)).astype(np.float32)
    with torch.no_grad():
        ref2 = ff(torch.from_numpy(x2)).numpy()
    np.testing.assert_allclose(run(data, {"in0": x2}, kiln.GraphOptimizationLevel.ORT_ENABLE_ALL)[0], ref2,
                               rtol=1e-4, atol=1e-5)


def test_optimized_model_is_valid_onnx_and_reloads(tmp_path):
    x = np.random.default_rng(5).standard_normal((1, 8, 6, 6)).astype(np.float32)
    block = ConvBlock()
    data = export(block, torch.from_numpy(x))
    out, _ = run(data, {"in0": x}, kiln.GraphOptimizationLevel.ORT_ENABLE_ALL, tmp_path)
    path = tmp_path / f"opt{int(kiln.GraphOptimizationLevel.ORT_ENABLE_ALL)}.onnx"
    again = kiln.InferenceSession(str(path)).run(None, {"in0": x})[0]
    np.testing.assert_array_equal(out, again)


def test_new_batch_sizes_in_concurrent_runs():
    # Runs on several threads at once, each walking its own batch sizes (a doubled batch runs
    # the old primitives on halves until its next run settles), must all match PyTorch.
    block = ConvBlock().eval()
    data = export(block, torch.zeros(2, 8, 9, 7), dynamic={"in0": {0: "n"}, "out": {0: "n"}})
    so = kiln.SessionOptions()
    so.intra_op_num_threads = 2
    sess = kiln.InferenceSession(data, so)

    def inputs(k):
        rng = np.random.default_rng(40 + k)
        for n in [1, 2, 2, 4, 8, 8, 4, 2, 4, 4][k:] + [3, 6]:
            yield rng.standard_normal((n, 8, 9, 7)).astype(np.float32)

    assert_concurrent_runs_match(sess, block, inputs, 3)


class MobileBlock(nn.Module):
    """Stem conv + max pool, a SiLU inverted-residual block with squeeze-excite, and a fire-style
    Concat of two branches: everything between the convolutions can stay channels-last."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(6)
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.expand = nn.Conv2d(16, 32, 1)
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.se1, self.se2 = nn.Conv2d(32, 8, 1), nn.Conv2d(8, 32, 1)
        self.project = nn.Conv2d(32, 16, 1)
        self.left, self.right = nn.Conv2d(16, 8, 1), nn.Conv2d(16, 8, 3, padding=1)
        self.head = nn.Conv2d(16, 10, 1)

    def forward(self, x):
        x = self.pool(torch.relu(self.stem(x)))
        y = F.silu(self.expand(x))
        y = F.silu(self.dw(y))
        s = torch.sigmoid(self.se2(F.silu(self.se1(F.adaptive_avg_pool2d(y, 1)))))
        x = self.project(y * s) + x
        x = torch.cat([torch.relu(self.left(x)), torch.relu(self.right(x))], 1)
        x = F.avg_pool2d(x, 2, count_include_pad=False) * 0.5  # a pointlike constant operand
        return torch.flatten(F.adaptive_avg_pool2d(self.head(x), 1), 1)


def test_silu_squeeze_excite_pool_concat_stay_channels_last(tmp_path):
    block = MobileBlock()
    x = np.random.default_rng(7).standard_normal((2, 3, 33, 31)).astype(np.float32)
    data, ops = optimized_ops(block, x, tmp_path, dynamic={"in0": {0: "n", 2: "h", 3: "w"}}, plain_too=True)
    # every SiLU rides on its convolution as a post-op
    assert ops["Sigmoid"] == 0 and ops["Relu"] == 0, ops
    # The SE Mul rides on the projection (its fifth input); both GlobalAveragePools on the
    # convolutions they read (their second outputs). Concat, AveragePool and the scaling Mul
    # read channels-last data, and every convolution writes it.
    assert ops["Mul"] == 1 and ops["GlobalAveragePool"] == 0, ops
    if HAS_AVX512:
        # The expansion and the depthwise layer run as one node, the MaxPool rides on the
        # stem; all convolutions but the stem and the first SE conv (reading the pooled
        # [N, C, 1, 1] vector, the same bytes either way) read channels-last data too.
        assert ops["kiln::FusedConv"] == 7 and ops["kiln::ExpandDepthwise"] == 1, ops
        assert ops["MaxPool"] == 0 and ops["kiln_pool_kernel"] == 1 and ops["kiln_nhwc"] == 3, ops
        assert ops["kiln_y_nhwc"] == 7 and ops["kiln_x_nhwc"] == 5, ops
    else:  # on oneDNN: the two layers apart, the MaxPool a node of its own on channels-last data
        assert ops["kiln::FusedConv"] == 9 and ops["kiln::ExpandDepthwise"] == 0, ops
        assert ops["MaxPool"] == 1 and ops["kiln_pool_kernel"] == 0 and ops["kiln_nhwc"] == 4, ops
        assert ops["kiln_y_nhwc"] == 9 and ops["kiln_x_nhwc"] == 7, ops
    # another image size through the same session
    x2 = np.random.default_rng(8).standard_normal((1, 3, 20, 24)).astype(np.float32)
    with torch.no_grad():
        ref2 = block(torch.from_numpy(x2)).numpy()
    np.testing.assert_allclose(run(data, {"in0": x2}, kiln.GraphOptimizationLevel.ORT_ENABLE_ALL)[0], ref2,
                               rtol=1e-4, atol=1e-5)
    # the optimized model, fused nodes and all, reloads and runs the same
    path = tmp_path / f"opt{int(kiln.GraphOptimizationLevel.ORT_ENABLE_ALL)}.onnx"
    np.testing.assert_allclose(kiln.InferenceSession(str(path)).run(None, {"in0": x2})[0], ref2, rtol=1e-4, atol=1e-5)


class TanhGeluMlp(nn.Module):
    """GPT-2's MLP: its tanh GELU written out, in both orders of the final products."""

    def __init__(self, d=16, h=48):
        super().__init__()
        torch.manual_seed(9)
        self.up, self.down = nn.Linear(d, h), nn.Linear(h, d)

    def forward(self, x):
        y = self.up(x)
        y = 0.5 * y * (1.0 + torch.tanh(0.7978845608028654 * (y + 0.044715 * torch.pow(y, 3.0))))
        z = self.down(y)
        return z * (1.0 + torch.tanh(0.7978845608028654 * (z + 0.044715 * torch.pow(z, 3.0)))) * 0.5


def test_tanh_gelu_fusion(tmp_path):
    x = np.random.default_rng(10).standard_normal((2, 7, 16)).astype(np.float32) * 3
    _, ops = optimized_ops(TanhGeluMlp(), x, tmp_path, dynamic={"in0": {0: "b", 1: "s"}})
    assert ops["Tanh"] == 0 and ops["Pow"] == 0 and ops["Mul"] == 0, ops
    # The GELUs ride on the matmuls, which then run as one chain.
    assert ops["kiln::MatMulChain"] == 1 and ops["kiln::FusedMatMul"] == 0, ops
    m = onnx.load(str(tmp_path / f"opt{int(kiln.GraphOptimizationLevel.ORT_ENABLE_ALL)}.onnx"))
    chain = next(n for n in m.graph.node if n.op_type == "MatMulChain")
    assert [s.decode() for a in chain.attribute if a.name == "activations" for s in a.strings] == ["GeluTanh"] * 2


def test_decomposed_layer_norm_fusion(tmp_path):
    """Before opset 17 PyTorch writes LayerNorm out as ReduceMean/Sub/Pow/.../Add: one node again."""
    x = np.random.default_rng(11).standard_normal((2, 5, 24)).astype(np.float32) * 4 + 1
    ln = nn.LayerNorm(24, eps=1e-6)
    torch.manual_seed(12)
    ln.weight.data.uniform_(0.5, 1.5)
    ln.bias.data.uniform_(-0.5, 0.5)
    block = nn.Sequential(nn.Linear(24, 24), ln)
    _, ops = optimized_ops(block, x, tmp_path, opset=13, dynamic={"in0": {0: "b", 1: "s"}})
    assert ops["LayerNormalization"] == 1 and ops["ReduceMean"] == 0 and ops["Sqrt"] == 0, ops


def shape_chain_model(batch):
    """x [batch, 6, 8] reshaped to [b, 6, 2, 4] and [b, 48] through targets computed from
    Shape(x), as exporters write them; the LSTM-style zero state is expanded to Shape(x)[1]."""
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Constant", [], ["i0"], value=i64("i0", 0)),
        helper.make_node("Gather", ["s", "i0"], ["b"]),
        helper.make_node("Gather", ["s", "one"], ["d1"]),
        helper.make_node("Shape", ["x"], ["d2v"], start=2),
        helper.make_node("Unsqueeze", ["b", "axes0"], ["ub"]),
        helper.make_node("Unsqueeze", ["d1", "axes0"], ["u1"]),
        helper.make_node("Div", ["d2v", "two"], ["half"]),
        helper.make_node("Concat", ["ub", "u1", "two", "half"], ["t4"], axis=0),
        helper.make_node("Reshape", ["x", "t4"], ["y"]),
        helper.make_node("Mul", ["u1", "d2v"], ["flat"]),
        helper.make_node("Concat", ["minus1", "flat"], ["t2"], axis=0),
        helper.make_node("Reshape", ["x", "t2"], ["z"]),
        helper.make_node("Concat", ["one1", "u1"], ["state"], axis=0),
        helper.make_node("ConstantOfShape", ["state"], ["h"]),
    ]
    inits = [i64("one", 1), i64("axes0", [0]), i64("two", [2]), i64("minus1", [-1]), i64("one1", [1])]
    f = TensorProto.FLOAT
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", f, [batch, 6, 8])],
                          [helper.make_tensor_value_info(n, f, None) for n in ("y", "z", "h")], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("batch", [3, "batch"])
def test_shape_computations_fold(batch, tmp_path):
    data = shape_chain_model(batch)
    so = kiln.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = kiln.InferenceSession(data, so)
    ops = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node)
    if batch == "batch":  # only what reads the symbolic batch dim is left
        assert ops["Shape"] == 1 and ops["Gather"] == 1 and ops["Reshape"] == 2, ops
        assert ops["Mul"] + ops["Div"] + ops["ConstantOfShape"] == 0, ops
    else:
        assert not set(ops) & {"Shape", "Gather", "Concat", "Unsqueeze", "Div", "Mul", "ConstantOfShape"}, ops
    for b in ([3] if batch == 3 else [1, 4]):
        x = np.random.default_rng(b).standard_normal((b, 6, 8)).astype(np.float32)
        y, z, h = sess.run(None, {"x": x})
        np.testing.assert_array_equal(y, x.reshape(b, 6, 2, 4))
        np.testing.assert_array_equal(z, x.reshape(b, 48))
        np.testing.assert_array_equal(h, np.zeros((1, 6)))
    if batch == 3:  # the static dims the folding relied on are checked on every run
        with pytest.raises(kiln.capi.onnxruntime_pybind11_state.InvalidArgument, match="dimensions"):
            sess.run(None, {"x": np.zeros((3, 5, 8), np.float32)})


class Projections(nn.Module):
    """Weights big enough to be packed at load: a Linear (MatMul + Add), a Gemm with transB and
    one without, sharing nothing; the first two too large for a chain of small products."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(13)
        self.a = nn.Linear(128, 1280)
        self.b = nn.Parameter(torch.randn(1280, 192) / 16)  # Gemm, transB = 0
        self.c = nn.Linear(192, 96)                           # Gemm, transB = 1

    def forward(self, x):
        y = torch.relu(self.a(x))
        y = torch.addmm(torch.zeros(192), y.reshape(-1, 1280), self.b)
        return self.c(y)


def test_gemm_as_matmul_and_weights_packed_at_load(tmp_path):
    x = np.random.default_rng(14).standard_normal((6, 128)).astype(np.float32)
    module = Projections()
    data, ops = optimized_ops(module, x, tmp_path, dynamic={"in0": {0: "n"}})
    assert ops["Gemm"] == 0 and ops["kiln::FusedMatMul"] == 3, ops
    # The written model holds plain weights again, with the values the model came with.
    m = onnx.load(str(tmp_path / f"opt{int(kiln.GraphOptimizationLevel.ORT_ENABLE_ALL)}.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    assert not any("kiln_packed" in name for name in inits), list(inits)
    weights = sorted((w for w in inits.values() if w.ndim == 2), key=lambda w: w.shape)
    want = sorted([module.a.weight.detach().numpy().T, module.b.detach().numpy(), module.c.weight.detach().numpy().T],
                  key=lambda w: w.shape)
    for got, expected in zip(weights, want):
        np.testing.assert_array_equal(got, expected)
    # other batch sizes through the packed weights
    for n in (1, 17):
        xn = np.random.default_rng(n).standard_normal((n, 128)).astype(np.float32)
        with torch.no_grad():
            ref = module(torch.from_numpy(xn)).numpy()
        np.testing.assert_allclose(run(data, {"in0": xn}, kiln.GraphOptimizationLevel.ORT_ENABLE_ALL)[0], ref,
                                   rtol=1e-4, atol=1e-5)


def optimized_sessions(data, tmp_path):
    """A session of `data` at 1 and at 2 threads, each writing its optimized model, with that
    model's initializers."""
    for threads in (1, 2):
        so = kiln.SessionOptions()
        so.intra_op_num_threads = threads
        so.optimized_model_filepath = str(tmp_path / f"opt{threads}.onnx")
        sess = kiln.InferenceSession(data, so)
        yield sess, {i.name: numpy_helper.to_array(i) for i in onnx.load(so.optimized_model_filepath).graph.initializer}


@pytest.mark.parametrize("k", [512, 520])
def test_linear_weight_with_padded_panels_packed_in_place(tmp_path, k):
    # A Linear's [N, K] weight of a megabyte and more with N no multiple of the panel width:
    # packed where it lies panel by panel (K a multiple of 16) or through a scratch (K = 520),
    # the last panel's padding riding in an attribute. Several row counts at 1 and 2 threads,
    # and the written model's weight as it went in.
    rng = np.random.default_rng(k)
    w = rng.standard_normal((1000, k)).astype(np.float32)
    b = rng.standard_normal(1000).astype(np.float32)
    g = helper.make_graph([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1000])],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    for sess, inits in optimized_sessions(data, tmp_path):
        for n in (1, 7, 200):
            x = rng.standard_normal((n, k)).astype(np.float32)
            np.testing.assert_allclose(sess.run(None, {"x": x})[0], x.astype(np.float64) @ w.T + b, rtol=1e-4,
                                       atol=1e-3, err_msg=f"n={n}")
        big = [a for a in inits.values() if a.size >= 1 << 18]
        assert len(big) == 1 and not any("kiln_packed" in name for name in inits), list(inits)
        np.testing.assert_array_equal(big[0].T if big[0].shape == (k, 1000) else big[0], w)


def test_megabyte_weights_packed_in_their_own_bytes(tmp_path):
    # Weights of a megabyte and more are packed where the parser left them, 16 bytes past a
    # cache line; their panels move up to the next line and the packed bytes that no longer fit
    # (with w2's, the last panel's padding columns too) ride along in an attribute. Products at
    # several row counts, at 1 and 2 threads and from concurrent runs, and the written model's
    # weights must come out as they went in.
    rng = np.random.default_rng(21)
    w1 = rng.standard_normal((768, 512)).astype(np.float32)  # Gemm transB: read as stored, [N, K]
    b1 = rng.standard_normal(768).astype(np.float32)
    w2 = rng.standard_normal((768, 1000)).astype(np.float32)  # N not a multiple of the panel
    b2 = rng.standard_normal(1000).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["p"]), helper.make_node("Add", ["p", "b2"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 512])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1000])],
        [numpy_helper.from_array(a, name) for a, name in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))])
    data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    for sess, inits in optimized_sessions(data, tmp_path):
        for n in (1, 7, 200):
            x = rng.standard_normal((n, 512)).astype(np.float32)
            want = np.maximum(x.astype(np.float64) @ w1.T + b1, 0) @ w2 + b2
            np.testing.assert_allclose(sess.run(None, {"x": x})[0], want, rtol=1e-4, atol=1e-3, err_msg=f"n={n}")
        assert not any("kiln_packed" in name for name in inits), list(inits)
        big = sorted((a for a in inits.values() if a.size >= 1 << 18), key=lambda a: a.shape)
        np.testing.assert_array_equal(big[0], w1.T)
        np.testing.assert_array_equal(big[1], w2)
    # Concurrent runs on the last session: each frame reads the last panels the frames share.
    def inputs(k):
        for n in (200, 1, 7 + k):
            yield np.random.default_rng(100 + k * 7 + n).standard_normal((n, 512)).astype(np.float32)

    assert_concurrent_runs_match(sess, lambda x: np.maximum(x.astype(np.float64) @ w1.T + b1, 0) @ w2 + b2,
                                 inputs, 3, feed="x", atol=1e-3)


@pytest.mark.parametrize("trans_b", [False, True])
def test_one_row_product_adds_a_residual_whose_buffer_it_takes(trans_b, tmp_path):
    # A 2048 -> 512 product (plain weight, K over 1024) of one row plus bias plus a residual that
    # dies there, feeding another op: the fused product writes into the residual's buffer, which
    # it must read first.
    rng = np.random.default_rng(7)
    w = rng.standard_normal((512, 2048) if trans_b else (2048, 512)).astype(np.float32)
    b = rng.standard_normal(512).astype(np.float32)
    mm = (helper.make_node("Gemm", ["x", "w", "b"], ["p"], transB=1) if trans_b else
          helper.make_node("MatMul", ["x", "w"], ["p"]))
    nodes = [mm, helper.make_node("Relu", ["r"], ["rr"]), helper.make_node("Add", ["p", "rr"], ["s"]),
             helper.make_node("Neg", ["s"], ["y"])]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    if not trans_b:
        nodes[0:1] = [mm, helper.make_node("Add", ["p0", "b"], ["p"])]
        nodes[0].output[0] = "p0"
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2048]),
                                       helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 512])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 512])], inits)
    data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    x = rng.standard_normal((1, 2048)).astype(np.float32)
    r = rng.standard_normal((1, 512)).astype(np.float32)
    want = -(x @ (w.T if trans_b else w) + b + np.maximum(r, 0))
    got, ops = run(data, {"x": x, "r": r}, kiln.GraphOptimizationLevel.ORT_ENABLE_ALL, tmp_path)
    assert ops["kiln::FusedMatMul"] == 1 and ops["Add"] == 0, ops
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("k,n", [(64, 48), (64, 64), (256, 256), (512, 1024), (256, 1536), (2048, 512)])
def test_gemm_trans_b_reads_its_weight_as_stored(k, n, tmp_path):
    # Gemm(transB=1) keeps W as [N, K] where it is to be packed: packed_gemm and a weight packed
    # at load read it through strides; one for the gemm primitive (K > 1024, N <= 1024, 4 MB) is
    # transposed once, as gemm reads it faster that way round. A MatMul reading the same W
    # untransposed keeps its plain copy, and a square W packed both ways round stays two packings.
    # The written model holds W as [K, N] for FusedMatMul.
    rng = np.random.default_rng(k + n)
    w = rng.standard_normal((n, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1),
             helper.make_node("MatMul", ["x2", "w"], ["y2"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k]),
                                       helper.make_tensor_value_info("x2", TensorProto.FLOAT, [2, n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n]),
                           helper.make_tensor_value_info("y2", TensorProto.FLOAT, [2, k])],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    shared = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    del g.node[1], g.input[1], g.output[1]
    alone = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    x2 = rng.standard_normal((2, n)).astype(np.float32)
    for data, feeds in [(alone, {}), (shared, {"x2": x2})]:
        so = kiln.SessionOptions()
        so.optimized_model_filepath = str(tmp_path / "opt.onnx")
        sess = kiln.InferenceSession(data, so)
        written = onnx.load(str(tmp_path / "opt.onnx"))
        assert not any(a.name == "kiln_weight_nk" for nd in written.graph.node for a in nd.attribute)
        again = kiln.InferenceSession(written.SerializeToString())
        for m in (1, 7, 130):
            x = rng.standard_normal((m, k)).astype(np.float32)
            want = x @ w.T + b
            for s in (sess, again):
                got = s.run(None, {"x": x, **feeds})
                np.testing.assert_allclose(got[0], want, rtol=1e-4, atol=1e-4 * np.sqrt(k / 64))
                if feeds:
                    np.testing.assert_allclose(got[1], x2 @ w, rtol=1e-4, atol=1e-4)


class FireChain(nn.Module):
    """SqueezeNet's fire modules: two expand convolutions concatenated, then a max pool or
    straight into the next 1x1 squeeze; the last Concat also feeds a 3x3 convolution."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(31)
        conv = nn.Conv2d
        self.s1, self.e1, self.e3 = conv(8, 4, 1), conv(4, 6, 1), conv(4, 10, 3, padding=1)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.s2, self.f1, self.f3 = conv(16, 5, 1, padding=1), conv(5, 7, 1), conv(5, 9, 3, padding=1)
        self.head, self.side = conv(16, 12, 1, stride=2), conv(16, 3, 3)

    def forward(self, x):
        r = torch.relu
        s = r(self.s1(x))
        c = self.pool(torch.cat([r(self.e1(s)), r(self.e3(s))], 1))
        t = r(self.s2(c))
        d = torch.cat([r(self.f1(t)), r(self.f3(t))], 1)
        e = torch.cat([self.f1(t), self.f3(t)], 1)  # read by a 3x3 convolution too: stays
        return r(self.head(d)).sum() + self.head(e).sum() + self.side(e).sum()


def test_concat_read_by_pointwise_conv_is_split(tmp_path):
    # Concat -> [MaxPool ->] 1x1 Conv becomes one convolution per part, summed through the
    # residual; a pool moves onto the parts; a Concat with another reader is built as before.
    x = np.random.default_rng(32).standard_normal((2, 8, 15, 13)).astype(np.float32)
    _, ops = optimized_ops(FireChain(), x, tmp_path, plain_too=True)
    assert ops["Concat"] == 1 and ops["MaxPool"] == 2, ops


class FireClassifier(nn.Module):
    """SqueezeNet's last fire module and its classifier, whose 512 -> 1000 weight is 2 MB."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(33)
        self.e1, self.e3 = nn.Conv2d(16, 256, 1), nn.Conv2d(16, 256, 3, padding=1)
        self.classifier = nn.Conv2d(512, 1000, 1)

    def forward(self, x):
        y = torch.cat([torch.relu(self.e1(x)), torch.relu(self.e3(x))], 1)
        return F.adaptive_avg_pool2d(torch.relu(self.classifier(y)), 1).flatten(1)


def test_concat_read_by_a_megabyte_pointwise_conv_is_built(tmp_path):
    # One 512-deep product beats two 256-deep passes over the output: the Concat stays.
    x = np.random.default_rng(34).standard_normal((1, 16, 13, 13)).astype(np.float32)
    data, ops = optimized_ops(FireClassifier(), x, tmp_path, dynamic={"in0": {0: "n"}}, plain_too=True)
    assert ops["Concat"] == 1, ops
    for n in (3, 8):  # 8 images: more pixels than packed_gemm takes, on the primitive
        xn = np.random.default_rng(n).standard_normal((n, 16, 13, 13)).astype(np.float32)
        with torch.no_grad():
            ref = FireClassifier()(torch.from_numpy(xn)).numpy()
        np.testing.assert_allclose(run(data, {"in0": xn}, kiln.GraphOptimizationLevel.ORT_ENABLE_ALL)[0], ref,
                                   rtol=1e-4, atol=1e-5)


class NarrowProjections(nn.Module):
    """Megabyte weights, neither made anything per row count: 2048x512 (K > 1024, N <= 1024)
    stays plain on the gemm-based primitive whose M is a run-time dim, 512x2048 runs on
    packed_gemm; bias, GELU and residual sum ride along on both."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(21)
        self.up, self.down = nn.Linear(512, 2048), nn.Linear(2048, 512)

    def forward(self, x):
        return x + self.down(nn.functional.gelu(self.up(x)))


def test_narrow_weights_serve_every_row_count(tmp_path):
    x = np.random.default_rng(22).standard_normal((2, 8, 512)).astype(np.float32)
    module = NarrowProjections()
    data, ops = optimized_ops(module, x, tmp_path, dynamic={"in0": {0: "b", 1: "s"}})
    assert ops["kiln::FusedMatMul"] == 2 and ops["Gelu"] + ops["Erf"] + ops["Add"] == 0, ops
    sess = kiln.InferenceSession(data)
    for b, s in ((1, 1), (3, 40), (1, 1), (2, 128)):  # one session, rows 1 to 256 and back
        xn = np.random.default_rng(b * s).standard_normal((b, s, 512)).astype(np.float32)
        with torch.no_grad():
            ref = module(torch.from_numpy(xn)).numpy()
        np.testing.assert_allclose(sess.run(None, {"in0": xn})[0], ref, rtol=1e-4, atol=1e-4)
    # The primitive and its scratch serve concurrent runs at different row counts.
    cases = []
    for k in range(4):
        xn = np.random.default_rng(30 + k).standard_normal((1 + k, 3 + 20 * k, 512)).astype(np.float32)
        with torch.no_grad():
            cases.append((xn, module(torch.from_numpy(xn)).numpy()))
    bad = []

    def worker(k):
        for _ in range(10):
            xn, ref = cases[k]
            if not np.allclose(sess.run(None, {"in0": xn})[0], ref, rtol=1e-4, atol=1e-4):
                bad.append(k)

    run_concurrently(worker, 4)
    assert bad == []


def split_projection_model(cut, axis=-1):
    """x [2, 5, 16] projected to 32 columns (MatMul + Add), then cut along `axis`: by a Split
    (columns 8 + 8 + 16, or rows 1 + 2 + 2 on axis 1), by three Slices, or (`reshape`) through a
    Reshape to [10, 32] and a Split of the columns."""
    cuts = [8, 16] if axis == -1 or cut == "reshape" else [1, 3]
    rng = np.random.default_rng(40)
    w = numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "b")
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", ["p", "b"], ["y"])]
    inits = [w, b, i64("sizes", [cuts[0], cuts[1] - cuts[0], (32 if cuts[0] == 8 else 5) - cuts[1]])]
    if cut == "slices":
        for k, (s0, s1) in enumerate([(0, cuts[0]), (cuts[0], cuts[1]), (cuts[1], 99)]):
            inits += [i64(f"s{k}", [s0]), i64(f"e{k}", [s1]), i64(f"a{k}", [axis])]
            nodes.append(helper.make_node("Slice", ["y", f"s{k}", f"e{k}", f"a{k}"], [f"o{k}"]))
    else:
        src = "y"
        if cut == "reshape":
            inits.append(i64("target", [10, 32]))
            nodes.append(helper.make_node("Reshape", ["y", "target"], ["r"]))
            src = "r"
        nodes.append(helper.make_node("Split", [src, "sizes"], ["o0", "o1", "o2"], axis=axis))
    f = TensorProto.FLOAT
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", f, [2, 5, 16])],
                          [helper.make_tensor_value_info(f"o{k}", f, None) for k in range(3)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    return model, numpy_helper.to_array(w), numpy_helper.to_array(b), cuts


@pytest.mark.parametrize("cut,axis", [("split", -1), ("slices", -1), ("reshape", 1), ("split", 1), ("slices", 1)])
def test_split_projection_becomes_one_matmul_per_part(cut, axis, tmp_path):
    model, w, b, cuts = split_projection_model(cut, axis)
    so = kiln.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    x = np.random.default_rng(41).standard_normal((2, 5, 16)).astype(np.float32)
    got = kiln.InferenceSession(model, so).run(None, {"x": x})
    ops = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node)
    y = x @ w + b
    if cut == "reshape":
        y = y.reshape(10, 32)
    cut_axis = -1 if axis == -1 or cut == "reshape" else axis
    for o, want in zip(got, np.split(y, cuts, axis=cut_axis)):
        np.testing.assert_allclose(o, want, rtol=1e-5, atol=1e-5)
    if axis == -1 or cut == "reshape":  # the last axis: one product per part, no copies
        assert ops["FusedMatMul"] == 3 and ops["Split"] + ops["Slice"] == 0, ops
    else:  # another axis: left alone
        assert ops["FusedMatMul"] == 1 and ops["Split"] + ops["Slice"] >= 1, ops


def test_split_projection_of_gemm_trans_b(tmp_path):
    # Gemm(transB=1)'s W stays [N, K]: each part takes a range of its rows.
    rng = np.random.default_rng(43)
    w, b = rng.standard_normal((32, 16)).astype(np.float32), rng.standard_normal(32).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1),
             helper.make_node("Split", ["y", "sizes"], ["o0", "o1", "o2"], axis=-1)]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(np.array([8, 8, 16], np.int64), "sizes")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [10, 16])],
                          [helper.make_tensor_value_info(f"o{k}", TensorProto.FLOAT, None) for k in range(3)], inits)
    so = kiln.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    x = rng.standard_normal((10, 16)).astype(np.float32)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    got = kiln.InferenceSession(model, so).run(None, {"x": x})
    for o, want in zip(got, np.split(x @ w.T + b, [8, 16], axis=-1)):
        np.testing.assert_allclose(o, want, rtol=1e-5, atol=1e-5)
    ops = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node)
    assert ops["FusedMatMul"] == 3 and ops["Split"] == 0, ops


def test_split_projection_names_clash_with_nothing():
    # A value already named as the rewrite would name a part's product ("y/part0") keeps its own.
    model, w, b, cuts = split_projection_model("reshape")
    m = onnx.load_from_string(model)
    m.graph.node.append(helper.make_node("Relu", ["x"], ["y/part0"]))
    m.graph.output.append(helper.make_tensor_value_info("y/part0", TensorProto.FLOAT, None))
    x = np.random.default_rng(42).standard_normal((2, 5, 16)).astype(np.float32)
    got = kiln.InferenceSession(m.SerializeToString()).run(None, {"x": x})
    for o, want in zip(got[:3], np.split((x @ w + b).reshape(10, 32), cuts, axis=-1)):
        np.testing.assert_allclose(o, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got[3], np.maximum(x, 0))


def test_matmul_switching_between_shapes_of_a_fed_b():
    # A fed B moves between 2-D products of several shapes and batched 3-D ones; each run must
    # use the primitive of its own shape.
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "g",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("b", TensorProto.FLOAT, None)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    sess = kiln.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    rng = np.random.default_rng(50)
    for a_shape, b_shape in [((4, 2048), (2048, 512)), ((4, 512), (512, 2048)), ((4, 2048), (2048, 512)),
                             ((2, 4, 512), (2, 512, 1024)), ((7, 2048), (2048, 512))]:
        a = rng.standard_normal(a_shape).astype(np.float32)
        b = rng.standard_normal(b_shape).astype(np.float32)
        np.testing.assert_allclose(sess.run(None, {"a": a, "b": b})[0], a @ b, rtol=1e-4, atol=1e-3)


def fused_matmul_model(k, n, activation, residual, rng):
    """One kiln::FusedMatMul with a constant [k, n] weight and bias; x (and z) fed."""
    attrs = {"activation": activation} if activation else {}
    inputs = ["x", "w", "b"] + (["z"] if residual else [])
    node = helper.make_node("FusedMatMul", inputs, ["y"], domain="kiln", **attrs)
    feeds = [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)]
    if residual:
        feeds.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    w = rng.standard_normal((k, n)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    g = helper.make_graph([node], "g", feeds, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("kiln", 1)])
    return model.SerializeToString(), w, b


ACTS = {"": lambda y: y, "Relu": torch.relu, "Gelu": F.gelu, "GeluTanh": lambda y: F.gelu(y, approximate="tanh")}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("residual", ["", "same", "broadcast"])
@pytest.mark.parametrize("activation", list(ACTS))
@pytest.mark.parametrize("k,n", [(1, 10), (7, 40), (64, 100), (33, 64), (130, 200), (16, 1100), (300, 1000)])
def test_fused_matmul_every_row_count(k, n, activation, residual, threads):
    # Small products run on Kiln's packed_gemm over oneDNN's packed layout, whose panels are
    # 16 to 64 columns wide and whose row blocks are 6, 8 or 12: row counts 1-13 and 61 reach
    # every partial block; N 10-1100 every panel width and a partial last panel. With 3000
    # rows the smaller weights pass 2^25 flops and run on oneDNN's brgemm; the session then
    # switches back. A weight of a megabyte (300x1000) stays on packed_gemm at every row count,
    # which fetches each thread's next panel while it computes.
    rng = np.random.default_rng(k * n)
    data, w, b = fused_matmul_model(k, n, activation, residual, rng)
    so = kiln.SessionOptions()
    so.intra_op_num_threads = threads
    sess = kiln.InferenceSession(data, so)
    for m in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 61, 3000, 5]:
        x = rng.standard_normal((m, k)).astype(np.float32)
        feeds = {"x": x}
        want = ACTS[activation](torch.from_numpy(x @ w + b)).numpy()
        if residual:
            z = rng.standard_normal((m, n) if residual == "same" else (n,)).astype(np.float32)
            feeds["z"] = z
            want = want + z
        np.testing.assert_allclose(sess.run(None, feeds)[0], want, rtol=1e-5, atol=1e-5 * np.sqrt(k),
                                   err_msg=f"m={m}")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("residual", ["", "fed", "computed"])
@pytest.mark.parametrize("activation", ["", "Relu", "Gelu"])
def test_deep_products_run_in_blocks_of_depth(activation, residual, threads):
    # K = 3000: from 88 rows A outgrows a megabyte and the product runs in blocks of depth 768
    # (the last one partial), the sums waiting between them in C, or beside it when C is Z's
    # buffer (a computed Z dies at the node, which then writes into it). Small sums and a large
    # Z: sums that started from Z would round at its magnitude, 10x the tolerance here.
    k, n = 3000, 200
    rng = np.random.default_rng(len(activation) + len(residual))
    w = (0.01 * rng.standard_normal((k, n))).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    attrs = {"activation": activation} if activation else {}
    nodes = [helper.make_node("FusedMatMul", ["x", "w", "b"] + (["z"] if residual else []), ["y"], domain="kiln",
                              **attrs)]
    feeds = [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)]
    if residual == "computed":
        nodes.insert(0, helper.make_node("Neg", ["zin"], ["z"]))
    if residual:
        feeds.append(helper.make_tensor_value_info("zin" if residual == "computed" else "z", TensorProto.FLOAT, None))
    g = helper.make_graph(nodes, "g", feeds, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("kiln", 1)])
    so = kiln.SessionOptions()
    so.intra_op_num_threads = threads
    sess = kiln.InferenceSession(model.SerializeToString(), so)
    for m in [200, 1, 88, 129, 200]:  # the arena plan's run comes last
        x = rng.standard_normal((m, k)).astype(np.float32)
        want = ACTS[activation](torch.from_numpy(x.astype(np.float64) @ w + b)).numpy()
        run_feeds = {"x": x}
        if residual:
            z = (10 * rng.standard_normal((m, n))).astype(np.float32)
            run_feeds["zin" if residual == "computed" else "z"] = z
            want = want + (-z if residual == "computed" else z)
        np.testing.assert_allclose(sess.run(None, run_feeds)[0], want, rtol=0, atol=8e-6, err_msg=f"m={m}")


class SelfAttention(nn.Module):
    """Attention as exporters write it: heads split by Reshape + Transpose, K transposed for
    the scores, heads merged by Transpose + Reshape."""

    def __init__(self, d=32, heads=4, scale_query=False):
        super().__init__()
        torch.manual_seed(15)
        self.d, self.h, self.qkv, self.out = d, heads, nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.scale_query = scale_query  # as PyTorch's own attention does: q / sqrt(d) before q k^T

    def forward(self, x):
        b, s, d = x.shape[0], x.shape[1], self.d
        q, k, v = self.qkv(x).split(d, dim=-1)
        split = lambda t: t.reshape(b, s, self.h, d // self.h).transpose(1, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        if self.scale_query:
            p = torch.softmax((q / (d // self.h) ** 0.5) @ k.transpose(-1, -2), dim=-1)
        else:
            p = torch.softmax(q @ k.transpose(-1, -2) / (d // self.h) ** 0.5, dim=-1)
        return self.out((p @ v).transpose(1, 2).reshape(b, s, d))


@pytest.mark.parametrize("scale_query", [False, True])
def test_attention_block_is_one_node(scale_query, tmp_path):
    x = np.random.default_rng(16).standard_normal((2, 9, 32)).astype(np.float32)
    _, ops = optimized_ops(SelfAttention(scale_query=scale_query), x, tmp_path, dynamic={"in0": {0: "b", 1: "s"}})
    # the head splits and merges read as views, the 1/sqrt(d) of the query or of the scores
    # a scale of the scores, softmax between the products
    assert ops["kiln::Attention"] == 1 and ops["kiln_alpha"] == 1, ops
    assert ops["Transpose"] == ops["Div"] == ops["Mul"] == ops["Softmax"] == ops["kiln::MatMul"] == 0, ops


def attention_model(b, s, h, d, mask, dtype=np.float32, fill=-np.inf, cond_shape=None):
    """Q, K, V [B, S, H, D] -> softmax(Q K^T / sqrt(D) [+ mask | where(cond, ., fill)]) V, as
    exporters write attention (heads moved by Transposes), result [B, S, H, D]. In double the
    scale is left out (a double product's scale does not fold into it, so nothing would fuse)."""
    t = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    nodes = [helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1, 3]),
             helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 3, 1]),
             helper.make_node("MatMul", ["qt", "kt"], ["raw"])]
    inputs = [helper.make_tensor_value_info(n, t, [b, s, h, d]) for n in "qkv"]
    inits = []
    scores = "raw"
    if dtype == np.float32:
        nodes.append(helper.make_node("Div", ["raw", "root"], ["scaled"]))
        inits.append(numpy_helper.from_array(np.asarray(np.sqrt(d), dtype), "root"))
        scores = "scaled"
    if mask == "add":  # a padding mask per key, the same for every head and query
        nodes.append(helper.make_node("Add", [scores, "mask"], ["masked"]))
        inputs.append(helper.make_tensor_value_info("mask", t, [b, 1, 1, s]))
        scores = "masked"
    elif mask == "where":  # a causal mask
        nodes.append(helper.make_node("Where", ["cond", scores, "fill"], ["masked"]))
        inputs.append(helper.make_tensor_value_info("cond", TensorProto.BOOL, cond_shape or [1, 1, s, s]))
        inits.append(numpy_helper.from_array(np.asarray(fill, dtype), "fill"))
        scores = "masked"
    nodes += [helper.make_node("Softmax", [scores], ["p"], axis=-1),
              helper.make_node("Transpose", ["v"], ["vt"], perm=[0, 2, 1, 3]),
              helper.make_node("MatMul", ["p", "vt"], ["o"]),
              helper.make_node("Transpose", ["o"], ["y"], perm=[0, 2, 1, 3])]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", t, [b, s, h, d])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def attention_reference(q, k, v, mask=None, cond=None, fill=-np.inf):
    scale = np.sqrt(q.shape[-1]) if q.dtype == np.float32 else 1.0
    q, k, v = (np.asarray(a, np.float64).transpose(0, 2, 1, 3) for a in (q, k, v))
    s = q @ k.transpose(0, 1, 3, 2) / scale
    if mask is not None:
        s = s + mask
    if cond is not None:
        s = np.where(cond, s, fill)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True) @ v).transpose(0, 2, 1, 3)


@pytest.mark.parametrize("mask", [None, "add", "where"])
@pytest.mark.parametrize("b,s,h,d", [(1, 128, 4, 64), (2, 197, 3, 64), (1, 50, 2, 40), (3, 7, 2, 80)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_attention_against_numpy(mask, b, s, h, d, dtype, tmp_path):
    """Sequence lengths that cut the last block of 48 query rows and panel of 48 keys short,
    head sizes under, at and past one panel of 64, padded keys at -3.4e38 (whose weights must
    come out 0, not subnormal), a causal mask whose first row keeps one key."""
    rng = np.random.default_rng(s * 7 + d)
    q, k, v = (rng.standard_normal((b, s, h, d)).astype(dtype) for _ in range(3))
    feeds = {"q": q, "k": k, "v": v}
    want = {}
    if mask == "add":
        pad = np.zeros((b, 1, 1, s), dtype)
        pad[..., s - s // 3:] = np.finfo(np.float32).min
        feeds["mask"], want["mask"] = pad, pad
    elif mask == "where":
        feeds["cond"] = want["cond"] = np.tril(np.ones((s, s), bool))[None, None]
    so = kiln.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = kiln.InferenceSession(attention_model(b, s, h, d, mask, dtype), so)
    ops = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node)
    fused = not (mask == "where" and dtype == np.float64)  # the fill is read as a float
    assert ops["Attention"] == int(fused) and ops["Softmax"] == int(not fused), ops
    (y,) = sess.run(None, feeds)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, attention_reference(q, k, v, **want), rtol=1e-5, atol=1e-5)
    # concurrent runs share the session's kernel, each on its own scratch
    outs = [None] * 4
    run_concurrently(lambda i: outs.__setitem__(i, sess.run(None, feeds)[0]), 4)
    for o in outs:
        np.testing.assert_array_equal(o, y)


@pytest.mark.parametrize("case", ["empty rows", "fill near the scores", "scattered keys",
                                  "padded keys per batch"])
def test_attention_reads_only_the_keys_a_condition_keeps(case):
    """A block of query rows reads the keys up to the last one any of its rows keeps, and all of
    them where the rest would not weigh exactly 0: rows that keep no key (a uniform softmax over
    every key), a fill the scores come within e^87 of; a condition per batch, the same for every
    query (padding), whose limit changes with the batch."""
    b, s, h, d = (3 if case == "padded keys per batch" else 1), 130, 2, 32
    rng = np.random.default_rng(21)
    q, k, v = (rng.standard_normal((b, s, h, d)).astype(np.float32) for _ in range(3))
    cond = np.tril(np.ones((s, s), bool))[None, None]
    fill = np.finfo(np.float32).min
    if case == "empty rows":
        cond[..., [3, 47, 60, 129], :] = False
    elif case == "fill near the scores":
        fill = -1.0
    elif case == "scattered keys":
        cond = rng.random((1, 1, s, s)) < 0.05
        cond[..., s // 3:] = False
        cond[..., 100:, s - 1] = True  # the last block keeps the last key
    else:
        cond = np.zeros((b, 1, 1, s), bool)
        for i, kept in enumerate([130, 17, 64]):
            cond[i, ..., :kept] = True
    sess = kiln.InferenceSession(attention_model(b, s, h, d, "where", fill=fill, cond_shape=list(cond.shape)))
    (y,) = sess.run(None, {"q": q, "k": k, "v": v, "cond": cond})
    np.testing.assert_allclose(y, attention_reference(q, k, v, cond=cond, fill=fill), rtol=1e-5, atol=1e-5)


def test_attention_mask_that_does_not_broadcast_is_refused():
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((1, 6, 2, 8)).astype(np.float32) for _ in range(3))
    model = onnx.load_from_string(attention_model(1, 6, 2, 8, "add"))
    for dim in model.graph.input[3].type.tensor_type.shape.dim:  # the mask's shape left open
        dim.dim_param = "m"
    sess = kiln.InferenceSession(model.SerializeToString())
    message = r"kiln::Attention\): mask \[1,1,1,5\] does not broadcast to the scores \[1,2,6,6\]"
    with pytest.raises(Exception, match=message):
        sess.run(None, {"q": q, "k": k, "v": v, "mask": np.zeros((1, 1, 1, 5), np.float32)})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scalar_scales_fold_into_products_of_computed_operands(dtype, tmp_path):
    """0.5 * a, then (a' @ b) / 3 and * 1.5 (b stays as computed, its scale read by two nodes
    too); a product with a constant weight keeps its Mul."""
    t = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    const = lambda name, v: numpy_helper.from_array(np.asarray(v, dtype), name)  # noqa: E731
    nodes = [helper.make_node("Mul", ["half", "a"], ["a2"]),
             helper.make_node("Relu", ["b"], ["b1"]),
             helper.make_node("MatMul", ["a2", "b1"], ["p"]),
             helper.make_node("Div", ["p", "three"], ["p2"]),
             helper.make_node("Mul", ["p2", "onehalf"], ["y"]),
             helper.make_node("Mul", ["b1", "half"], ["b2"]),  # b1 is read twice: its scale stays apart
             helper.make_node("MatMul", ["b2", "w"], ["q"]),
             helper.make_node("Mul", ["q", "three"], ["z"])]  # a constant weight: no fold
    rng = np.random.default_rng(23)
    wv = rng.standard_normal((5, 4)).astype(dtype)
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", t, [2, 3, 4]),
                                           helper.make_tensor_value_info("b", t, [2, 4, 5])],
                              [helper.make_tensor_value_info("y", t, [2, 3, 5]),
                               helper.make_tensor_value_info("z", t, [2, 4, 4])],
                              [const("half", 0.5), const("three", 3.0), const("onehalf", 1.5), const("w", wv)])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    a, b = rng.standard_normal((2, 3, 4)).astype(dtype), rng.standard_normal((2, 4, 5)).astype(dtype)
    so = kiln.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    y, z = kiln.InferenceSession(data, so).run(None, {"a": a, "b": b})
    b1 = np.maximum(b, 0)
    np.testing.assert_allclose(y, (0.5 * a) @ b1 / 3 * 1.5, rtol=1e-5)
    np.testing.assert_allclose(z, (b1 * 0.5) @ wv * 3, rtol=1e-5)
    ops = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node)
    if dtype == np.float32:
        assert ops["Div"] == 0 and ops["Mul"] == 2, ops  # b1's scale and the constant weight's
    else:  # a float alpha would round a double product's scale: left as written
        assert ops["Div"] == 1 and ops["Mul"] == 4, ops
    # A one-element constant of higher rank broadcasts the product up: it stays a Mul.
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["p"]),
                               helper.make_node("Mul", ["p", "c"], ["y"])],
                              "g", [helper.make_tensor_value_info("a", t, [3, 4]),
                                    helper.make_tensor_value_info("b", t, [4, 5])],
                              [helper.make_tensor_value_info("y", t, [1, 1, 3, 5])], [const("c", [[[[2.0]]]])])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    (y,) = kiln.InferenceSession(data, so).run(None, {"a": a[0, :3], "b": b[0]})
    np.testing.assert_allclose(y, (a[0, :3] @ b[0] * 2)[None, None], rtol=1e-5)
    assert collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node)["Mul"] == 1


@pytest.mark.parametrize("opset", [10, 13])
def test_identity_and_inference_dropout_are_bypassed(opset, tmp_path):
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Identity", ["x"], ["a"]),
             helper.make_node("Dropout", ["a"] + (["ratio", "train"] if opset >= 12 else []), ["b"]),
             helper.make_node("Relu", ["b"], ["c"]),
             helper.make_node("Identity", ["c"], ["y"])]  # a graph output: kept
    inits = [numpy_helper.from_array(np.array(0.5, np.float32), "ratio"),
             numpy_helper.from_array(np.array(False), "train")] if opset >= 12 else []
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], inits)
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()
    x = np.random.default_rng(17).standard_normal((2, 3)).astype(np.float32)
    out, ops = run(data, {"x": x}, kiln.GraphOptimizationLevel.ORT_ENABLE_BASIC, tmp_path)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    assert ops["Dropout"] == 0 and ops["Identity"] == 1 and ops["Relu"] == 1, ops


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil", [(3, 2, 0, 1, True), (3, 2, 1, 1, False),
                                                                 (2, 1, 1, 2, False), (3, 3, 1, 1, True)])
def test_channels_last_max_pool_between_convolutions(kernel, stride, padding, dilation, ceil, tmp_path):
    torch.manual_seed(18)
    block = nn.Sequential(nn.Conv2d(3, 20, 3), nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil),
                          nn.Conv2d(20, 8, 1))
    x = np.random.default_rng(19).standard_normal((2, 3, 17, 14)).astype(np.float32)
    _, ops = optimized_ops(block, x, tmp_path)
    assert ops["kiln_nhwc"] == 1 and ops["MaxPool"] == 1, ops


@pytest.mark.parametrize("out,kernel,stride,padding,dilation,ceil,act", [
    (64, 3, 2, 0, 1, True, nn.ReLU()),  # SqueezeNet's stem and pool
    (64, 3, 2, 1, 1, False, nn.ReLU()),  # ResNet's pool (after a 7x7 stem below)
    (32, 2, 2, 0, 1, False, nn.Hardswish()),
    (16, 3, 1, 1, 1, True, None),
    (32, 2, 1, 1, 2, False, nn.ReLU())])  # dilated: stays a MaxPool
def test_stem_and_max_pool_as_one_node(out, kernel, stride, padding, dilation, ceil, act, tmp_path):
    torch.manual_seed(20)
    stem = nn.Conv2d(3, out, 7 if padding == 1 and out == 64 else 3, stride=2, padding=3 if out == 64 and padding else 1)
    layers = [stem] + ([act] if act else []) + [nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil),
                                               nn.Conv2d(out, 8, 1)]
    x = np.random.default_rng(21).standard_normal((2, 3, 37, 29)).astype(np.float32)
    data, ops = optimized_ops(nn.Sequential(*layers), x, tmp_path, dynamic={"in0": {0: "n", 2: "h", 3: "w"}})
    fused = dilation == 1 and HAS_AVX512  # the pool rides on Kiln's own stem kernel
    assert ops["MaxPool"] == (0 if fused else 1) and ops["kiln_pool_kernel"] == (1 if fused else 0), ops
    so = kiln.SessionOptions()
    so.intra_op_num_threads = 2
    sess = kiln.InferenceSession(data, so)
    rng = np.random.default_rng(22)
    assert_concurrent_runs_match(sess, nn.Sequential(*layers).eval(),
                                 lambda k: [rng.standard_normal((1 + k % 3, 3, 37 - k, 29)).astype(np.float32)
                                            for _ in range(3)], 3)


class Conv1DGelu(nn.Module):
    """GPT-2's MLP layer as Hugging Face writes it: addmm on the flattened rows (a Gemm), a
    view back to [batch, seq, features], then GELU."""

    def __init__(self, d=16, h=40):
        super().__init__()
        torch.manual_seed(20)
        self.w, self.b = nn.Parameter(torch.randn(d, h) / 4), nn.Parameter(torch.randn(h) / 4)

    def forward(self, x):
        y = torch.addmm(self.b, x.reshape(-1, x.shape[-1]), self.w).view(x.shape[0], x.shape[1], -1)
        return F.gelu(y)


def test_activation_fuses_through_reshape(tmp_path):
    x = np.random.default_rng(21).standard_normal((2, 5, 16)).astype(np.float32)
    _, ops = optimized_ops(Conv1DGelu(), x, tmp_path)
    assert ops["Gemm"] == 0 and ops["Gelu"] == 0 and ops["Erf"] == 0 and ops["Tanh"] == 0, ops
    assert ops["kiln::FusedMatMul"] == 1 and ops["Reshape"] == 2, ops  # rows flattened, then viewed back


class ProjectionPlusBroadcast(nn.Module):
    """A projection plus a runtime tensor that broadcasts up to more rows than the product has:
    the fused residual must still give the Add's output shape."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(22)
        self.proj = nn.Linear(12, 8)

    def forward(self, x, z):
        return self.proj(x) + z


@pytest.mark.parametrize("z_shape", [(3, 8), (8,), (2, 3, 8)])
def test_matmul_residual_same_shape_and_broadcast(z_shape, tmp_path):
    rng = np.random.default_rng(23)
    x = rng.standard_normal((3, 12)).astype(np.float32)
    z = rng.standard_normal(z_shape).astype(np.float32)
    module = ProjectionPlusBroadcast()
    data = export(module, torch.from_numpy(x), torch.from_numpy(z))
    with torch.no_grad():
        ref = module(torch.from_numpy(x), torch.from_numpy(z)).numpy()
    out, ops = run(data, {"in0": x, "in1": z}, kiln.GraphOptimizationLevel.ORT_ENABLE_ALL, tmp_path)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    assert ops["Add"] == 0 and ops["kiln::FusedMatMul"] == 1, ops


def test_empty_weight_keeps_bias_and_residual():
    """K = 0: the product is zeros, so Y is the bias plus the residual; not fused away."""
    from onnx import TensorProto, helper

    w = numpy_helper.from_array(np.zeros((0, 3), np.float32), "w")
    b = numpy_helper.from_array(np.array([1, 2, 3], np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", ["p", "b"], ["q"]),
             helper.make_node("Add", ["q", "z"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 0]),
                                           helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [w, b])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    z = np.arange(6, dtype=np.float32).reshape(2, 3)
    out, _ = run(data, {"x": np.zeros((2, 0), np.float32), "z": z}, kiln.GraphOptimizationLevel.ORT_ENABLE_ALL)
    np.testing.assert_array_equal(out, z + [1, 2, 3])


class SmallMlp(nn.Module):
    """Small products feeding one another: Linear + ReLU, Linear + GELU, a Gemm with transB
    (addmm of a transposed weight), a last Linear; `tap` also returns the second layer's output."""

    def __init__(self, tap=False, outputs=10):
        super().__init__()
        torch.manual_seed(21)
        self.tap = tap
        self.a, self.b, self.d = nn.Linear(40, 96), nn.Linear(96, 80), nn.Linear(64, outputs)
        self.c = nn.Parameter(torch.randn(64, 80) / 9)

    def forward(self, x):
        h = F.gelu(self.b(torch.relu(self.a(x))))
        y = self.d(torch.addmm(torch.full((64,), 0.1), h, self.c.t()))
        return (y, h) if self.tap else y


@pytest.mark.parametrize("outputs", [10, 3])  # a last layer on panels, and as dot products
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_small_products_run_as_one_chain(threads, outputs, tmp_path):
    module = SmallMlp(outputs=outputs)
    x = np.random.default_rng(22).standard_normal((5, 40)).astype(np.float32)
    data, ops = optimized_ops(module, x, tmp_path, dynamic={"in0": {0: "n"}})
    assert ops["kiln::MatMulChain"] == 1 and ops["kiln::FusedMatMul"] == 0 and ops["Gemm"] == 0, ops
    so = kiln.SessionOptions()
    so.intra_op_num_threads = threads
    sess = kiln.InferenceSession(data, so)
    reloaded = kiln.InferenceSession(str(tmp_path / f"opt{int(kiln.GraphOptimizationLevel.ORT_ENABLE_ALL)}.onnx"), so)
    # Rows split over the threads (from 4 a thread), one block and several, and too few to split.
    for n in (1, 3, 7, 8, 12, 13, 48, 97, 1000):
        xn = np.random.default_rng(n).standard_normal((n, 40)).astype(np.float32)
        with torch.no_grad():
            ref = module(torch.from_numpy(xn)).numpy()
        np.testing.assert_allclose(sess.run(None, {"in0": xn})[0], ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(reloaded.run(None, {"in0": xn})[0], ref, rtol=1e-4, atol=1e-5)
    assert sess.run(None, {"in0": np.zeros((0, 40), np.float32)})[0].shape == (0, outputs)


def test_chain_stops_where_a_product_is_read_elsewhere(tmp_path):
    module = SmallMlp(tap=True)
    x = np.random.default_rng(23).standard_normal((6, 40)).astype(np.float32)
    data = export(module, torch.from_numpy(x))
    so = kiln.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    got = kiln.InferenceSession(data, so).run(None, {"in0": x})
    with torch.no_grad():
        want = module(torch.from_numpy(x))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-5)
    m = onnx.load(str(tmp_path / "opt.onnx"))
    chains = [n for n in m.graph.node if n.op_type == "MatMulChain"]
    # h is a graph output: the first two layers make one chain, the last two another.
    assert len(chains) == 2 and all(len(n.input) == 5 for n in chains), [n.op_type for n in m.graph.node]


def test_chain_serves_concurrent_runs():
    data = export(SmallMlp(), torch.zeros((4, 40)), dynamic={"in0": {0: "n"}})
    so = kiln.SessionOptions()
    so.intra_op_num_threads = 2
    sess = kiln.InferenceSession(data, so)

    def inputs(k):
        for n in (16 + k, 3, 64 + 5 * k):
            yield np.random.default_rng(100 * k + n).standard_normal((n, 40)).astype(np.float32)

    assert_concurrent_runs_match(sess, SmallMlp(), inputs, 4)


def test_chain_of_a_model_rejects_mismatched_layers():
    """A MatMulChain whose layers do not fit together is refused at load, naming the layers."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    inits = [numpy_helper.from_array(np.ones(s, np.float32), name) for name, s in
             (("w1", (4, 5)), ("b1", (5,)), ("w2", (6, 3)), ("b2", (3,)))]
    node = helper.make_node("MatMulChain", ["x", "w1", "b1", "w2", "b2"], ["y"], domain="kiln",
                            activations=["Relu", ""])
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("kiln", 1)])
    with pytest.raises(Exception, match="layer 1 takes K=6 but layer 0 gives N=5"):
        kiln.InferenceSession(model.SerializeToString())


class OnePixel(nn.Module):
    """1x1 convolutions over one pixel, as squeeze-excite blocks have them: ReLU, a residual
    (an input, and an intermediate whose buffer the output takes) with HardSigmoid or ReLU after
    it, Clip, none."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(31)
        self.a, self.b = nn.Conv2d(24, 40, 1), nn.Conv2d(40, 24, 1)
        self.c, self.d = nn.Conv2d(24, 36, 1, bias=False), nn.Conv2d(36, 20, 1)
        self.e, self.f, self.g = nn.Conv2d(20, 20, 1), nn.Conv2d(36, 20, 1), nn.Conv2d(20, 10, 1)

    def forward(self, x):
        y = self.b(torch.relu(self.a(x))) + x
        y = torch.clamp(self.c(F.hardsigmoid(y)), -0.3, 0.4)
        return self.g(torch.relu(self.e(self.d(y)) + self.f(y)))


def test_one_pixel_convolutions(tmp_path):
    module = OnePixel()
    x = np.random.default_rng(32).standard_normal((1, 24, 1, 1)).astype(np.float32)
    data, ops = optimized_ops(module, x, tmp_path, dynamic={"in0": {0: "n"}}, plain_too=True)
    assert ops["kiln::FusedConv"] + ops["Conv"] == 7 and ops["Add"] == ops["Relu"] == ops["Clip"] == 0, ops
    for n in (1, 3):  # one image runs as vector products, more on the primitive
        xn = np.random.default_rng(n).standard_normal((n, 24, 1, 1)).astype(np.float32)
        with torch.no_grad():
            ref = module(torch.from_numpy(xn)).numpy()
        np.testing.assert_allclose(run(data, {"in0": xn}, kiln.GraphOptimizationLevel.ORT_ENABLE_ALL)[0], ref,
                                   rtol=1e-4, atol=1e-5)


class SqueezeExciteProjection(nn.Module):
    """A depthwise SiLU layer, squeeze-excite on it (scaling every channel, or all by one value),
    and the 1x1 projection that reads the scaled tensor; `reread` also feeds the unscaled tensor
    to a second projection ("conv", so it is still alive when the first one runs) or to a sum
    over channels ("sum", which keeps it NCHW)."""

    def __init__(self, c, se_out, reread):
        super().__init__()
        torch.manual_seed(c + se_out)
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.se1, self.se2 = nn.Conv2d(c, 8, 1), nn.Conv2d(8, se_out, 1)
        self.project = nn.Conv2d(c, 24, 1)
        self.reread = reread
        self.other = nn.Conv2d(c, 24, 1)

    def forward(self, x):
        y = F.silu(self.dw(x))
        s = torch.sigmoid(self.se2(torch.relu(self.se1(F.adaptive_avg_pool2d(y, 1)))))
        out = self.project(s * y)
        if self.reread == "conv":
            return out + self.other(y)
        if self.reread == "sum":  # a channel sum reads y: it stays NCHW
            return out + y.sum(1, keepdim=True)
        return out


@pytest.mark.parametrize("c,side,batch,se_out,reread", [
    (32, 28, 1, 32, None),  # few channels: the pointwise kernel
    (96, 28, 1, 96, None),  # oneDNN's primitive
    (96, 28, 1, 1, None),  # one scale for every channel
    (96, 4, 1, 96, None),
    (96, 28, 3, 96, None),  # an S per image
    (96, 4, 2, 96, "conv"),  # X still read afterwards: scaled in scratch, not in its own buffer
    (32, 28, 1, 32, "sum"),  # NCHW
    (96, 6, 2, 96, "sum"),
])
def test_squeeze_excite_scale_folds_into_projection(c, side, batch, se_out, reread, tmp_path):
    module = SqueezeExciteProjection(c, se_out, reread)
    x = np.random.default_rng(c + side + batch).standard_normal((batch, c, side, side)).astype(np.float32)
    data, ops = optimized_ops(module, x, tmp_path, dynamic={"in0": {0: "n"}})
    assert ops["Mul"] == 0 and ops["Sigmoid"] == 0 and ops["GlobalAveragePool"] == 0, ops
    m = onnx.load(str(tmp_path / f"opt{int(kiln.GraphOptimizationLevel.ORT_ENABLE_ALL)}.onnx"))
    # the depthwise layer also outputs the squeeze (its mean per channel)
    assert [len(n.output) for n in m.graph.node if n.op_type == "FusedConv" and n.input[0] == "in0"] == [2]
    scaled = [n for n in m.graph.node if n.op_type == "FusedConv" and len(n.input) == 5]
    assert len(scaled) == 1 and (scaled[0].input[3] != "") == (reread is not None), [list(n.input) for n in scaled]
    # the optimized model reloads as it was written, and runs (one thread and two) as it did
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    for threads in (1, 2):
        so = kiln.SessionOptions()
        so.intra_op_num_threads = threads
        sess = kiln.InferenceSession(m.SerializeToString(), so)
        for _ in range(3):  # the recording run, then the arena plan's
            np.testing.assert_allclose(sess.run(None, {"in0": x})[0], ref, rtol=1e-4, atol=1e-5)

    def inputs(k):
        rng = np.random.default_rng(50 + k)
        for n in [1, 2, 1, 3, 1][k:] + [2]:
            yield rng.standard_normal((n, c, side, side)).astype(np.float32)

    assert_concurrent_runs_match(kiln.InferenceSession(data), module, inputs, 3)


def test_channel_scale_of_a_wrong_shape_is_refused():
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((4, 8, 1, 1)).astype(np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("FusedConv", ["x", "w", "", "", "s"], ["y"], domain="kiln", name="project")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 5, 5]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, "c", 1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("kiln", 1)])
    sess = kiln.InferenceSession(m.SerializeToString())
    x = rng.standard_normal((1, 8, 5, 5)).astype(np.float32)
    with pytest.raises(Exception, match=r"project.*S \(the scale of X's channels\) must be float \[1, 8 or 1, 1, 1\], got float \[1,5,1,1\]"):
        sess.run(None, {"x": x, "s": rng.standard_normal((1, 5, 1, 1)).astype(np.float32)})
    # the right shape runs: W's input channels scaled, against numpy
    s = rng.standard_normal((1, 8, 1, 1)).astype(np.float32)
    want = np.einsum("kc,nchw->nkhw", numpy_helper.to_array(w)[:, :, 0, 0], x * s)
    np.testing.assert_allclose(sess.run(None, {"x": x, "s": s})[0], want, rtol=1e-4, atol=1e-5)


class HeavyWindows(nn.Module):
    """A bottleneck whose middle convolution has a weight of over a megabyte and few output
    pixels (ResNet-50's stage 4): it runs as one product over X's windows, gathered."""

    def __init__(self, kernel, stride, padding, dilation):
        super().__init__()
        torch.manual_seed(kernel[0] * 10 + stride)
        self.reduce = nn.Conv2d(48, 128, 1)
        self.mid = nn.Conv2d(128, 256, kernel, stride=stride, padding=padding, dilation=dilation)
        self.short = nn.Conv2d(48, 256, 1, stride=stride)
        self.out = nn.Conv2d(256, 16, 1)

    def forward(self, x):
        y = torch.relu(self.mid(torch.relu(self.reduce(x))) + self.short(x))
        return self.out(y)


@pytest.mark.parametrize("kernel,stride,padding,dilation,side", [
    ((3, 3), 1, 1, 1, 7),  # ResNet-50's stage 4
    ((3, 3), 2, 1, 1, 14),  # its first layer, strided
    ((3, 3), 1, 2, 2, 7),  # dilated
    ((5, 3), 1, (2, 1), 1, 6),  # a tall window
    ((3, 3), 1, 1, 1, 1),  # one pixel: all padding but the centre
])
def test_heavy_weight_convolution_over_gathered_windows(kernel, stride, padding, dilation, side, tmp_path):
    module = HeavyWindows(kernel, stride, padding, dilation)
    x = np.random.default_rng(side).standard_normal((1, 48, side, side + 1)).astype(np.float32)
    data, ops = optimized_ops(module, x, tmp_path, dynamic={"in0": {0: "n"}}, plain_too=True)
    mid = [n for n in onnx.load(str(tmp_path / "opt99.onnx")).graph.node if n.name.startswith("/mid/")]
    assert {a.name for a in mid[0].attribute} >= {"kiln_x_nhwc", "kiln_y_nhwc"}, mid  # X and Y channels-last
    so = kiln.SessionOptions()
    so.intra_op_num_threads = 2
    sess = kiln.InferenceSession(data, so)
    rng = np.random.default_rng(40)
    # 1-2 images are few enough pixels for the gathered windows, 5 run on the primitive
    assert_concurrent_runs_match(sess, module.eval(), lambda k: [
        rng.standard_normal((n, 48, side, side + 1)).astype(np.float32) for n in (1 + k % 2, 5, 2)], 3, atol=1e-4)


class HeavyPointwise(nn.Module):
    """A 1x1 convolution with a megabyte weight and a residual: packed_gemm streams its weight
    for up to 512 output pixels, the primitive takes more."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(41)
        self.reduce, self.expand = nn.Conv2d(32, 256, 1), nn.Conv2d(256, 1024, 1)
        self.short, self.out = nn.Conv2d(32, 1024, 1, stride=2), nn.Conv2d(1024, 8, 1)
        self.pool = nn.MaxPool2d(1, 2)

    def forward(self, x):
        h = self.pool(torch.relu(self.reduce(x)))  # a stride-2 1x1 convolution's pixels, gathered
        return self.out(torch.relu(self.expand(h) + self.short(x)))


def pixel_counts_match(module, channels, shapes, tmp_path, seed):
    """Exports `module` for images of any count and size, checks it at shapes[0] ((n, h, w)),
    then runs one session on every shape from three threads at once against PyTorch; returns
    the optimized graph's op/attribute counts."""
    n, h, w = shapes[0]
    x = np.random.default_rng(seed).standard_normal((n, channels, h, w)).astype(np.float32)
    data, ops = optimized_ops(module, x, tmp_path, dynamic={"in0": {0: "n", 2: "h", 3: "w"}}, plain_too=True)
    so = kiln.SessionOptions()
    so.intra_op_num_threads = 2
    sess = kiln.InferenceSession(data, so)
    rng = np.random.default_rng(seed + 1)
    assert_concurrent_runs_match(sess, module.eval(), lambda k: [
        rng.standard_normal((n, channels, h, w)).astype(np.float32) for n, h, w in shapes[k:] + shapes[:k]], 3,
        atol=1e-4)
    return ops


def test_megabyte_pointwise_convolution_at_every_pixel_count(tmp_path):
    # 49, 512 (the most packed_gemm takes), 600 and 1568 output pixels
    ops = pixel_counts_match(HeavyPointwise(), 32, [(1, 14, 14), (2, 32, 32), (1, 40, 60), (8, 28, 28)], tmp_path, 42)
    assert ops["kiln_y_nhwc"] >= 3, ops


class ColdPointwise(nn.Module):
    """1x1 convolutions of a few hundred kilobytes at 7x7 (HardSwish, none with a residual, SiLU):
    on packed_gemm, their weights fetched ahead, up to 64 output pixels."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(44)
        self.stem, self.expand, self.project = nn.Conv2d(96, 96, 3, padding=1), nn.Conv2d(96, 768, 1), nn.Conv2d(768, 96, 1)
        self.widen, self.out = nn.Conv2d(96, 384, 1), nn.Conv2d(384, 8, 1)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        h = x + self.project(nn.functional.hardswish(self.expand(x)))
        return self.out(nn.functional.silu(self.widen(h)))


def test_cold_pointwise_convolutions_at_few_pixels(tmp_path):
    # 49 and 64 output pixels (packed_gemm), 98 (the primitive), one (the vector product)
    ops = pixel_counts_match(ColdPointwise(), 96, [(1, 7, 7), (1, 8, 8), (2, 7, 7), (1, 1, 1)], tmp_path, 45)
    assert ops["kiln_y_nhwc"] >= 4 and ops["kiln_x_nhwc"] >= 4, ops
