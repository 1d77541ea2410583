"""The code examples of ONNX Runtime's Python API overview (docs/api/python/api_summary), run with
``import kiln as onnxruntime`` on the CPU.

The examples are written for CUDA; here each one runs as its CPU version: device 'cuda' becomes
'cpu' (Kiln has no CUDA provider and says so), while provider lists naming CUDAExecutionProvider
stay as they are (Kiln warns that it is unavailable and runs on the CPU, as ONNX Runtime does).
Every example's result is checked against numpy or PyTorch.
"""

import warnings

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

import kiln as onnxruntime

pytestmark = pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider':UserWarning")


def relu_plus_one(x):
    return np.maximum(x, 0) + 1


def save_model(path, in_name, out_name, elem=TensorProto.FLOAT):
    """out = Relu(in) + 1, in and out [3, 2]."""
    one = helper.make_tensor("one", elem, [], [1.0])
    g = helper.make_graph(
        [helper.make_node("Relu", [in_name], ["r"]), helper.make_node("Add", ["r", "one"], [out_name])], "example",
        [helper.make_tensor_value_info(in_name, elem, [3, 2])], [helper.make_tensor_value_info(out_name, elem, [3, 2])],
        [one])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with open(path, "wb") as f:
        f.write(m.SerializeToString())


@pytest.fixture
def models(tmp_path, monkeypatch):
    """model.onnx (X -> Y) and io_model.onnx (input -> output) in the working folder, and X."""
    monkeypatch.chdir(tmp_path)
    save_model("model.onnx", "X", "Y")
    save_model("io_model.onnx", "input", "output")
    return np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)


def test_load_and_run_a_model(models):
    inputs = {"X": models}
    session = onnxruntime.InferenceSession('model.onnx')
    outputs = session.run(["Y"], inputs)
    np.testing.assert_allclose(outputs[0], relu_plus_one(models))


def test_providers_in_priority_order(models):
    model = "model.onnx"
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):
        session = onnxruntime.InferenceSession(
            model, providers=['CUDAExecutionProvider', 'CPUExecutionProvider']
        )
    assert session.get_providers() == ['CPUExecutionProvider']


def test_session_options_enable_profiling(models):
    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    session = onnxruntime.InferenceSession(
        'model.onnx',
        sess_options=options,
        providers=['CUDAExecutionProvider', 'CPUExecutionProvider'])
    session.run(None, {"X": models})
    assert session.end_profiling().endswith(".json")


def test_data_on_cpu(models):
    X = models
    # X is numpy array on cpu
    ortvalue = onnxruntime.OrtValue.ortvalue_from_numpy(X)
    assert ortvalue.device_name() == 'cpu'
    assert ortvalue.shape() == list(X.shape)
    assert ortvalue.data_type() == 'tensor(float)'
    assert ortvalue.is_tensor() is True
    assert np.array_equal(ortvalue.numpy(), X)

    # ortvalue can be provided as part of the input feed to a model
    session = onnxruntime.InferenceSession(
        'model.onnx',
        providers=['CUDAExecutionProvider', 'CPUExecutionProvider'])
    results = session.run(["Y"], {"X": ortvalue})
    np.testing.assert_allclose(results[0], relu_plus_one(X))


def test_iobinding_cpu_input(models):
    X = models
    session = onnxruntime.InferenceSession(
        'io_model.onnx',
        providers=['CUDAExecutionProvider', 'CPUExecutionProvider'])
    io_binding = session.io_binding()
    # OnnxRuntime will copy the data over to the CUDA device if 'input' is consumed by nodes on the CUDA device
    io_binding.bind_cpu_input('input', X)
    io_binding.bind_output('output')
    session.run_with_iobinding(io_binding)
    Y = io_binding.copy_outputs_to_cpu()[0]
    np.testing.assert_allclose(Y, relu_plus_one(X))


def test_iobinding_input_on_device(models):
    X = models
    X_ortvalue = onnxruntime.OrtValue.ortvalue_from_numpy(X, 'cpu', 0)
    session = onnxruntime.InferenceSession(
        'io_model.onnx',
        providers=['CUDAExecutionProvider', 'CPUExecutionProvider'])
    io_binding = session.io_binding()
    io_binding.bind_input(name='input', device_type=X_ortvalue.device_name(), device_id=0, element_type=np.float32,
                          shape=X_ortvalue.shape(), buffer_ptr=X_ortvalue.data_ptr())
    io_binding.bind_output('output')
    session.run_with_iobinding(io_binding)
    Y = io_binding.copy_outputs_to_cpu()[0]
    np.testing.assert_allclose(Y, relu_plus_one(X))


def test_iobinding_input_and_output_on_device(models):
    X = models
    X_ortvalue = onnxruntime.OrtValue.ortvalue_from_numpy(X, 'cpu', 0)
    Y_ortvalue = onnxruntime.OrtValue.ortvalue_from_shape_and_type([3, 2], np.float32, 'cpu', 0)
    session = onnxruntime.InferenceSession(
        'io_model.onnx',
        providers=['CUDAExecutionProvider', 'CPUExecutionProvider'])
    io_binding = session.io_binding()
    io_binding.bind_input(
        name='input',
        device_type=X_ortvalue.device_name(),
        device_id=0,
        element_type=np.float32,
        shape=X_ortvalue.shape(),
        buffer_ptr=X_ortvalue.data_ptr()
    )
    io_binding.bind_output(
        name='output',
        device_type=Y_ortvalue.device_name(),
        device_id=0,
        element_type=np.float32,
        shape=Y_ortvalue.shape(),
        buffer_ptr=Y_ortvalue.data_ptr()
    )
    session.run_with_iobinding(io_binding)
    np.testing.assert_allclose(Y_ortvalue.numpy(), relu_plus_one(X))


