"""Python operators: PyOp nodes (ONNX Runtime's contract) and ops defined with kiln.op."""

import gc
import io
import math
import os
import re
import sys
import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import kiln
from kiln.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, InvalidGraph
from kiln.capi.onnxruntime_pybind11_state import NotImplemented as KilnNotImplemented
from concurrency import run_concurrently

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyop_models")
F = TensorProto.FLOAT


@pytest.fixture
def kit(monkeypatch):
    monkeypatch.syspath_prepend(MODELS)
    import pyop_kit
    pyop_kit.built.clear()
    pyop_kit.released.clear()
    return pyop_kit


def vi(name, elem=F, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def make_model(nodes, inputs, outputs, domains=(), initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=opsets)


def session(nodes, inputs, outputs, domains=(), initializers=(), options=None):
    model = make_model(nodes, inputs, outputs, domains, initializers)
    return kiln.InferenceSession(model.SerializeToString(), options)


def pyop(inputs, outputs, in_types, out_types, name="py", domain="pyops", **attrs):
    return helper.make_node("PyOp", inputs, outputs, name=name, domain=domain, input_types=in_types,
                            output_types=out_types, **attrs)


def node_re(name, op_type):
    """The node's label in error messages, as a regex: node 'name' (domain::OpType)."""
    return rf"{name}'? \((?:[\w.]+::)?{op_type}\)"


def only(python_op):
    options = kiln.SessionOptions()
    options.register_python_op(python_op)
    return options


# --- PyOp nodes ---------------------------------------------------------------------------------

def test_onnxruntime_pyop_example_runs_unchanged(tmp_path, monkeypatch):
    ad1 = helper.make_node("Add", ["A", "B"], ["S"])
    mul = helper.make_node("Mul", ["C", "D"], ["P"])
    py1 = helper.make_node(op_type="PyOp", inputs=["S", "P"], outputs=["L", "M", "N"], domain="pyopmulti_1",
                           input_types=[TensorProto.FLOAT] * 2, output_types=[TensorProto.FLOAT] * 3,
                           module="mymodule", class_name="Multi_1", compute="compute", W1="5", W2="7", W3="9")
    ad2 = helper.make_node("Add", ["L", "M"], ["H"])
    py2 = helper.make_node("PyOp", ["H", "N", "E"], ["O", "W"], domain="pyopmulti_2",
                           input_types=[TensorProto.FLOAT] * 3, output_types=[TensorProto.FLOAT] * 2,
                           module="mymodule", class_name="Multi_2")
    sub = helper.make_node("Sub", ["O", "W"], ["F"])
    graph = helper.make_graph([ad1, mul, py1, ad2, py2, sub], "multi_pyop_graph",
                              [vi(n, F, [3]) for n in "ABCDE"], [vi("F", F, [3])])
    model = helper.make_model(graph, producer_name="pyop_model")
    path = str(tmp_path / "model.onnx")
    onnx.save(model, path)
    # mymodule is found in the current directory, which Kiln appends to sys.path as ONNX Runtime does.
    monkeypatch.chdir(MODELS)
    monkeypatch.delitem(sys.modules, "mymodule", raising=False)
    sess = kiln.InferenceSession(path)
    rng = np.random.default_rng(0)
    a, b, c, d, e = (rng.standard_normal(3).astype(np.float32) for _ in range(5))
    (f,) = sess.run(None, {"A": a, "B": b, "C": c, "D": d, "E": e})
    s, p = a + b, c * d
    l, m, n = s + p + 5, s + p + 7, s + p + 9
    h = l + m
    np.testing.assert_allclose(f, (h + n) - (n + e), rtol=1e-6)
    assert f.dtype == np.float32


CASES = {
    "float32": np.array([[1.5, -2.25, 0.0], [3e38, -1e-38, np.inf]], np.float32),
    "float64": np.array([[1e300, -2.5, np.pi], [0.0, -0.0, 1e-300]], np.float64),
    "float16": np.array([[1.5, -2.0, 65504.0], [0.5, -0.25, 1e-4]], np.float16),
    "int8": np.array([[-128, 127, 0], [1, -1, 5]], np.int8),
    "int16": np.array([[-32768, 32767, 0], [1, -1, 5]], np.int16),
    "int32": np.array([[-2**31, 2**31 - 1, 0], [1, -1, 5]], np.int32),
    "int64": np.array([[-2**63, 2**63 - 1, 0], [1, -1, 5]], np.int64),
    "uint8": np.array([[0, 255, 1], [2, 3, 4]], np.uint8),
    "uint16": np.array([[0, 65535, 1], [2, 3, 4]], np.uint16),
    "uint32": np.array([[0, 2**32 - 1, 1], [2, 3, 4]], np.uint32),
    "uint64": np.array([[0, 2**64 - 1, 1], [2, 3, 4]], np.uint64),
    "bool_": np.array([[True, False, True], [False, False, True]]),
    "string": np.array([["a", "bé", ""], ["longer string", "x", "ünïcode"]], dtype=object),
    "bfloat16": np.array([[0x3f80, 0xc000, 0x7f80], [0, 0x8000, 0x3e80]], np.uint16),  # numpy carries the bits
}


@pytest.mark.parametrize("type_name", sorted(CASES))
@pytest.mark.parametrize("empty", [False, True])
def test_pyop_every_element_type_in_and_out(kit, type_name, empty):
    x = CASES[type_name][:0] if empty else CASES[type_name]
    t = int(getattr(kiln, type_name))
    sess = session([pyop(["x"], ["same", "reversed"], [t], [t, t], module="pyop_kit", class_name="Echo")],
                   [vi("x", t, None)], [vi("same", t), vi("reversed", t)], ["pyops"])
    same, rev = sess.run(None, {"x": x})
    assert same.dtype == x.dtype and rev.dtype == x.dtype
    assert same.shape == x.shape and rev.shape == x.shape
    np.testing.assert_array_equal(same, x)
    np.testing.assert_array_equal(rev, x[::-1])


@pytest.mark.parametrize("type_name", sorted(CASES))
def test_defined_op_every_element_type(type_name):
    t = getattr(kiln, type_name)

    @kiln.op(f"test.types::Twice_{type_name}", inputs=[t], outputs=[t, kiln.int64], register=False)
    def twice(x):
        return np.concatenate([x, x]), np.array(x.shape, np.int64)

    x = CASES[type_name]
    sess = session([helper.make_node(twice.op_type, ["x"], ["y", "s"], domain="test.types")],
                   [vi("x", int(t))], [vi("y"), vi("s")], ["test.types"], options=only(twice))
    y, s = sess.run(None, {"x": x})
    np.testing.assert_array_equal(y, np.concatenate([x, x]))
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(s, x.shape)


def test_pyop_string_attributes_reach_the_constructor_and_compute_is_selectable(kit):
    sess = session([pyop(["x"], ["y"], [F], [F], module="pyop_kit", class_name="Scale", compute="twice", factor="1.5"),
                    helper.make_node("Relu", ["y"], ["z"])], [vi("x", F, [4])], [vi("z")], ["pyops"])
    x = np.array([-1, 0, 1, 2], np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], np.maximum(x * 3, 0))
    assert ("Scale", {"factor": "1.5"}) in kit.built


