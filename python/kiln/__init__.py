"""Kiln: a fast ONNX inference runtime with ONNX Runtime's Python API.

``import kiln as ort`` runs ordinary ONNX Runtime scripts on Kiln's engine.
"""

import pkgutil

# A development build puts the compiled core in BUILD/py/kiln; an installed wheel has it here.
__path__ = pkgutil.extend_path(__path__, __name__)

from kiln import _C  # noqa: E402
from kiln.capi import onnxruntime_pybind11_state
from kiln.ops import (
    PythonOp,
    bfloat16,
    bool_,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    op,
    string,
    uint8,
    uint16,
    uint32,
    uint64,
)
from kiln.session import (
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    InferenceSession,
    ModelMetadata,
    NodeArg,
    RunOptions,
    SessionOptions,
    get_all_providers,
    get_available_providers,
    get_device,
    get_version_string,
)
from kiln.environment import (
    OrtAllocatorType,
    OrtArenaCfg,
    OrtMemoryInfo,
    OrtMemType,
    create_and_register_allocator,
    create_and_register_allocator_v2,
    disable_telemetry_events,
    enable_telemetry_events,
    get_build_info,
    has_collective_ops,
    set_default_logger_severity,
    set_default_logger_verbosity,
    set_seed,
)
from kiln.io_binding import IOBinding
from kiln.ortvalue import OrtDevice, OrtValue
from kiln.sparse import SparseFormat, SparseTensor

SessionIOBinding = IOBinding
OrtSparseFormat = SparseFormat

__version__ = _C.__version__

__all__ = [
    "ExecutionMode", "ExecutionOrder", "GraphOptimizationLevel", "InferenceSession", "ModelMetadata", "NodeArg",
    "RunOptions", "SessionOptions", "get_all_providers", "get_available_providers", "get_device",
    "get_version_string", "onnxruntime_pybind11_state", "__version__",
    "op", "PythonOp", "float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "uint16",
    "uint32", "uint64", "bool_", "string",
    "IOBinding", "SessionIOBinding", "OrtValue", "OrtDevice", "SparseTensor", "SparseFormat", "OrtSparseFormat",
    "OrtAllocatorType", "OrtArenaCfg", "OrtMemoryInfo", "OrtMemType", "create_and_register_allocator",
    "create_and_register_allocator_v2", "disable_telemetry_events", "enable_telemetry_events", "get_build_info",
    "has_collective_ops", "set_default_logger_severity", "set_default_logger_verbosity", "set_seed",
]
