"""ai.onnx.preview.training::Gradient: the expanded derivative graph against torch.autograd."""

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

import kiln
from kiln.capi import onnxruntime_pybind11_state as state

F = TensorProto.FLOAT
TRAIN = "ai.onnx.preview.training"
RNG = np.random.default_rng(9)


def grad_model(nodes, inputs, y, xs, outputs, zs=None):
    attrs = {"xs": xs, "y": y}
    if zs:
        attrs["zs"] = zs
    grads = [f"d{y}_d{x}" for x in xs]
    nodes = nodes + [helper.make_node("Gradient", xs, grads, domain=TRAIN, **attrs)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, F, None) for n in inputs],
                          [helper.make_tensor_value_info(n, F, None) for n in outputs + grads])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(TRAIN, 1)])
    return kiln.InferenceSession(m.SerializeToString())


def torch_grads(fn, values, xs):
    ts = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in xs) for k, v in values.items()}
    fn(ts).sum().backward()
    return [ts[x].grad.numpy() for x in xs]


def test_gradient_of_broadcasting_chain_matches_autograd():
    nodes = [helper.make_node("Mul", ["a", "b"], ["m"]),          # [3, 4] * [4]
             helper.make_node("Add", ["m", "c"], ["s"]),          # + [3, 1]
             helper.make_node("Tanh", ["s"], ["t"]),
             helper.make_node("Div", ["t", "b"], ["q"]),
             helper.make_node("Sigmoid", ["q"], ["sg"]),
             helper.make_node("Sub", ["sg", "a"], ["d"]),
             helper.make_node("Exp", ["d"], ["e"]),
             helper.make_node("Relu", ["e"], ["r"]),
             helper.make_node("Sqrt", ["r"], ["sq"]),
             helper.make_node("Log", ["sq"], ["lg"]),
             helper.make_node("Neg", ["lg"], ["y"])]
    values = {"a": RNG.standard_normal((3, 4)), "b": RNG.uniform(0.5, 2, 4), "c": RNG.standard_normal((3, 1))}
    sess = grad_model(nodes, ["a", "b", "c"], "y", ["a", "b", "c"], ["y"])
    y, da, db, dc = sess.run(None, {k: v.astype(np.float32) for k, v in values.items()})

    def fn(t):
        s = torch.tanh(t["a"] * t["b"] + t["c"])
        d = torch.sigmoid(s / t["b"]) - t["a"]
        return -torch.log(torch.sqrt(torch.relu(torch.exp(d))))

    ra, rb, rc = torch_grads(fn, values, ["a", "b", "c"])
    assert da.shape == (3, 4) and db.shape == (4,) and dc.shape == (3, 1)
    for got, ref in ((da, ra), (db, rb), (dc, rc)):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_gradient_reused_value_zs_and_unrelated_x():
    nodes = [helper.make_node("Mul", ["a", "a"], ["aa"]),
             helper.make_node("Mul", ["aa", "w"], ["y0"]),
             helper.make_node("Add", ["y0", "a"], ["y"])]
    a, w, u = np.float32(1.5), np.array([2.0, -1.0], np.float32), np.zeros((2, 2), np.float32)
    sess = grad_model(nodes, ["a", "w", "u"], "y", ["a", "w", "u"], [])
    da, dw, du = sess.run(None, {"a": np.array(a), "w": w, "u": u})
    np.testing.assert_allclose(da, (2 * a * w + 1).sum(), rtol=1e-6)  # a is a scalar: the sum over y
    np.testing.assert_allclose(dw, [a * a] * 2, rtol=1e-6)
    np.testing.assert_array_equal(du, np.zeros((2, 2)))  # y does not depend on u
    # with aa held constant, only the direct path remains
    sess = grad_model(nodes, ["a", "w"], "y", ["a"], [], zs=["aa"])
    (da,) = sess.run(None, {"a": np.array(a), "w": w})
    np.testing.assert_allclose(da, 2.0)


def test_onnx_example_gradient_of_add_and_mul():
    nodes = [helper.make_node("Add", ["a", "b"], ["c"]), helper.make_node("Mul", ["c", "a"], ["d"])]
    sess = grad_model(nodes, ["a", "b"], "d", ["a", "b"], ["d"])
    d, da, db = sess.run(None, {"a": np.array(1.0, np.float32), "b": np.array(2.0, np.float32)})
    assert (d, da, db) == (3.0, 4.0, 1.0)  # d = (a + b) a: dd/da = 2a + b, dd/db = a


def test_gradient_errors():
    nodes = [helper.make_node("Sin", ["a"], ["y"])]
    with pytest.raises(state.NotImplemented, match="no derivative for Sin"):
        grad_model(nodes, ["a"], "y", ["a"], [])
    g = helper.make_graph([helper.make_node("Gradient", ["a"], ["g1", "g2"], domain=TRAIN, xs=["a"], y="a")], "g",
                          [helper.make_tensor_value_info("a", F, None)], [helper.make_tensor_value_info("g1", F, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(TRAIN, 1)])
    with pytest.raises(Exception, match="1 xs but 2 outputs"):
        kiln.InferenceSession(m.SerializeToString())
