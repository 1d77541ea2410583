"""SessionOptions (free dimensions, initializers, optimized model file, custom-op libraries),
RunOptions (terminate, tags, config entries), run_async and the process-wide functions."""

import os
import threading
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import kiln
from kiln import environment
from kiln.capi import onnxruntime_pybind11_state as state

RNG = np.random.default_rng(5)
W = RNG.standard_normal((4, 3)).astype(np.float32)
B = RNG.standard_normal(3).astype(np.float32)


def mlp_model(denotation=True):
    """z = relu(x @ w + b); x: float [batch, 4] (batch denoted DATA_BATCH)."""
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Add", ["y", "b"], ["yb"]),
         helper.make_node("Relu", ["yb"], ["z"])], "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(W, "w"), numpy_helper.from_array(B, "b")])
    if denotation:
        g.input[0].type.tensor_type.shape.dim[0].denotation = "DATA_BATCH"
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def ref(x, w=W, b=B):
    return np.maximum(x @ w + b, 0)


def loop_model():
    """x = x0 + n (one Add per Loop iteration, n iterations)."""
    body = helper.make_graph(
        [helper.make_node("Add", ["x_in", "one"], ["x_out"]), helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_out", TensorProto.FLOAT, [8])],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    g = helper.make_graph(
        [helper.make_node("Loop", ["n", "", "x0"], ["x"], body=body)], "loop",
        [helper.make_tensor_value_info("n", TensorProto.INT64, []),
         helper.make_tensor_value_info("x0", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_free_dimension_override_by_name_and_denotation():
    m = mlp_model().SerializeToString()
    for how in ("name", "denotation"):
        so = kiln.SessionOptions()
        if how == "name":
            so.add_free_dimension_override_by_name("batch", 3)
        else:
            so.add_free_dimension_override_by_denotation("DATA_BATCH", 3)
        sess = kiln.InferenceSession(m, so)
        assert sess.get_inputs()[0].shape == [3, 4]
        x = RNG.standard_normal((3, 4)).astype(np.float32)
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], ref(x), rtol=1e-5, atol=1e-6)
        with pytest.raises(state.InvalidArgument, match="index: 0 Got: 5 Expected: 3"):
            sess.run(None, {"x": np.zeros((5, 4), np.float32)})
    so = kiln.SessionOptions()
    so.add_free_dimension_override_by_name("no_such_dim", 7)  # ignored, as in ONNX Runtime
    assert kiln.InferenceSession(m, so).get_inputs()[0].shape == ["batch", 4]
    with pytest.raises(state.InvalidArgument, match="integer >= 0"):
        so.add_free_dimension_override_by_name("batch", -1)


def test_denotation_override_conflicting_with_a_fixed_dim():
    m = mlp_model()
    m.graph.input[0].type.tensor_type.shape.dim[1].denotation = "DATA_CHANNEL"  # fixed at 4
    so = kiln.SessionOptions()
    so.add_free_dimension_override_by_denotation("DATA_CHANNEL", 5)
    with pytest.raises(state.InvalidArgument, match="input 'x' has that dimension \\(axis 1\\) fixed at 4"):
        kiln.InferenceSession(m.SerializeToString(), so)


def test_edits_keep_external_data_of_models_loaded_from_files(tmp_path):
    path = str(tmp_path / "mlp.onnx")
    onnx.save_model(mlp_model(), path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    assert os.path.exists(tmp_path / "weights.bin")
    other = tmp_path / "elsewhere"
    other.mkdir()
    cwd = os.getcwd()
    os.chdir(other)  # the external data is found next to the model, not in the working folder
    try:
        so = kiln.SessionOptions()
        so.add_free_dimension_override_by_name("batch", 2)
        sess = kiln.InferenceSession(path, so)
    finally:
        os.chdir(cwd)
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], ref(x), rtol=1e-5, atol=1e-6)


def test_add_initializer_replaces_weights(tmp_path):
    w2 = RNG.standard_normal((4, 3)).astype(np.float32)
    so = kiln.SessionOptions()
    so.add_initializer("w", kiln.OrtValue.ortvalue_from_numpy(w2))
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    sess = kiln.InferenceSession(mlp_model().SerializeToString(), so)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], ref(x, w=w2), rtol=1e-5, atol=1e-6)
    # from a file whose weights are external data
    path = str(tmp_path / "mlp.onnx")
    onnx.save_model(mlp_model(), path, save_as_external_data=True, location="w.bin", size_threshold=0)
    so.add_external_initializers(["b"], [kiln.OrtValue.ortvalue_from_numpy(np.zeros(3, np.float32))])
    sess = kiln.InferenceSession(path, so)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], ref(x, w=w2, b=0), rtol=1e-5, atol=1e-6)