def test_pyop_objects_are_released_with_the_session(kit):
    sess = session([pyop(["x"], ["y"], [F], [F], module="pyop_kit", class_name="Scale")], [vi("x")], [vi("y")],
                   ["pyops"])
    sess.run(None, {"x": np.ones(2, np.float32)})
    assert kit.released == []
    del sess
    gc.collect()
    assert kit.released == ["Scale"]


def test_pyop_node_errors(kit):
    def build(**attrs):
        node = helper.make_node("PyOp", ["x"], ["y"], name="bad", domain="pyops", **attrs)
        return session([node], [vi("x")], [vi("y")], ["pyops"])

    types = dict(input_types=[F], output_types=[F])
    with pytest.raises(InvalidGraph, match=node_re("bad", "PyOp") + ".*'module'"):
        build(class_name="Scale", **types)
    with pytest.raises(InvalidGraph, match=r"'class_name'"):
        build(module="pyop_kit", **types)
    with pytest.raises(InvalidGraph, match=r"'output_types'"):
        build(module="pyop_kit", class_name="Scale", input_types=[F])
    with pytest.raises(InvalidGraph, match=r"declares 2 input_types, the node has 1 inputs"):
        build(module="pyop_kit", class_name="Scale", input_types=[F, F], output_types=[F])
    with pytest.raises(InvalidGraph, match=r"element type 14 is not one Kiln supports"):
        build(module="pyop_kit", class_name="Scale", input_types=[14], output_types=[F])
    with pytest.raises(InvalidGraph, match=r"(?s)no_such_module.*ModuleNotFoundError"):
        build(module="no_such_module", class_name="X", **types)
    with pytest.raises(InvalidGraph, match=r"(?s)pyop_kit.Nope.*AttributeError"):
        build(module="pyop_kit", class_name="Nope", **types)
    with pytest.raises(InvalidGraph, match=r"(?s)Traceback.*in __init__.*ValueError: Broken cannot be built"):
        build(module="pyop_kit", class_name="Broken", **types)


