"""Kiln: a fast ONNX inference runtime with ONNX Runtime's Python API.

``import kiln as ort`` runs ordinary ONNX Runtime scripts on Kiln's engine.
"""

from kiln import _C
from kiln.capi import onnxruntime_pybind11_state
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

__version__ = _C.__version__

__all__ = [
    "ExecutionMode", "ExecutionOrder", "GraphOptimizationLevel", "InferenceSession", "ModelMetadata", "NodeArg",
    "RunOptions", "SessionOptions", "get_all_providers", "get_available_providers", "get_device",
    "get_version_string", "onnxruntime_pybind11_state", "__version__",
]