def test_add_initializer_errors():
    m = mlp_model().SerializeToString()
    for name, value, message in [
            ("w", np.zeros((4, 3)), r"the model's initializer is float \[4, 3\], the OrtValue is double \[4, 3\]"),
            ("w", np.zeros((3, 4), np.float32), r"is float \[4, 3\], the OrtValue is float \[3, 4\]"),
            ("nope", np.zeros(1, np.float32), "the model has no initializer named 'nope'")]:
        so = kiln.SessionOptions()
        so.add_initializer(name, kiln.OrtValue.ortvalue_from_numpy(value))
        with pytest.raises(state.InvalidArgument, match=message):
            kiln.InferenceSession(m, so)
    with pytest.raises(state.InvalidArgument, match="expected a tensor OrtValue"):
        kiln.SessionOptions().add_initializer("w", np.zeros(1))


def test_custom_ops_library_points_to_python_ops():
    with pytest.raises(state.NotImplemented, match=r"custom-op libraries.*kiln\.op"):
        kiln.SessionOptions().register_custom_ops_library("libcustom_ops.so")


def test_optimized_model_file_is_a_valid_onnx_model(tmp_path):
    so = kiln.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    so.add_free_dimension_override_by_name("batch", 2)
    sess = kiln.InferenceSession(mlp_model().SerializeToString(), so)
    saved = onnx.load(so.optimized_model_filepath)
    onnx.checker.check_model(saved)
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    again = kiln.InferenceSession(so.optimized_model_filepath)
    np.testing.assert_allclose(again.run(None, {"x": x})[0], sess.run(None, {"x": x})[0], rtol=1e-6)


def test_recorded_options_and_config_entries():
    so = kiln.SessionOptions()
    so.enable_mem_pattern = False
    so.enable_cpu_mem_arena = False
    so.execution_order = kiln.ExecutionOrder.PRIORITY_BASED
    so.log_severity_level = 3
    so.log_verbosity_level = 1
    so.logid = "test"
    so.use_deterministic_compute = True
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(RuntimeError, match="does not have configuration with key: nope"):
        so.get_session_config_entry("nope")
    sess = kiln.InferenceSession(mlp_model().SerializeToString(), so)
    assert sess.get_session_options() is so
    sess.disable_fallback()
    sess.enable_fallback()
    ro = kiln.RunOptions()
    ro.log_severity_level = 0
    ro.log_verbosity_level = 2
    ro.logid = "run"
    ro.run_tag = "tagged"
    ro.only_execute_path_to_fetches = True
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    assert ro.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"
    with pytest.raises(RuntimeError, match="nope"):
        ro.get_run_config_entry("nope")
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x}, ro)[0], ref(x), rtol=1e-5)
    with pytest.raises(TypeError, match="run_options must be a RunOptions, got dict"):
        sess.run(None, {"x": x}, {"run_tag": "tagged"})


def test_terminate_stops_a_long_loop_and_the_session_stays_usable():
    sess = kiln.InferenceSession(loop_model())
    ro = kiln.RunOptions()
    timer = threading.Timer(0.2, lambda: setattr(ro, "terminate", True))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(state.Fail, match="Exiting due to terminate flag being set to true."):
        sess.run(None, {"n": np.array(10 ** 8, np.int64), "x0": np.zeros(8, np.float32)}, ro)
    assert time.monotonic() - t0 < 10  # 10**8 iterations would take minutes
    timer.join()
    assert ro.terminate
    ro.terminate = False
    (x,) = sess.run(None, {"n": np.array(100, np.int64), "x0": np.ones(8, np.float32)}, ro)
    np.testing.assert_array_equal(x, np.full(8, 101, np.float32))
    (x,) = sess.run(None, {"n": np.array(3, np.int64), "x0": np.zeros(8, np.float32)})
    np.testing.assert_array_equal(x, np.full(8, 3, np.float32))