def test_pyop_input_type_is_checked():
    sess = session([pyop(["x"], ["y"], [F], [F], name="typed", module="pyop_kit", class_name="Echo")],
                   [vi("x", TensorProto.DOUBLE)], [vi("y")], ["pyops"])
    with pytest.raises(InvalidArgument, match=node_re("typed", "PyOp") + r": input 0 \('x'\): expected tensor\(float\), "
                                              r"got tensor\(double\)"):
        sess.run(None, {"x": np.ones(2)})


def test_python_exception_carries_node_and_traceback_and_session_survives(kit):
    sess = session([pyop(["x"], ["y"], [F], [F], name="may_fail", module="pyop_kit", class_name="Fails"),
                    helper.make_node("Neg", ["y"], ["z"])], [vi("x")], [vi("z")], ["pyops"])
    with pytest.raises(Fail) as err:
        sess.run(None, {"x": np.array([1, -1], np.float32)})
    text = str(err.value)
    assert re.search(node_re("may_fail", "PyOp") + ": pyop_kit.Fails.compute raised", text)
    assert "Traceback (most recent call last)" in text
    assert "in helper_that_divides" in text and "ZeroDivisionError: integer division or modulo by zero" in text
    np.testing.assert_array_equal(sess.run(None, {"x": np.array([1, 2], np.float32)})[0], [-1, -2])


# --- ops defined with kiln.op --------------------------------------------------------------------

