"""SparseTensor (COO, CSR) and models with sparse initializers, which load as dense tensors."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import kiln
from kiln.capi import onnxruntime_pybind11_state as state

CPU = kiln.OrtDevice.make("cpu", 0)
SparseTensor = kiln.SparseTensor


def test_coo_with_linear_and_coordinate_indices():
    values = np.array([1.0, 2.0, 3.0], np.float32)
    linear = np.array([1, 5, 6], np.int64)
    st = SparseTensor.sparse_coo_from_numpy([3, 3], values, linear, CPU)
    assert st.format() == kiln.SparseFormat.ORT_SPARSE_COO == kiln.OrtSparseFormat.ORT_SPARSE_COO
    assert st.dense_shape().tolist() == [3, 3] and st.dense_shape().dtype == np.int64
    assert st.data_type() == "sparse_tensor(float)" and st.device_name() == "cpu"
    assert st.values().ctypes.data == values.ctypes.data  # referenced, not copied
    assert st.as_coo_view().indices().ctypes.data == linear.ctypes.data
    coords = np.array([[0, 1], [1, 2], [2, 0]], np.int64)
    st2 = SparseTensor.sparse_coo_from_numpy([3, 3], values, coords, CPU)
    np.testing.assert_array_equal(st2.as_coo_view().indices(), coords)
    flat = SparseTensor.sparse_coo_from_numpy([3, 3], values, coords.reshape(-1), CPU)  # (2 * nnz,) also works
    assert flat.as_coo_view().indices().shape == (6,)
    with pytest.raises(state.InvalidArgument, match="ORT_SPARSE_COO, not ORT_SPARSE_CSRC"):
        st.as_csrc_view()
    with pytest.raises(state.InvalidArgument, match="not ORT_SPARSE_BLOCK_SPARSE.*COO and CSR tensors only"):
        st.as_blocksparse_view()


def test_csr():
    dense = np.array([[0, 1, 0, 2], [0, 0, 0, 0], [3, 0, 4, 0]], np.int64)
    rows, cols = np.nonzero(dense)
    values = dense[rows, cols]
    inner = cols.astype(np.int64)
    outer = np.array([0, 2, 2, 4], np.int64)
    st = SparseTensor.sparse_csr_from_numpy(dense.shape, values, inner, outer, CPU)
    assert st.format() == kiln.SparseFormat.ORT_SPARSE_CSRC and st.data_type() == "sparse_tensor(int64)"
    view = st.as_csrc_view()
    np.testing.assert_array_equal(view.inner(), inner)
    np.testing.assert_array_equal(view.outer(), outer)
    # rebuilding the dense matrix from the view gives the original
    rebuilt = np.zeros_like(dense)
    rebuilt[np.repeat(np.arange(3), np.diff(view.outer())), view.inner()] = st.values()
    np.testing.assert_array_equal(rebuilt, dense)
    with pytest.raises(state.InvalidArgument, match="not ORT_SPARSE_COO"):
        st.as_coo_view()
    empty = SparseTensor.sparse_csr_from_numpy([2, 2], np.zeros(0, np.float32), np.zeros(0, np.int64),
                                               np.zeros(0, np.int64), CPU)
    assert empty.values().shape == (0,)


def test_sparse_ortvalues_and_strings():
    st = SparseTensor.sparse_coo_from_numpy([4], np.array(["a", "b"]), np.array([0, 3], np.int64), CPU)
    assert st.data_type() == "sparse_tensor(string)"
    v = kiln.OrtValue.ort_value_from_sparse_tensor(st)
    assert v.is_sparse_tensor() and not v.is_tensor() and v.as_sparse_tensor() is st
    assert v.data_type() == "sparse_tensor(string)" and v.shape() == [4]
    with pytest.raises(state.InvalidArgument, match="needs a sparse tensor OrtValue"):
        kiln.OrtValue.ortvalue_from_numpy(np.zeros(2)).as_sparse_tensor()


def test_bad_sparse_tensors_are_clear_errors():
    vals = np.ones(2, np.float32)
    coo = SparseTensor.sparse_coo_from_numpy
    csr = SparseTensor.sparse_csr_from_numpy
    with pytest.raises(state.InvalidArgument, match=r"linear indices must lie in \[0, 9\)"):
        coo([3, 3], vals, np.array([0, 9], np.int64), CPU)
    with pytest.raises(state.InvalidArgument, match=r"coordinates of axis 1 must lie in \[0, 3\)"):
        coo([3, 3], vals, np.array([[0, 0], [1, 3]], np.int64), CPU)
    with pytest.raises(state.InvalidArgument, match="int64"):
        coo([3, 3], vals, np.array([0, 1], np.int32), CPU)
    with pytest.raises(state.InvalidArgument, match="expected 2 linear indices or 2 \\(row, column\\) pairs"):
        coo([3, 3], vals, np.array([0, 1, 2], np.int64), CPU)
    with pytest.raises(state.InvalidArgument, match="values must be 1-D"):
        coo([3, 3], np.ones((1, 2), np.float32), np.array([0, 1], np.int64), CPU)
    with pytest.raises(state.InvalidArgument, match="CSR tensors are 2-D"):
        csr([3], vals, np.array([0, 1], np.int64), np.array([0, 2], np.int64), CPU)
    with pytest.raises(state.InvalidArgument, match=r"columns must lie in \[0, 2\)"):
        csr([2, 2], vals, np.array([0, 2], np.int64), np.array([0, 1, 2], np.int64), CPU)
    with pytest.raises(state.InvalidArgument, match="expected 3 row starts"):
        csr([2, 2], vals, np.array([0, 1], np.int64), np.array([0, 2], np.int64), CPU)
    with pytest.raises(state.InvalidArgument, match="rise from 0 to the number of values"):
        csr([2, 2], vals, np.array([0, 1], np.int64), np.array([0, 2, 1], np.int64), CPU)
    with pytest.raises(state.InvalidArgument, match="no CUDA execution provider"):
        coo([3, 3], vals, np.array([0, 1], np.int64), "cuda")
    st = coo([3, 3], vals, np.array([0, 1], np.int64), CPU)
    with pytest.raises(state.InvalidArgument, match="no CUDA execution provider"):
        st.to_cuda(kiln.OrtDevice.cuda())
    with pytest.raises(state.InvalidArgument, match="sparse tensor inputs are not supported"):
        kiln.InferenceSession(_matmul_model()).run(None, {"X": kiln.OrtValue.ort_value_from_sparse_tensor(st)})


def _matmul_model(sparse_w=None):
    """Y = X @ W (W a 3x4 initializer, optionally sparse)."""
    w = numpy_helper.from_array(np.zeros((3, 4), np.float32), "W")
    g = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "mm",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 3])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", 4])],
                          [] if sparse_w is not None else [w], sparse_initializer=[sparse_w] if sparse_w else None)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    return m.SerializeToString()


def _sparse_proto(dense, name, coordinates):
    idx = np.argwhere(dense) if coordinates else np.flatnonzero(dense)
    values = numpy_helper.from_array(dense[dense != 0].reshape(-1), name)
    indices = numpy_helper.from_array(idx.astype(np.int64), name + "_indices")
    return helper.make_sparse_tensor(values, indices, list(dense.shape))


@pytest.mark.parametrize("coordinates", [False, True])
def test_models_with_sparse_initializers_load_dense(coordinates, tmp_path):
    w = np.zeros((3, 4), np.float32)
    w[0, 1], w[2, 3], w[1, 0] = 1.5, -2.0, 4.0
    model = _matmul_model(_sparse_proto(w, "W", coordinates))
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    for source in (model, str(tmp_path / "sparse.onnx")):
        if isinstance(source, str):
            with open(source, "wb") as f:
                f.write(model)
        (y,) = kiln.InferenceSession(source).run(None, {"X": x})
        np.testing.assert_allclose(y, x @ w, rtol=1e-5, atol=1e-6)


def test_sparse_initializers_in_subgraphs_and_sparse_constants():
    """If(cond) then Y = X + C (C a Constant with sparse_value) else Y = X * S (S a sparse initializer
    of the else branch)."""
    c = np.zeros(6, np.float32)
    c[[1, 4]] = [10, 20]
    s = np.zeros(6, np.int64)
    s[[0, 5]] = [2, 3]
    const = helper.make_node("Constant", [], ["C"], sparse_value=_sparse_proto(c, "c", False))
    then_g = helper.make_graph([const, helper.make_node("Add", ["X", "C"], ["Yt"])], "then", [],
                               [helper.make_tensor_value_info("Yt", TensorProto.FLOAT, [6])])
    else_g = helper.make_graph(
        [helper.make_node("Cast", ["S"], ["Sf"], to=TensorProto.FLOAT), helper.make_node("Mul", ["X", "Sf"], ["Ye"])],
        "else", [], [helper.make_tensor_value_info("Ye", TensorProto.FLOAT, [6])],
        sparse_initializer=[_sparse_proto(s, "S", False)])
    g = helper.make_graph([helper.make_node("If", ["cond"], ["Y"], then_branch=then_g, else_branch=else_g)], "if",
                          [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                           helper.make_tensor_value_info("X", TensorProto.FLOAT, [6])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [6])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    sess = kiln.InferenceSession(m)
    x = np.arange(6, dtype=np.float32)
    np.testing.assert_array_equal(sess.run(None, {"cond": np.array(True), "X": x})[0], x + c)
    np.testing.assert_array_equal(sess.run(None, {"cond": np.array(False), "X": x})[0], x * s)


def test_sparse_initializer_with_free_dimension_override():
    w = np.eye(3, 4, dtype=np.float32)
    so = kiln.SessionOptions()
    so.add_free_dimension_override_by_name("n", 2)
    sess = kiln.InferenceSession(_matmul_model(_sparse_proto(w, "W", True)), so)
    assert sess.get_inputs()[0].shape == [2, 3]
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(sess.run(None, {"X": x})[0], x @ w)


def test_bad_sparse_initializer_is_a_clear_error():
    w = np.zeros((3, 4), np.float32)
    w[2, 3] = 1
    sp = _sparse_proto(w, "W", False)
    sp.indices.CopyFrom(numpy_helper.from_array(np.array([12], np.int64), "W_indices"))  # past the end
    with pytest.raises(state.InvalidGraph, match=r"sparse tensor 'W': linear indices must lie in \[0, 12\)"):
        kiln.InferenceSession(_matmul_model(sp))
