"""If, Loop, Scan, sequences and optionals, checked against numpy."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import kiln
from kiln.capi import onnxruntime_pybind11_state as state

F = TensorProto.FLOAT


def model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return kiln.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString())


def vi(name, t=F, shape=None):
    return helper.make_tensor_value_info(name, t, shape)


def test_if_reads_outer_scope_values():
    then_g = helper.make_graph([helper.make_node("Add", ["x", "y"], ["r"])], "then", [], [vi("r")])
    else_g = helper.make_graph([helper.make_node("Sub", ["x", "y"], ["r"])], "else", [], [vi("r")])
    sess = model([helper.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g)],
                 [vi("c", TensorProto.BOOL, []), vi("x"), vi("y")], [vi("out")])
    x, y = np.arange(6, dtype=np.float32).reshape(2, 3), np.full((3,), 2, np.float32)
    np.testing.assert_array_equal(sess.run(None, {"c": np.array(True), "x": x, "y": y})[0], x + y)
    np.testing.assert_array_equal(sess.run(None, {"c": np.array(False), "x": x, "y": y})[0], x - y)


def loop_body():
    # carried: acc += x * i ; scan output: acc after each step ; stop when acc > limit
    nodes = [helper.make_node("Cast", ["i"], ["fi"], to=F),
             helper.make_node("Mul", ["x", "fi"], ["xi"]),
             helper.make_node("Add", ["acc_in", "xi"], ["acc_out"]),
             helper.make_node("Identity", ["acc_out"], ["scan"]),
             helper.make_node("Identity", ["cond_in"], ["cond_out"])]
    return helper.make_graph(nodes, "body", [vi("i", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []),
                                             vi("acc_in", F, [3])],
                             [vi("cond_out", TensorProto.BOOL, []), vi("acc_out", F, [3]), vi("scan", F, [3])])


@pytest.mark.parametrize("trips", [0, 1, 5])
def test_loop_carried_and_scan_outputs(trips):
    sess = model([helper.make_node("Loop", ["M", "", "acc0"], ["acc", "history"], body=loop_body())],
                 [vi("M", TensorProto.INT64, []), vi("acc0", F, [3]), vi("x", F, [3])], [vi("acc"), vi("history")])
    x = np.array([1, 2, 3], np.float32)
    acc, history = sess.run(None, {"M": np.array(trips, np.int64), "acc0": np.zeros(3, np.float32), "x": x})
    expect, hist = np.zeros(3, np.float32), []
    for i in range(trips):
        expect = expect + x * i
        hist.append(expect)
    np.testing.assert_allclose(acc, expect)
    assert history.shape == (trips, 3)
    if trips:
        np.testing.assert_allclose(history, np.stack(hist))


def test_loop_stops_on_condition_and_nests_in_if():
    # body: i -> cond_out = (i < 3); counts iterations into the carried value
    body = helper.make_graph(
        [helper.make_node("Constant", [], ["three"], value=numpy_helper.from_array(np.array(3, np.int64))),
         helper.make_node("Less", ["i", "three"], ["cond_out"]),
         helper.make_node("Constant", [], ["one"], value=numpy_helper.from_array(np.array(1, np.int64))),
         helper.make_node("Add", ["n_in", "one"], ["n_out"])],
        "body", [vi("i", TensorProto.INT64, []), vi("c", TensorProto.BOOL, []), vi("n_in", TensorProto.INT64, [])],
        [vi("cond_out", TensorProto.BOOL, []), vi("n_out", TensorProto.INT64, [])])
    then_g = helper.make_graph([helper.make_node("Loop", ["", "go", "n0"], ["n"], body=body)], "then", [],
                               [vi("n", TensorProto.INT64, [])])
    else_g = helper.make_graph([helper.make_node("Identity", ["n0"], ["n"])], "else", [], [vi("n", TensorProto.INT64, [])])
    sess = model([helper.make_node("If", ["go"], ["out"], then_branch=then_g, else_branch=else_g)],
                 [vi("go", TensorProto.BOOL, []), vi("n0", TensorProto.INT64, [])], [vi("out", TensorProto.INT64)])
    assert sess.run(None, {"go": np.array(True), "n0": np.array(10, np.int64)})[0] == 14  # i = 0..3
    assert sess.run(None, {"go": np.array(False), "n0": np.array(10, np.int64)})[0] == 10


@pytest.mark.parametrize("reverse", [0, 1])
def test_scan_cumulative_sum(reverse):
    body = helper.make_graph([helper.make_node("Add", ["s_in", "x"], ["s_out"]),
                              helper.make_node("Identity", ["s_out"], ["y"])], "body",
                             [vi("s_in", F, [2]), vi("x", F, [2])], [vi("s_out", F, [2]), vi("y", F, [2])])
    sess = model([helper.make_node("Scan", ["s0", "xs"], ["s", "ys"], body=body, num_scan_inputs=1,
                                   scan_input_directions=[reverse])],
                 [vi("s0", F, [2]), vi("xs", F, [4, 2])], [vi("s"), vi("ys")])
    xs = np.arange(8, dtype=np.float32).reshape(4, 2)
    s, ys = sess.run(None, {"s0": np.zeros(2, np.float32), "xs": xs})
    order = xs[::-1] if reverse else xs
    np.testing.assert_allclose(ys, np.cumsum(order, axis=0))
    np.testing.assert_allclose(s, xs.sum(0))


def seq_vi(name):
    return helper.make_value_info(name, helper.make_sequence_type_proto(helper.make_tensor_type_proto(F, None)))


def test_sequence_ops_roundtrip():
    seq_t = seq_vi("seq")
    nodes = [helper.make_node("SequenceInsert", ["seq", "x"], ["seq2"]),
             helper.make_node("SequenceLength", ["seq2"], ["n"]),
             helper.make_node("SequenceAt", ["seq2", "pos"], ["first"]),
             helper.make_node("ConcatFromSequence", ["seq2"], ["cat"], axis=0),
             helper.make_node("SplitToSequence", ["cat"], ["parts"], axis=0, keepdims=0)]
    sess = model(nodes, [seq_t, vi("x", F, [2]), vi("pos", TensorProto.INT64, [])],
                 [vi("n", TensorProto.INT64), vi("first"), vi("cat"), seq_vi("parts")])
    a, b = np.array([1, 2], np.float32), np.array([3, 4], np.float32)
    n, first, cat, parts = sess.run(None, {"seq": [a], "x": b, "pos": np.array(-2, np.int64)})
    assert n == 2
    np.testing.assert_array_equal(first, a)
    np.testing.assert_array_equal(cat, [1, 2, 3, 4])
    assert isinstance(parts, list) and [p.tolist() for p in parts] == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(state.InvalidArgument, match="position 5 is out of range"):
        sess.run(None, {"seq": [a], "x": b, "pos": np.array(5, np.int64)})


def test_optional_none_and_value():
    opt = helper.make_tensor_type_proto(F, [2])
    opt_t = helper.make_value_info("o", helper.make_optional_type_proto(opt))
    sess = model([helper.make_node("OptionalHasElement", ["o"], ["has"])], [opt_t], [vi("has", TensorProto.BOOL)])
    assert sess.run(None, {"o": None})[0] == False  # noqa: E712
    assert sess.run(None, {"o": np.zeros(2, np.float32)})[0] == True  # noqa: E712


def test_sequence_map_with_sequence_and_tensor_inputs():
    body = helper.make_graph([helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Mul", ["s", "k"], ["o"])],
                             "body", [vi("a", F, None), vi("b", F, None), vi("k", F, None)], [vi("o", F, None)])
    sess = model([helper.make_node("SequenceMap", ["xs", "ys", "k"], ["out"], body=body)],
                 [seq_vi("xs"), seq_vi("ys"), vi("k", F, [])], [seq_vi("out")])
    xs = [np.arange(3, dtype=np.float32), np.ones(2, np.float32)]
    ys = [np.full(3, 2, np.float32), np.full(2, 5, np.float32)]
    (out,) = sess.run(None, {"xs": xs, "ys": ys, "k": np.array(3, np.float32)})
    assert len(out) == 2
    for o, x, y in zip(out, xs, ys):
        np.testing.assert_allclose(o, (x + y) * 3)
    with pytest.raises(state.InvalidArgument, match="sequence of 1 tensors; input 0 has 2"):
        sess.run(None, {"xs": xs, "ys": ys[:1], "k": np.array(3, np.float32)})
