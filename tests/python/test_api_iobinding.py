"""IOBinding: inputs and outputs bound to numpy arrays, OrtValues, torch tensors and raw pointers."""

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import kiln
from kiln.capi import onnxruntime_pybind11_state as state

W = np.array([[1, -2, 0.5], [3, 4, -1]], np.float32)


def mlp_model():
    """Y = relu(X @ W) with X [n, 2], W [2, 3]; Z = X * 2 (a second output)."""
    g = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["M"]), helper.make_node("Relu", ["M"], ["Y"]),
         helper.make_node("Mul", ["X", "two"], ["Z"])], "mlp",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", 3]),
         helper.make_tensor_value_info("Z", TensorProto.FLOAT, ["n", 2])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(np.array(2, np.float32), "two")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def nonzero_model():
    g = helper.make_graph([helper.make_node("NonZero", ["X"], ["Y"])], "nz",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n"])],
                          [helper.make_tensor_value_info("Y", TensorProto.INT64, [1, "k"])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def expected(x):
    return np.maximum(x @ W, 0), x * 2


@pytest.fixture(scope="module")
def sess():
    return kiln.InferenceSession(mlp_model())


def test_cpu_input_and_kiln_allocated_outputs(sess):
    x = np.random.rand(4, 2).astype(np.float32)
    b = sess.io_binding()
    b.bind_cpu_input("X", x)
    b.bind_output("Y")
    b.bind_output("Z", "cpu")
    sess.run_with_iobinding(b)
    y, z = b.get_outputs()
    assert isinstance(y, kiln.OrtValue) and y.shape() == [4, 3] and z.data_type() == "tensor(float)"
    np.testing.assert_allclose(y.numpy(), expected(x)[0], rtol=1e-6)
    cy, cz = b.copy_outputs_to_cpu()
    np.testing.assert_allclose(cz, expected(x)[1])
    assert cy.ctypes.data != y.data_ptr()  # copies, as the name says
    # The bound array is read at each run: changing it changes the next result.
    x[:] = 1
    sess.run_with_iobinding(b)
    np.testing.assert_allclose(b.copy_outputs_to_cpu()[0], expected(x)[0], rtol=1e-6)


def test_outputs_written_into_caller_buffers(sess):
    x = np.random.rand(3, 2).astype(np.float32)
    xv = kiln.OrtValue.ortvalue_from_numpy(x)
    yv = kiln.OrtValue.ortvalue_from_shape_and_type([3, 3], np.float32)
    z = np.full((3, 2), np.nan, np.float32)
    b = sess.io_binding()
    b.bind_input("X", xv.device_name(), 0, np.float32, xv.shape(), xv.data_ptr())
    b.bind_ortvalue_output("Y", yv)
    b.bind_output("Z", "cpu", 0, np.float32, z.shape, z.ctypes.data)
    sess.run_with_iobinding(b)
    np.testing.assert_allclose(yv.numpy(), expected(x)[0], rtol=1e-6)
    np.testing.assert_allclose(z, expected(x)[1])
    outs = b.get_outputs()
    assert outs[0] is yv and outs[1].data_ptr() == z.ctypes.data
    # An ONNX TensorProto number works as element_type too.
    b.bind_output("Z", "cpu", 0, TensorProto.FLOAT, z.shape, z.ctypes.data)
    x *= 3
    sess.run_with_iobinding(b)
    np.testing.assert_allclose(z, expected(x)[1])


def test_torch_tensors_bound_by_pointer(sess):
    x = torch.rand(5, 2)
    y = torch.empty(5, 3)
    z = torch.empty(5, 2)
    b = sess.io_binding()
    b.bind_input(name="X", device_type="cpu", device_id=0, element_type=np.float32, shape=tuple(x.shape),
                 buffer_ptr=x.data_ptr())
    b.bind_output(name="Y", device_type="cpu", device_id=0, element_type=np.float32, shape=tuple(y.shape),
                  buffer_ptr=y.data_ptr())
    b.bind_output("Z", "cpu", 0, np.float32, tuple(z.shape), z.data_ptr())
    sess.run_with_iobinding(b)
    torch.testing.assert_close(y, torch.relu(x @ torch.from_numpy(W)))
    torch.testing.assert_close(z, x * 2)
    assert b.get_outputs()[0].data_ptr() == y.data_ptr()


def test_torch_tensor_as_input_and_output_in_place(sess):
    x = torch.rand(3, 2)
    ref = x * 2
    b = sess.io_binding()
    b.bind_input("X", "cpu", 0, np.float32, tuple(x.shape), x.data_ptr())
    b.bind_output("Z", "cpu", 0, np.float32, tuple(x.shape), x.data_ptr())  # the result replaces the input
    sess.run_with_iobinding(b)
    torch.testing.assert_close(x, ref)


def test_wrong_output_buffers_are_clear_errors_and_untouched(sess):
    x = np.random.rand(3, 2).astype(np.float32)
    b = sess.io_binding()
    b.bind_cpu_input("X", x)
    small = np.full((2, 3), -7, np.float32)  # 6 floats where 9 are produced
    b.bind_output("Y", "cpu", 0, np.float32, small.shape, small.ctypes.data)
    with pytest.raises(state.InvalidArgument,
                       match=r"output 'Y': the bound buffer expects float32 \[2, 3\], got float32 \[3, 3\]"):
        sess.run_with_iobinding(b)
    assert (small == -7).all()
    wrong_type = np.zeros((3, 3), np.float64)
    b.bind_output("Y", "cpu", 0, np.float64, wrong_type.shape, wrong_type.ctypes.data)
    with pytest.raises(state.InvalidArgument, match=r"expects float64 \[3, 3\], got float32 \[3, 3\]"):
        sess.run_with_iobinding(b)
    same_size = np.zeros((9,), np.float32)  # same bytes, other shape: ONNX Runtime refuses too
    b.bind_output("Y", "cpu", 0, np.float32, same_size.shape, same_size.ctypes.data)
    z_ok = np.zeros((3, 2), np.float32)
    b.bind_output("Z", "cpu", 0, np.float32, z_ok.shape, z_ok.ctypes.data)
    with pytest.raises(state.InvalidArgument, match=r"expects float32 \[9\], got float32 \[3, 3\]"):
        sess.run_with_iobinding(b)
    assert (z_ok == 0).all()  # nothing is written when any buffer is wrong
    ov = kiln.OrtValue.ortvalue_from_shape_and_type([1, 3], np.float32)
    b.bind_ortvalue_output("Y", ov)
    with pytest.raises(state.InvalidArgument, match="output 'Y'"):
        sess.run_with_iobinding(b)


def test_binding_errors(sess):
    b = sess.io_binding()
    with pytest.raises(state.InvalidArgument, match="Invalid input name: 'nope'; the model's inputs are: X"):
        b.bind_cpu_input("nope", np.zeros(1))
    with pytest.raises(state.InvalidArgument, match="Invalid output name: 'nope'"):
        b.bind_output("nope")
    with pytest.raises(state.InvalidArgument, match="no CUDA execution provider is available"):
        b.bind_output("Y", "cuda", 0)
    with pytest.raises(state.InvalidArgument, match="no CUDA execution provider is available"):
        b.bind_input("X", "cuda", 0, np.float32, [1, 2], 1234)
    with pytest.raises(ValueError, match="element_type` and `shape`"):
        b.bind_output("Y", "cpu", 0, None, None, 1234)
    with pytest.raises(state.InvalidArgument, match="buffer_ptr is null"):
        b.bind_input("X", "cpu", 0, np.float32, [1, 2], 0)
    with pytest.raises(state.InvalidArgument, match="shape dimensions must be >= 0"):
        b.bind_input("X", "cpu", 0, np.float32, [1, -2], 1234)
    b.bind_cpu_input("X", np.zeros((1, 2), np.float32))
    with pytest.raises(state.InvalidArgument, match="no output is bound"):
        sess.run_with_iobinding(b)
    b.bind_output("Y")
    b.clear_binding_inputs()
    with pytest.raises(state.InvalidArgument, match="Missing input: 'X'"):
        sess.run_with_iobinding(b)


def test_clear_rebind_and_synchronize(sess):
    b = sess.io_binding()
    b.bind_cpu_input("X", np.ones((1, 2), np.float32))
    b.bind_output("Y")
    assert not b.get_outputs()[0].has_value()  # nothing run yet
    b.synchronize_inputs()
    sess.run_with_iobinding(b, kiln.RunOptions())
    b.synchronize_outputs()
    assert b.get_outputs()[0].shape() == [1, 3]
    b.clear_binding_outputs()
    assert b.get_outputs() == []
    b.bind_output("Z")
    b.bind_cpu_input("X", np.full((2, 2), 3, np.float32))  # rebinding replaces
    sess.run_with_iobinding(b)
    (z,) = b.copy_outputs_to_cpu()
    np.testing.assert_array_equal(z, np.full((2, 2), 6, np.float32))


def test_dynamic_shape_output_allocated_by_kiln():
    sess = kiln.InferenceSession(nonzero_model())
    b = sess.io_binding()
    for x in (np.array([0, 1, 0, 2], np.float32), np.array([3, 0], np.float32), np.zeros(0, np.float32)):
        b.bind_cpu_input("X", x)
        b.bind_output("Y")
        sess.run_with_iobinding(b)
        np.testing.assert_array_equal(b.copy_outputs_to_cpu()[0], np.array(np.nonzero(x)))