def test_iobinding_output_allocated_by_the_runtime(models):
    X = models
    X_ortvalue = onnxruntime.OrtValue.ortvalue_from_numpy(X, 'cpu', 0)
    session = onnxruntime.InferenceSession(
        'io_model.onnx',
        providers=['CUDAExecutionProvider', 'CPUExecutionProvider'])
    io_binding = session.io_binding()
    io_binding.bind_input(
        name='input',
        device_type=X_ortvalue.device_name(),
        device_id=0,
        element_type=np.float32,
        shape=X_ortvalue.shape(),
        buffer_ptr=X_ortvalue.data_ptr()
    )
    # Request ONNX Runtime to bind and allocate memory on CUDA for 'output'
    io_binding.bind_output('output', 'cpu')
    session.run_with_iobinding(io_binding)
    # The following call returns an OrtValue which has data allocated by ONNX Runtime on CUDA
    ort_output = io_binding.get_outputs()[0]
    np.testing.assert_allclose(ort_output.numpy(), relu_plus_one(X))


def test_iobinding_ortvalues(models):
    X = models
    X_ortvalue = onnxruntime.OrtValue.ortvalue_from_numpy(X, 'cpu', 0)
    Y_ortvalue = onnxruntime.OrtValue.ortvalue_from_shape_and_type([3, 2], np.float32, 'cpu', 0)
    session = onnxruntime.InferenceSession(
        'io_model.onnx',
        providers=['CUDAExecutionProvider', 'CPUExecutionProvider'])
    io_binding = session.io_binding()
    io_binding.bind_ortvalue_input('input', X_ortvalue)
    io_binding.bind_ortvalue_output('output', Y_ortvalue)
    session.run_with_iobinding(io_binding)
    np.testing.assert_allclose(Y_ortvalue.numpy(), relu_plus_one(X))


def test_iobinding_pytorch_tensors(models):
    X = torch.from_numpy(models)
    # X is a PyTorch tensor on device
    session = onnxruntime.InferenceSession('model.onnx', providers=['CUDAExecutionProvider', 'CPUExecutionProvider'])
    binding = session.io_binding()

    X_tensor = X.contiguous()

    binding.bind_input(
        name='X',
        device_type='cpu',
        device_id=0,
        element_type=np.float32,
        shape=tuple(X_tensor.shape),
        buffer_ptr=X_tensor.data_ptr(),
    )

    # Allocate the PyTorch tensor for the model output
    Y_shape = (3, 2)  # You need to specify the output PyTorch tensor shape
    Y_tensor = torch.empty(Y_shape, dtype=torch.float32, device='cpu').contiguous()
    binding.bind_output(
        name='Y',
        device_type='cpu',
        device_id=0,
        element_type=np.float32,
        shape=tuple(Y_tensor.shape),
        buffer_ptr=Y_tensor.data_ptr(),
    )

    session.run_with_iobinding(binding)
    torch.testing.assert_close(Y_tensor, torch.relu(X) + 1)


def test_iobinding_pytorch_tensors_with_onnx_element_types(models):
    """The same with ONNX TensorProto numbers as element types, here float16."""
    save_model("model_fp16.onnx", "X", "Y", TensorProto.FLOAT16)
    X = torch.from_numpy(models).half()
    session = onnxruntime.InferenceSession('model_fp16.onnx',
                                           providers=['CUDAExecutionProvider', 'CPUExecutionProvider'])
    binding = session.io_binding()
    X_tensor = X.contiguous()
    binding.bind_input(name='X', device_type='cpu', device_id=0, element_type=TensorProto.FLOAT16,
                       shape=tuple(X_tensor.shape), buffer_ptr=X_tensor.data_ptr())
    Y_tensor = torch.empty((3, 2), dtype=torch.float16, device='cpu').contiguous()
    binding.bind_output(name='Y', device_type='cpu', device_id=0, element_type=TensorProto.FLOAT16,
                        shape=tuple(Y_tensor.shape), buffer_ptr=Y_tensor.data_ptr())
    session.run_with_iobinding(binding)
    np.testing.assert_array_equal(Y_tensor.numpy(), relu_plus_one(X.numpy()))


def test_cuda_devices_are_a_clear_error(models):
    with pytest.raises(onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument,
                       match="no CUDA execution provider is available"):
        onnxruntime.OrtValue.ortvalue_from_numpy(models, 'cuda', 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = onnxruntime.InferenceSession('io_model.onnx', providers=['CUDAExecutionProvider',
                                                                           'CPUExecutionProvider'])
    with pytest.raises(onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument, match="CUDA"):
        session.io_binding().bind_output('output', 'cuda')