def test_decorator_example_gelu_with_typed_attributes():
    @kiln.op("my.domain::Gelu2", inputs=[kiln.float32], outputs=[kiln.float32],
             attrs={"approx": kiln.string, "alpha": kiln.float32})
    def gelu2(x, approx="none", alpha=1.0):
        if approx == "tanh":
            inner = np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)
            return (alpha * 0.5 * x * (1 + np.tanh(inner))).astype(np.float32)
        erf = np.vectorize(math.erf)
        return (alpha * 0.5 * x * (1 + erf(x / np.sqrt(2)))).astype(np.float32)

    try:
        x = np.linspace(-4, 4, 17, dtype=np.float32)
        np.testing.assert_allclose(gelu2(x), 0.5 * x * (1 + np.vectorize(math.erf)(x / np.sqrt(2))), rtol=1e-6)
        nodes = [helper.make_node("Gelu2", ["x"], ["exact"], domain="my.domain"),
                 helper.make_node("Gelu2", ["x"], ["tanh"], domain="my.domain", approx="tanh", alpha=2.0)]
        sess = session(nodes, [vi("x")], [vi("exact"), vi("tanh")], ["my.domain"])
        exact, tanh = sess.run(None, {"x": x})
        torch = pytest.importorskip("torch")
        xt = torch.from_numpy(x)
        np.testing.assert_allclose(exact, torch.nn.functional.gelu(xt).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(tanh, 2 * torch.nn.functional.gelu(xt, approximate="tanh").numpy(),
                                   rtol=1e-5, atol=1e-6)
    finally:
        kiln.ops.unregister(gelu2)


def test_attribute_kinds_become_python_values():
    seen = []

    @kiln.op("test.attrs::Probe", inputs=[kiln.float32], outputs=[kiln.float32], register=False,
             attrs={"i": kiln.int64, "f": kiln.float32, "s": kiln.string, "b": kiln.bool_, "ints": [kiln.int64],
                    "floats": [float], "strings": [str], "whole": float})
    def probe(x, **kwargs):
        seen.append(kwargs)
        return x

    node = helper.make_node("Probe", ["x"], ["y"], domain="test.attrs", i=-3, f=0.5, s="text", b=1, ints=[1, 2],
                            floats=[0.25, 4.0], strings=["a", "b"], whole=7)
    sess = session([node], [vi("x")], [vi("y")], ["test.attrs"], options=only(probe))
    sess.run(None, {"x": np.zeros(1, np.float32)})
    assert seen == [{"i": -3, "f": 0.5, "s": "text", "b": True, "ints": [1, 2], "floats": [0.25, 4.0],
                     "strings": ["a", "b"], "whole": 7.0}]
    assert type(seen[0]["i"]) is int and type(seen[0]["whole"]) is float and type(seen[0]["b"]) is bool

    # Absent attributes leave the function's defaults alone.
    seen.clear()
    sess = session([helper.make_node("Probe", ["x"], ["y"], domain="test.attrs", s="only")], [vi("x")], [vi("y")],
                   ["test.attrs"], options=only(probe))
    sess.run(None, {"x": np.zeros(1, np.float32)})
    assert seen == [{"s": "only"}]

    with pytest.raises(InvalidGraph, match=r"attribute 'beta' is not declared by test.attrs::Probe \(declared: "):
        session([helper.make_node("Probe", ["x"], ["y"], domain="test.attrs", beta=1)], [vi("x")], [vi("y")],
                ["test.attrs"], options=only(probe))
    with pytest.raises(InvalidGraph, match=r"attribute 'i' of test.attrs::Probe: expected int, the node has string"):
        session([helper.make_node("Probe", ["x"], ["y"], domain="test.attrs", i="3")], [vi("x")], [vi("y")],
                ["test.attrs"], options=only(probe))


def test_decorator_arguments_are_checked():
    with pytest.raises(ValueError, match="domain::OpType"):
        kiln.op("NoDomain", inputs=[kiln.float32], outputs=[kiln.float32])
    with pytest.raises(TypeError, match="element type"):
        kiln.op("a::B", inputs=["nonsense"], outputs=[kiln.float32])(lambda x: x)
    with pytest.raises(InvalidArgument, match="declares no outputs"):
        kiln.op("a::B", inputs=[kiln.float32], outputs=[], register=False)(lambda x: x)
    with pytest.raises(TypeError, match="one element type"):
        kiln.op("a::B", inputs=[], outputs=[kiln.float32], attrs={"x": [int, int]}, register=False)(lambda: 0)
    with pytest.raises(TypeError, match="takes an op made by kiln.op"):
        kiln.SessionOptions().register_python_op(lambda x: x)
    assert kiln.float32 == TensorProto.FLOAT and kiln.string == TensorProto.STRING and kiln.bool_ == TensorProto.BOOL
    assert repr(kiln.uint16) == "kiln.uint16"


def test_registry_is_seen_by_sessions_created_afterwards():
    node = helper.make_node("Scale", ["x"], ["y"], domain="test.registry")
    x = np.array([1, 2], np.float32)

    def create():
        return session([node], [vi("x")], [vi("y")], ["test.registry"])

    with pytest.raises(KilnNotImplemented, match=r"test.registry::Scale \(opset 1\)"):
        create()
    kiln.op("test.registry::Scale", inputs=[kiln.float32], outputs=[kiln.float32])(lambda x: x * 2)
    try:
        doubling = create()
        np.testing.assert_array_equal(doubling.run(None, {"x": x})[0], x * 2)
        kiln.op("test.registry::Scale", inputs=[kiln.float32], outputs=[kiln.float32])(lambda x: x * 3)
        np.testing.assert_array_equal(create().run(None, {"x": x})[0], x * 3)
        # A session keeps the definitions it was created with, also in frames made later.
        results = []
        run_concurrently(lambda _: results.append(doubling.run(None, {"x": x})[0]), 4)
        for r in results:
            np.testing.assert_array_equal(r, x * 2)
    finally:
        assert kiln.ops.unregister("test.registry::Scale")
    assert not kiln.ops.unregister("test.registry::Scale")
    with pytest.raises(KilnNotImplemented):
        create()
    np.testing.assert_array_equal(doubling.run(None, {"x": x})[0], x * 2)


def test_session_only_op_overrides_the_registry():
    @kiln.op("test.local::Plus", inputs=[kiln.int32, kiln.int32], outputs=[kiln.int32], register=False)
    def plus(a, b):
        return a + b

    @kiln.op("test.local::Plus", inputs=[kiln.int32, kiln.int32], outputs=[kiln.int32])
    def minus(a, b):
        return a - b

    try:
        nodes = [helper.make_node("Plus", ["a", "b"], ["c"], domain="test.local")]
        ins = [vi("a", TensorProto.INT32), vi("b", TensorProto.INT32)]
        a, b = np.array([5, 6], np.int32), np.array([1, 2], np.int32)
        np.testing.assert_array_equal(session(nodes, ins, [vi("c")], ["test.local"], options=only(plus))
                                      .run(None, {"a": a, "b": b})[0], a + b)
        np.testing.assert_array_equal(session(nodes, ins, [vi("c")], ["test.local"]).run(None, {"a": a, "b": b})[0],
                                      a - b)
    finally:
        kiln.ops.unregister(minus)


def test_inputs_are_read_only_views_of_kiln_buffers():
    seen = {}

    @kiln.op("test.views::Probe", inputs=[kiln.float32, kiln.float32], outputs=[kiln.float32], register=False)
    def probe(x, y):
        seen["ptr"] = x.__array_interface__["data"][0]
        seen["writeable"] = (x.flags.writeable, y.flags.writeable)
        seen["owns"] = (x.flags.owndata, y.flags.owndata)
        try:
            x[0] = 42
        except ValueError as e:
            seen["write"] = str(e)
        seen["kept"] = (x, y)
        return x + y

    sess = session([helper.make_node("Relu", ["z"], ["r"]),
                    helper.make_node("Probe", ["x", "r"], ["y"], domain="test.views")],
                   [vi("x", F, [1000]), vi("z", F, [1000])], [vi("y")], ["test.views"], options=only(probe))
    x = np.arange(1000, dtype=np.float32)
    z = np.linspace(-1, 1, 1000, dtype=np.float32)
    (y,) = sess.run(None, {"x": x, "z": z})
    np.testing.assert_array_equal(y, x + np.maximum(z, 0))
    assert seen["ptr"] == x.ctypes.data
    assert seen["writeable"] == (False, False) and seen["owns"] == (False, False)
    assert "read-only" in seen["write"]
    # The arrays' bases keep Kiln's buffers (and the fed array) alive after the run and the session.
    expected_x, expected_r = x.copy(), np.maximum(z, 0)
    del sess, x, z, y
    gc.collect()
    kept_x, kept_r = seen["kept"]
    assert kept_x.base is not None and kept_r.base is not None
    np.testing.assert_array_equal(kept_x, expected_x)
    np.testing.assert_array_equal(kept_r, expected_r)


def test_inputs_kept_past_their_run_keep_their_values():
    """An op may keep its input arrays: later runs, recorded or replayed, never write over them."""
    kept = []

    @kiln.op("test.keep::Keep", inputs=[kiln.float32], outputs=[kiln.float32], register=False)
    def keep(x):
        kept.append(x)
        return x * 2

    sess = session([helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Keep", ["a"], ["b"], domain="test.keep"),
                    helper.make_node("Neg", ["b"], ["y"])],
                   [vi("x", F, ["n", 4])], [vi("y")], ["test.keep"], options=only(keep))
    xs = [np.full((n, 4), i + 1.0, np.float32) for i, n in enumerate([2, 2, 2, 3, 3, 2, 2])]
    for x in xs:
        (y,) = sess.run(None, {"x": x})
        np.testing.assert_array_equal(y, -2 * np.maximum(x, 0))
    assert len(kept) == len(xs)
    for k, x in zip(kept, xs):
        np.testing.assert_array_equal(k, np.maximum(x, 0))


def test_outputs_are_checked_and_made_contiguous():
    def run(fn, outputs=(kiln.float32,), x=np.arange(6, dtype=np.float32).reshape(2, 3)):
        python_op = kiln.op("test.out::Op", inputs=[kiln.float32], outputs=list(outputs), register=False)(fn)
        names = [f"y{i}" for i in range(len(outputs))]
        sess = session([helper.make_node("Op", ["x"], names, name="checked", domain="test.out")], [vi("x")],
                       [vi(n) for n in names], ["test.out"], options=only(python_op))
        return sess.run(None, {"x": x})

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (t,) = run(lambda x: x.T)
    np.testing.assert_array_equal(t, x.T)
    assert t.flags.c_contiguous
    (s,) = run(lambda x: x[:, ::2])
    np.testing.assert_array_equal(s, x[:, ::2])
    (b,) = run(lambda x: x.astype(">f4"))
    np.testing.assert_array_equal(b, x)
    (one,) = run(lambda x: (x.sum(),))  # a numpy scalar of the right type is a 0-d output
    assert one.shape == () and one == 15
    with pytest.raises(Fail, match=node_re("checked", "Op") + r": test.out::Op \(Python function .*\) returned 1 output\(s\), "
                                   r"expected 2"):
        run(lambda x: x, outputs=(kiln.float32, kiln.float32))
    with pytest.raises(Fail, match=node_re("checked", "Op") + r": output 0 \('y0'\): expected tensor\(float\), got a numpy "
                                   r"float64 array"):
        run(lambda x: x.astype(np.float64))
    with pytest.raises(Fail, match=r"output 1 \('y1'\): expected tensor\(int64\), got a numpy float32 array"):
        run(lambda x: (x, x), outputs=(kiln.float32, kiln.int64))
    with pytest.raises(Fail, match=r"output 0 \('y0'\): expected tensor\(float\), got a numpy object NoneType"):
        run(lambda x: None)
    with pytest.raises(Fail, match=r"expected str or bytes items in a string tensor, got int"):
        run(lambda x: np.array([1, "a"], dtype=object), outputs=(kiln.string,))


def test_shape_function_declares_outputs_in_prepare():
    calls = []

    def shape(x_shape, repeat=1):
        calls.append(x_shape)
        return [(x_shape[0] * repeat,) + x_shape[1:], ()]

    @kiln.op("test.shape::Repeat", inputs=[kiln.float32], outputs=[kiln.float32, kiln.int64],
             attrs={"repeat": kiln.int64}, shape=shape, register=False)
    def repeat(x, repeat=1):
        return np.concatenate([x] * repeat), np.int64(repeat)

    sess = session([helper.make_node("Repeat", ["x"], ["y", "n"], name="rep", domain="test.shape", repeat=3)],
                   [vi("x")], [vi("y"), vi("n")], ["test.shape"], options=only(repeat))
    for rows in (2, 2, 5):
        x = np.ones((rows, 3), np.float32)
        y, n = sess.run(None, {"x": x})
        np.testing.assert_array_equal(y, np.ones((rows * 3, 3)))
        assert n == 3
    assert calls == [(2, 3), (5, 3)]  # once per input shape: prepare, not every run

    @kiln.op("test.shape::Liar", inputs=[kiln.float32], outputs=[kiln.float32], shape=lambda s: s[:1],
             register=False)
    def liar(x):
        return x

    sess = session([helper.make_node("Liar", ["x"], ["y"], name="liar", domain="test.shape")], [vi("x")], [vi("y")],
                   ["test.shape"], options=only(liar))
    with pytest.raises(Fail, match=node_re("liar", "Liar") + r": output 0 \('y'\): the shape function gave \[2\], compute "
                                   r"returned \[2,3\]"):
        sess.run(None, {"x": np.ones((2, 3), np.float32)})

    @kiln.op("test.shape::Bad", inputs=[kiln.float32], outputs=[kiln.float32], shape=lambda s: s[5],
             register=False)
    def bad(x):
        return x

    sess = session([helper.make_node("Bad", ["x"], ["y"], domain="test.shape")], [vi("x")], [vi("y")],
                   ["test.shape"], options=only(bad))
    with pytest.raises(Fail, match=r"(?s)the shape function of test.shape::Bad.*raised:.*IndexError"):
        sess.run(None, {"x": np.ones(2, np.float32)})


def test_concurrent_runs_from_eight_threads(kit):
    @kiln.op("test.threads::Mix", inputs=[kiln.float32, kiln.float32], outputs=[kiln.float32], register=False)
    def mix(a, b):
        return np.tanh(a) * b

    nodes = [helper.make_node("Add", ["x", "one"], ["x1"]),
             pyop(["x1"], ["x2"], [F], [F], module="pyop_kit", class_name="Scale", factor="2"),
             helper.make_node("Mix", ["x2", "x"], ["m"], domain="test.threads"),
             helper.make_node("Sigmoid", ["m"], ["y"])]
    one = numpy_helper.from_array(np.ones(1, np.float32), "one")
    sess = session(nodes, [vi("x", F, [64])], [vi("y")], ["pyops", "test.threads"], [one], options=only(mix))
    errors, barrier = [], threading.Barrier(8)

    def worker(k):
        try:
            barrier.wait()
            for i in range(30):
                x = np.full(64, (k * 30 + i) / 300.0, np.float32) - 0.3
                (y,) = sess.run(None, {"x": x})
                expect = 1 / (1 + np.exp(-(np.tanh((x + 1) * 2) * x)))
                np.testing.assert_allclose(y, expect, rtol=1e-5, atol=1e-6)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    run_concurrently(worker, 8)
    assert errors == []


def test_python_calls_of_concurrent_runs_overlap():
    # Each call waits until eight calls are inside Python at once: Kiln must not serialize them.
    inside = threading.Barrier(8, timeout=30)

    @kiln.op("test.overlap::Meet", inputs=[kiln.int64], outputs=[kiln.int64], register=False)
    def meet(x):
        inside.wait()
        return x + 1

    sess = session([helper.make_node("Meet", ["x"], ["y"], domain="test.overlap")], [vi("x", TensorProto.INT64)],
                   [vi("y")], ["test.overlap"], options=only(meet))
    results, errors = {}, []

    def worker(k):
        try:
            results[k] = sess.run(None, {"x": np.array([k], np.int64)})[0]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    run_concurrently(worker, 8)
    assert errors == [] and {k: int(v[0]) for k, v in results.items()} == {k: k + 1 for k in range(8)}


def test_python_ops_in_loop_and_if_bodies(kit):
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["fi"], to=F),
         pyop(["acc_in", "fi"], ["acc_out"], [F, F], [F], name="in_loop", module="pyop_kit", class_name="AddIter"),
         helper.make_node("Identity", ["cond"], ["cond_out"])],
        "body", [vi("i", TensorProto.INT64, []), vi("cond", TensorProto.BOOL, []), vi("acc_in", F, [2])],
        [vi("cond_out", TensorProto.BOOL, []), vi("acc_out", F, [2])])

    @kiln.op("test.branch::Negate", inputs=[kiln.float32], outputs=[kiln.float32], register=False)
    def negate(x):
        return -x

    then_g = helper.make_graph([helper.make_node("Negate", ["acc"], ["out"], domain="test.branch")], "then", [],
                               [vi("out", F, [2])])
    else_g = helper.make_graph([helper.make_node("Identity", ["acc"], ["out"])], "else", [], [vi("out", F, [2])])
    nodes = [helper.make_node("Loop", ["n", "", "acc0"], ["acc"], body=body),
             helper.make_node("If", ["neg"], ["out"], then_branch=then_g, else_branch=else_g)]
    sess = session(nodes, [vi("n", TensorProto.INT64, []), vi("acc0", F, [2]), vi("neg", TensorProto.BOOL, [])],
                   [vi("out")], ["pyops", "test.branch"], options=only(negate))
    acc0 = np.array([1, -1], np.float32)
    for n, neg in ((5, True), (0, False), (3, False)):
        (out,) = sess.run(None, {"n": np.array(n, np.int64), "acc0": acc0, "neg": np.array(neg)})
        expect = acc0 + sum(range(n))
        np.testing.assert_array_equal(out, -expect if neg else expect)


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")  # PyTorch on custom ops
def test_pytorch_export_with_a_python_op_runs(kit):
    torch = pytest.importorskip("torch")

    class SoftClip(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return torch.tanh(x / 3) * 3

        @staticmethod
        def symbolic(g, x):
            out = g.op("pyops::PyOp", x, module_s="pyop_kit", class_name_s="SoftClip", limit_s="3",
                       input_types_i=[TensorProto.FLOAT], output_types_i=[TensorProto.FLOAT])
            out.setType(x.type())
            return out

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(8, 16)
            self.fc2 = torch.nn.Linear(16, 4)

        def forward(self, x):
            return self.fc2(SoftClip.apply(self.fc1(x) * 4))

    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(5, 8)
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(net, (x,), buf, opset_version=13, custom_opsets={"pyops": 1}, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch"}})
        expect = net(x).numpy()
    model = onnx.load_from_string(buf.getvalue())
    assert [n.op_type for n in model.graph.node if n.domain == "pyops"] == ["PyOp"]
    sess = kiln.InferenceSession(buf.getvalue())
    (y,) = sess.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(y, expect, rtol=1e-5, atol=1e-5)
    (y3,) = sess.run(None, {"x": x.numpy()[:3]})
    np.testing.assert_allclose(y3, expect[:3], rtol=1e-5, atol=1e-5)
