"""ONNX Runtime's Python session API, backed by Kiln's engine."""

from __future__ import annotations

import enum
import os
import warnings
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

from kiln import _C
from kiln.capi.onnxruntime_pybind11_state import Fail, InvalidArgument
from kiln.session_api import SessionApi, SessionOptionsApi

_CPU = "CPUExecutionProvider"
# The provider names ONNX Runtime knows; Kiln runs only on the CPU one.
_ALL_PROVIDERS = [
    "TensorrtExecutionProvider", "CUDAExecutionProvider", "MIGraphXExecutionProvider", "ROCMExecutionProvider",
    "OpenVINOExecutionProvider", "DnnlExecutionProvider", "TvmExecutionProvider", "VitisAIExecutionProvider",
    "QNNExecutionProvider", "NnapiExecutionProvider", "VSINPUExecutionProvider", "JsExecutionProvider",
    "CoreMLExecutionProvider", "ArmNNExecutionProvider", "ACLExecutionProvider", "DmlExecutionProvider",
    "RknpuExecutionProvider", "WebNNExecutionProvider", "WebGpuExecutionProvider", "XnnpackExecutionProvider",
    "CANNExecutionProvider", "AzureExecutionProvider", _CPU,
]

_TYPE_NAMES = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string", 9: "bool",
    10: "float16", 11: "double", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
}


def get_available_providers() -> List[str]:
    return [_CPU]


def get_all_providers() -> List[str]:
    return list(_ALL_PROVIDERS)


def get_device() -> str:
    return "CPU"


def get_version_string() -> str:
    return _C.__version__


class GraphOptimizationLevel(enum.IntEnum):
    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class ExecutionOrder(enum.IntEnum):
    DEFAULT = 0
    PRIORITY_BASED = 1
    MEMORY_EFFICIENT = 2


class SessionOptions(SessionOptionsApi):
    """Options for creating an InferenceSession, with ONNX Runtime's names and defaults."""

    def __init__(self) -> None:
        self.intra_op_num_threads = 0
        self.inter_op_num_threads = 0
        self.graph_optimization_level = GraphOptimizationLevel.ORT_ENABLE_ALL
        self.execution_mode = ExecutionMode.ORT_SEQUENTIAL
        self.execution_order = ExecutionOrder.DEFAULT
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.enable_profiling = False
        self.profile_file_prefix = "onnxruntime_profile_"
        self.enable_mem_pattern = True
        self.enable_mem_reuse = True
        self.enable_cpu_mem_arena = True
        self.optimized_model_filepath = ""
        self.use_deterministic_compute = False
        self._config: Dict[str, str] = {}
        self._python_ops: List[Any] = []

    def register_python_op(self, python_op: Any) -> None:
        """Gives an op made by ``kiln.op`` to the sessions created with these options only
        (ahead of any registered op or kernel of the same domain and type)."""
        from kiln import ops
        self._python_ops.append(ops._check_session_op(python_op))

    def add_session_config_entry(self, key: str, value: str) -> None:
        self._config[str(key)] = str(value)

    def get_session_config_entry(self, key: str) -> str:
        if key not in self._config:
            raise RuntimeError(f"SessionOptions does not have configuration with key: {key}")
        return self._config[key]


class RunOptions(_C.RunOptionsCore):
    """Per-run options, with ONNX Runtime's names. Setting ``terminate`` from another thread
    stops a run in progress (it fails with Fail) and leaves the session usable."""

    def __init__(self) -> None:
        super().__init__()
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.only_execute_path_to_fetches = False
        self._config: Dict[str, str] = {}

    def add_run_config_entry(self, key: str, value: str) -> None:
        self._config[str(key)] = str(value)

    def get_run_config_entry(self, key: str) -> str:
        if key not in self._config:
            raise RuntimeError(f"RunOptions does not have configuration with key: {key}")
        return self._config[key]


def _type_string(t: Dict[str, Any]) -> str:
    kind = t["kind"]
    if kind == "tensor":
        return f"tensor({_TYPE_NAMES.get(t['elem_type'], 'undefined')})"
    if kind == "sparse_tensor":
        return f"sparse_tensor({_TYPE_NAMES.get(t['elem_type'], 'undefined')})"
    if kind in ("seq", "optional"):
        inner = _type_string(t["elem"]) if t["elem"] else "undefined"
        return f"{kind}({inner})"
    return kind


class NodeArg:
    """A graph input or output: name, ONNX type string and shape (ints, symbolic names as str)."""

    def __init__(self, name: str, type_info: Dict[str, Any]) -> None:
        self.name = name
        self.type = _type_string(type_info)
        shape = type_info["shape"]
        self.shape = list(shape) if shape is not None else []

    def __repr__(self) -> str:
        return f"NodeArg(name='{self.name}', type='{self.type}', shape={self.shape})"