def test_run_async_calls_back_with_outputs_or_the_error():
    sess = kiln.InferenceSession(mlp_model().SerializeToString())
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    done = threading.Event()
    got = {}

    def callback(outputs, user_data, err):
        got.update(outputs=outputs, user_data=user_data, err=err, thread=threading.current_thread())
        done.set()

    assert sess.run_async(["z"], {"x": x}, callback, {"id": 1}) is None
    assert done.wait(30)
    assert got["err"] == "" and got["user_data"] == {"id": 1}
    assert got["thread"] is not threading.main_thread()
    np.testing.assert_allclose(got["outputs"][0], ref(x), rtol=1e-5, atol=1e-6)
    done.clear()
    sess.run_async(None, {"x": x.astype(np.float64)}, callback, None, kiln.RunOptions())
    assert done.wait(30)
    assert got["outputs"] == [] and "tensor(double)" in got["err"]
    with pytest.raises(state.InvalidArgument, match="callback must be callable"):
        sess.run_async(None, {"x": x}, None, None)


def test_concurrent_async_runs():
    sess = kiln.InferenceSession(mlp_model().SerializeToString())
    xs = [RNG.standard_normal((i + 1, 4)).astype(np.float32) for i in range(8)]
    results = {}
    remaining = threading.Semaphore(0)

    def callback(outputs, i, err):
        results[i] = (outputs, err)
        remaining.release()

    for i, x in enumerate(xs):
        sess.run_async(None, {"x": x}, callback, i)
    for _ in xs:
        assert remaining.acquire(timeout=30)
    for i, x in enumerate(xs):
        outputs, err = results[i]
        assert err == ""
        np.testing.assert_allclose(outputs[0], ref(x), rtol=1e-5, atol=1e-6)


def test_process_wide_functions():
    kiln.set_seed(42)
    assert environment.settings["seed"] == 42
    kiln.set_default_logger_severity(3)
    kiln.set_default_logger_verbosity(1)
    assert environment.settings["logger_severity"] == 3
    kiln.set_default_logger_severity(2)
    with pytest.raises(state.InvalidArgument, match="Invalid logging severity 7"):
        kiln.set_default_logger_severity(7)
    with pytest.raises(state.InvalidArgument, match="seed must be an integer"):
        kiln.set_seed("x")
    assert kiln.get_build_info().startswith("Kiln ")
    assert kiln.has_collective_ops() is False
    kiln.enable_telemetry_events()
    kiln.disable_telemetry_events()
    assert kiln.get_available_providers() == ["CPUExecutionProvider"]
    assert "CUDAExecutionProvider" in kiln.get_all_providers()


def test_allocators_are_recorded():
    before = len(environment.registered_allocators)
    info = kiln.OrtMemoryInfo("Cpu", kiln.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, kiln.OrtMemType.DEFAULT)
    cfg = kiln.OrtArenaCfg(0, -1, -1, -1)
    kiln.create_and_register_allocator(info, cfg)
    cfg2 = kiln.OrtArenaCfg({"max_mem": 1 << 20, "arena_extend_strategy": 1, "initial_chunk_size_bytes": 4096})
    assert (cfg2.max_mem, cfg2.arena_extend_strategy, cfg2.max_dead_bytes_per_chunk) == (1 << 20, 1, -1)
    kiln.create_and_register_allocator_v2("CPUExecutionProvider", info, {}, cfg2)
    assert environment.registered_allocators[before:] == [(info, cfg), (info, cfg2)]
    with pytest.raises(state.InvalidArgument, match="CPU memory only"):
        kiln.OrtMemoryInfo("Cuda", kiln.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, kiln.OrtMemType.DEFAULT)
    with pytest.raises(state.InvalidArgument, match="CUDAExecutionProvider' is not available"):
        kiln.create_and_register_allocator_v2("CUDAExecutionProvider", info, {}, None)
    with pytest.raises(state.InvalidArgument, match="unknown key 'max_memory'"):
        kiln.OrtArenaCfg({"max_memory": 1})
    del environment.registered_allocators[before:]
