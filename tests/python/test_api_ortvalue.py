"""OrtValue and OrtDevice: zero-copy views of numpy and torch memory, DLPack, OrtValue feeds."""

import numpy as np
import pytest
import torch
import torch.utils.dlpack
from onnx import TensorProto, helper, numpy_helper

import kiln
from kiln.capi import onnxruntime_pybind11_state as state

OrtValue = kiln.OrtValue


def add_model():
    g = helper.make_graph(
        [helper.make_node("Add", ["X", "B"], ["Y"], name="add")], "add",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", 2])],
        [numpy_helper.from_array(np.array([10, 20], np.float32), "B")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def seq_model():
    """SequenceConstruct(X, X) -> S; SequenceLength(S) -> L."""
    g = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["X", "X"], ["S"]),
         helper.make_node("SequenceLength", ["S"], ["L"])], "seq",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])],
        [helper.make_tensor_sequence_value_info("S", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("L", TensorProto.INT64, [])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_from_numpy_views_the_array_without_copy():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    v = OrtValue.ortvalue_from_numpy(x)
    assert v.data_ptr() == x.ctypes.data
    assert v.device_name() == "cpu"
    assert v.shape() == [3, 2]
    assert v.data_type() == "tensor(float)"
    assert v.element_type() == TensorProto.FLOAT
    assert v.is_tensor() and v.has_value() and not v.is_sparse_tensor() and not v.is_tensor_sequence()
    x[0, 0] = 42  # the value sees writes to the array ...
    np.testing.assert_array_equal(v.numpy(), x)
    got = v.numpy()
    got[1, 1] = -1  # ... but numpy() is a copy, as in ONNX Runtime
    assert x[1, 1] == 3
    del x
    assert v.numpy()[0, 0] == 42  # the value keeps the array alive


@pytest.mark.parametrize("dtype,name,code", [
    (np.float32, "float", 1), (np.uint8, "uint8", 2), (np.int8, "int8", 3), (np.uint16, "uint16", 4),
    (np.int16, "int16", 5), (np.int32, "int32", 6), (np.int64, "int64", 7), (np.bool_, "bool", 9),
    (np.float16, "float16", 10), (np.float64, "double", 11), (np.uint32, "uint32", 12), (np.uint64, "uint64", 13)])
def test_data_and_element_types(dtype, name, code):
    v = OrtValue.ortvalue_from_numpy(np.zeros((2, 0, 3), dtype))
    assert (v.data_type(), v.element_type(), v.shape()) == (f"tensor({name})", code, [2, 0, 3])
    w = OrtValue.ortvalue_from_shape_and_type([4], dtype)
    assert (w.data_type(), w.shape(), w.numpy().dtype) == (f"tensor({name})", [4], np.dtype(dtype))
    u = OrtValue.ortvalue_from_shape_and_type((1, 2), code)  # an ONNX TensorProto number works too
    assert u.numpy().dtype == np.dtype(dtype)


def test_strings_and_non_contiguous_arrays():
    s = OrtValue.ortvalue_from_numpy(np.array(["a", "bc"]))
    assert s.data_type() == "tensor(string)" and s.numpy().tolist() == ["a", "bc"]
    with pytest.raises(state.InvalidArgument, match="string"):
        s.data_ptr()
    x = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    v = OrtValue.ortvalue_from_numpy(x)  # made contiguous (a copy), as ONNX Runtime does
    np.testing.assert_array_equal(v.numpy(), x)


def test_bfloat16_with_onnx_type():
    bits = np.array([0x3F80, 0x4000], np.uint16)  # 1.0 and 2.0 in bfloat16
    v = OrtValue.ortvalue_from_numpy_with_onnx_type(bits, TensorProto.BFLOAT16)
    assert v.data_type() == "tensor(bfloat16)" and v.element_type() == 16
    assert OrtValue.ortvalue_from_shape_and_type([3], TensorProto.BFLOAT16).data_type() == "tensor(bfloat16)"
    with pytest.raises(state.InvalidArgument, match="cannot hold ONNX element type float"):
        OrtValue.ortvalue_from_numpy_with_onnx_type(bits, TensorProto.FLOAT)


def test_update_inplace_writes_the_viewed_memory():
    x = np.zeros((2, 3), np.float32)
    v = OrtValue.ortvalue_from_numpy(x)
    v.update_inplace(np.arange(6, dtype=np.float32))
    np.testing.assert_array_equal(x, np.arange(6).reshape(2, 3))
    with pytest.raises(state.InvalidArgument, match=r"holds float32 \[2, 3\] \(6 elements\), got float64"):
        v.update_inplace(np.zeros(6))
    with pytest.raises(state.InvalidArgument, match=r"got float32 \[7\] \(7 elements\)"):
        v.update_inplace(np.zeros(7, np.float32))


def test_devices():
    d = kiln.OrtDevice.make("cpu", 0)
    assert (d.device_type(), d.device_id()) == (kiln.OrtDevice.cpu(), 0)
    assert d == kiln.OrtDevice(kiln.OrtDevice.cpu(), kiln.OrtDevice.default_memory(), 0)
    assert OrtValue.ortvalue_from_numpy(np.ones(1), "CPU").device_name() == "cpu"
    for bad in ("cuda", "gpu"):
        with pytest.raises(state.InvalidArgument, match="no CUDA execution provider is available"):
            OrtValue.ortvalue_from_numpy(np.ones(1), bad, 0)
        with pytest.raises(state.InvalidArgument, match="no CUDA execution provider"):
            kiln.OrtDevice.make(bad, 0)
    with pytest.raises(state.InvalidArgument, match="no CUDA execution provider"):
        OrtValue.ortvalue_from_shape_and_type([2], np.float32, "cuda", 0)
    with pytest.raises(state.InvalidArgument, match="'dml' device"):
        OrtValue.ortvalue_from_numpy(np.ones(1), "dml")
    with pytest.raises(state.InvalidArgument, match="shape dimensions must be >= 0"):
        OrtValue.ortvalue_from_shape_and_type([2, -1], np.float32)
    with pytest.raises(state.InvalidArgument, match="neither a numpy type"):
        OrtValue.ortvalue_from_shape_and_type([2], "not-a-type")
    with pytest.raises(state.InvalidArgument, match="99 is not an ONNX tensor element type"):
        OrtValue.ortvalue_from_shape_and_type([2], 99)


def test_ortvalues_as_run_feeds_and_outputs():
    sess = kiln.InferenceSession(add_model())
    x = np.random.rand(5, 2).astype(np.float32)
    (y,) = sess.run(None, {"X": OrtValue.ortvalue_from_numpy(x)})
    np.testing.assert_allclose(y, x + [10, 20])
    (out,) = sess.run_with_ort_values(["Y"], {"X": OrtValue.ortvalue_from_numpy(x)})
    assert isinstance(out, OrtValue) and out.shape() == [5, 2] and out.data_type() == "tensor(float)"
    np.testing.assert_allclose(out.numpy(), x + [10, 20])
    # An output OrtValue feeds the next run as it is.
    (again,) = sess.run_with_ort_values(None, {"X": out})
    np.testing.assert_allclose(again.numpy(), x + [20, 40])
    with pytest.raises(state.InvalidArgument, match=r"Actual: \(tensor\(double\)\)"):
        sess.run_with_ort_values(None, {"X": OrtValue.ortvalue_from_numpy(x.astype(np.float64))})


def test_sequence_outputs_as_ortvalues():
    sess = kiln.InferenceSession(seq_model())
    s, n = sess.run_with_ort_values(None, {"X": OrtValue.ortvalue_from_numpy(np.array([1, 2], np.float32))})
    assert s.is_tensor_sequence() and not s.is_tensor() and s.data_type() == "seq(tensor(float))"
    assert n.numpy() == 2
    with pytest.raises(state.InvalidArgument, match="numpy\\(\\) needs a tensor OrtValue; this one holds a sequence"):
        s.numpy()
    empty = OrtValue()
    assert not empty.has_value()
    with pytest.raises(state.InvalidArgument, match="holds no value"):
        empty.data_type()


def test_dlpack_round_trips_with_torch_without_copies():
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    v = OrtValue.from_dlpack(torch.utils.dlpack.to_dlpack(t))  # a capsule
    assert v.data_ptr() == t.data_ptr() and v.shape() == [2, 3]
    w = OrtValue.from_dlpack(t)  # an object with __dlpack__
    assert w.data_ptr() == t.data_ptr()
    w.update_inplace(np.full(6, 7, np.float32))  # the memory is torch's: torch sees the write
    assert torch.equal(t, torch.full((2, 3), 7.0))

    back = torch.utils.dlpack.from_dlpack(v.to_dlpack())
    assert back.data_ptr() == t.data_ptr()
    again = torch.from_dlpack(v)  # __dlpack__ / __dlpack_device__
    assert again.data_ptr() == t.data_ptr()
    assert v.__dlpack_device__() == (1, 0)

    x = np.arange(4, dtype=np.int64)
    via_numpy = np.from_dlpack(OrtValue.ortvalue_from_numpy(x))
    assert via_numpy.ctypes.data == x.ctypes.data
    from_np = OrtValue.from_dlpack(x)
    assert from_np.data_ptr() == x.ctypes.data


def test_dlpack_keeps_producers_alive_and_feeds_sessions():
    sess = kiln.InferenceSession(add_model())
    t = torch.rand(4, 2)
    expected = t.numpy() + [10, 20]
    v = OrtValue.from_dlpack(torch.utils.dlpack.to_dlpack(t))
    del t
    (y,) = sess.run(None, {"X": v})
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    (out,) = sess.run_with_ort_values(None, {"X": v})
    y_torch = torch.from_dlpack(out)
    assert y_torch.data_ptr() == out.data_ptr()
    np.testing.assert_allclose(y_torch.numpy(), expected, rtol=1e-6)


def test_dlpack_bool_and_errors():
    b = np.array([True, False, True])
    cap = OrtValue.ortvalue_from_numpy(b).to_dlpack()  # bool travels as uint8, as in ONNX Runtime
    v = OrtValue.from_dlpack(cap, is_bool_tensor=True)
    assert v.data_type() == "tensor(bool)" and v.numpy().tolist() == [True, False, True]
    assert v.data_ptr() == b.ctypes.data
    strided = torch.arange(12.0).reshape(3, 4)[:, ::2]
    with pytest.raises(state.InvalidArgument, match="not contiguous"):
        OrtValue.from_dlpack(strided)
    ro = np.zeros(3, np.float32)
    ro.flags.writeable = False
    with pytest.raises(state.InvalidArgument, match="read-only"):
        OrtValue.ortvalue_from_numpy(ro).to_dlpack()
    empty = OrtValue.from_dlpack(torch.zeros(0, 3))
    assert empty.shape() == [0, 3]
    with pytest.raises(state.InvalidArgument, match="require"):
        OrtValue.from_dlpack(torch.ones(2, requires_grad=True))

    class OnGpu:
        def __dlpack__(self, stream=None):
            raise AssertionError("not reached")

        def __dlpack_device__(self):
            return (2, 0)  # kDLCUDA

    with pytest.raises(state.InvalidArgument, match=r"DLPack device \(2, 0\); Kiln runs on the CPU only"):
        OrtValue.from_dlpack(OnGpu())