class ModelMetadata:
    def __init__(self, meta: Dict[str, Any]) -> None:
        self.producer_name = meta["producer_name"]
        self.graph_name = meta["graph_name"]
        self.domain = meta["domain"]
        self.description = meta["description"]
        self.graph_description = meta["graph_description"]
        self.version = meta["version"]
        self.custom_metadata_map = dict(meta["custom_metadata_map"])


def _provider_names(providers: Optional[Sequence[Any]]) -> List[str]:
    names = []
    for p in providers or []:
        names.append(p[0] if isinstance(p, (tuple, list)) else p)
    return names


class InferenceSession(SessionApi):
    """Loads an ONNX model and runs it on Kiln's CPU engine.

    ``path_or_bytes`` is a file path, the model's bytes, or an ``onnx.ModelProto``.
    """

    def __init__(self, path_or_bytes: Any, sess_options: Optional[SessionOptions] = None,
                 providers: Optional[Sequence[Any]] = None, provider_options: Optional[Sequence[Dict]] = None,
                 **kwargs: Any) -> None:
        self._sess_options = sess_options or SessionOptions()
        self._providers, self._provider_options = self._choose_providers(providers, provider_options)
        model: Any = path_or_bytes
        if hasattr(model, "SerializeToString"):
            model = model.SerializeToString()
        if isinstance(model, (bytes, bytearray, memoryview)):
            self._model_path = None
            model = bytes(model)
        elif isinstance(model, (str, os.PathLike)):
            self._model_path = os.fspath(model)
            model = self._model_path
        else:
            raise TypeError(f"Unable to load from type '{type(path_or_bytes)}': give a path, bytes or an onnx.ModelProto")
        opts = self._sess_options
        self._sess = self._create_core(model, lambda m, base_dir: _C.Session(
            m, base_dir=base_dir, threads=int(opts.intra_op_num_threads),
            opt_level=int(opts.graph_optimization_level), profile=bool(opts.enable_profiling),
            python_ops=[o._def for o in getattr(opts, "_python_ops", [])], config=dict(opts._config)))
        if opts.optimized_model_filepath:
            with open(opts.optimized_model_filepath, "wb") as f:
                f.write(self._sess.optimized_model())
        self._inputs = [NodeArg(n, t) for n, t in self._sess.inputs()]
        self._outputs = [NodeArg(n, t) for n, t in self._sess.outputs()]
        self._overridable = [NodeArg(n, t) for n, t in self._sess.overridable_initializers()]

    @staticmethod
    def _choose_providers(providers, provider_options):
        if providers is None:
            return [_CPU], [{}]
        names = _provider_names(providers)
        opts = [dict(p[1]) if isinstance(p, (tuple, list)) and len(p) > 1 else {} for p in providers]
        if provider_options is not None:
            if len(provider_options) != len(names):
                raise ValueError("'providers' and 'provider_options' should be the same length if both are given.")
            opts = [dict(o) for o in provider_options]
        chosen, chosen_opts = [], []
        for name, o in zip(names, opts):
            if name not in _ALL_PROVIDERS:
                raise ValueError(f"Unknown execution provider '{name}'. Known: {', '.join(_ALL_PROVIDERS)}")
            if name in get_available_providers():
                chosen.append(name)
                chosen_opts.append(o)
            else:
                warnings.warn(f"Specified provider '{name}' is not in available provider names. "
                              f"Available providers: '{', '.join(get_available_providers())}'", stacklevel=3)
        if not chosen:
            raise ValueError(f"None of the requested execution providers {names} is available; "
                             f"available: {get_available_providers()}")
        return chosen, chosen_opts

    def get_inputs(self) -> List[NodeArg]:
        return list(self._inputs)

    def get_outputs(self) -> List[NodeArg]:
        return list(self._outputs)

    def get_overridable_initializers(self) -> List[NodeArg]:
        return list(self._overridable)

    def get_modelmeta(self) -> ModelMetadata:
        return ModelMetadata(self._sess.metadata())

    def get_providers(self) -> List[str]:
        return list(self._providers)

    def get_provider_options(self) -> Dict[str, Dict[str, str]]:
        return {p: {str(k): str(v) for k, v in o.items()} for p, o in zip(self._providers, self._provider_options)}

    def get_session_options(self) -> SessionOptions:
        return self._sess_options

    def set_providers(self, providers: Optional[Sequence[Any]] = None, provider_options=None) -> None:
        self._providers, self._provider_options = self._choose_providers(providers, provider_options)

    def run(self, output_names: Optional[Iterable[str]], input_feed: Dict[str, Any],
            run_options: Optional[RunOptions] = None) -> List[Any]:
        if not isinstance(input_feed, dict):
            raise InvalidArgument(f"input_feed must be a dict of input name to array, got {type(input_feed).__name__}")
        names = list(output_names) if output_names else None
        return self._sess.run(names, self._feeds(input_feed), run_options)

    @property
    def _model_bytes_or_path(self):
        return self._model_path
