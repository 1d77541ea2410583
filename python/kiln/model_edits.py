"""Model changes asked for through SessionOptions, applied to the ModelProto before Kiln loads it.

ONNX Runtime applies free dimension overrides and added initializers inside its session; Kiln
does the same edits here with the onnx package and hands the edited bytes to the engine. Sparse
initializers (and Constant nodes with a sparse_value) become dense the same way, because Kiln's
engine computes on dense tensors only.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from kiln.capi.onnxruntime_pybind11_state import InvalidArgument, InvalidGraph
from kiln.ortvalue import OrtValue, type_name

_BFLOAT16 = 16


class ModelEdits:
    """What a SessionOptions asks to change in the models it loads."""

    def __init__(self) -> None:
        self.dims_by_name: Dict[str, int] = {}
        self.dims_by_denotation: Dict[str, int] = {}
        self.initializers: Dict[str, OrtValue] = {}

    def __bool__(self) -> bool:
        return bool(self.dims_by_name or self.dims_by_denotation or self.initializers)


def prepare(model: Union[str, bytes], edits: Optional[ModelEdits], densify: bool) -> Tuple[Union[str, bytes], str]:
    """The model to give the engine and the folder its external data lives in.

    Unchanged when nothing is to be edited; otherwise the edited model's bytes. A model read from
    a file keeps its external data where it is: the engine resolves it from the returned folder.
    """
    if not edits and not densify:
        return model, ""
    import onnx

    if isinstance(model, str):
        base_dir = os.path.dirname(os.path.abspath(model))
        proto = onnx.load_model(model, load_external_data=False)
    else:
        base_dir = ""
        proto = onnx.load_model_from_string(model)
    if densify:
        _densify_graph(proto.graph, base_dir)
    if edits:
        _override_dims(proto.graph, edits)
        _replace_initializers(proto.graph, edits.initializers)
    return proto.SerializeToString(), base_dir


def _override_dims(graph: Any, edits: ModelEdits) -> None:
    for inp in graph.input:
        if not inp.type.HasField("tensor_type") or not inp.type.tensor_type.HasField("shape"):
            continue
        for axis, dim in enumerate(inp.type.tensor_type.shape.dim):
            value = None
            if dim.HasField("dim_param") and dim.dim_param in edits.dims_by_name:
                value = edits.dims_by_name[dim.dim_param]
            if dim.denotation and dim.denotation in edits.dims_by_denotation:
                value = edits.dims_by_denotation[dim.denotation]
                if dim.HasField("dim_value") and dim.dim_value != value:
                    raise InvalidArgument(f"free dimension override of denotation '{dim.denotation}' to {value}: "
                                          f"input '{inp.name}' has that dimension (axis {axis}) fixed at "
                                          f"{dim.dim_value}")
            if value is not None:
                dim.dim_value = value  # replaces dim_param (one of)


def _replace_initializers(graph: Any, initializers: Dict[str, OrtValue]) -> None:
    from onnx import numpy_helper

    by_name = {t.name: t for t in graph.initializer}
    for name, value in initializers.items():
        tensor = by_name.get(name)
        if tensor is None:
            raise InvalidArgument(f"add_initializer: the model has no initializer named '{name}'")
        arr, code = value._value, value.element_type()
        if code != tensor.data_type or list(arr.shape) != list(tensor.dims):
            raise InvalidArgument(f"add_initializer '{name}': the model's initializer is "
                                  f"{_type_text(tensor.data_type)} {list(tensor.dims)}, the OrtValue is "
                                  f"{_type_text(code)} {list(arr.shape)}")
        new = numpy_helper.from_array(arr, name)
        new.data_type = code  # bfloat16 travels in a uint16 array
        tensor.CopyFrom(new)


def _type_text(code: int) -> str:
    try:
        return type_name(code)
    except KeyError:
        return f"type {code}"


def _densify_graph(graph: Any, base_dir: str) -> None:
    from onnx import AttributeProto, helper

    dense_names = {}
    for sp in graph.sparse_initializer:
        tensor = _dense_tensor(sp, base_dir, sp.values.name)
        graph.initializer.append(tensor)
        dense_names[tensor.name] = tensor
    del graph.sparse_initializer[:]
    for inp in graph.input:  # IR < 4 models declare initializers as inputs too
        if inp.name in dense_names and inp.type.HasField("sparse_tensor_type"):
            t = dense_names[inp.name]
            inp.type.CopyFrom(helper.make_tensor_type_proto(t.data_type, list(t.dims)))
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.SPARSE_TENSOR and node.op_type == "Constant" and attr.name == "sparse_value":
                dense = _dense_tensor(attr.sparse_tensor, base_dir, "")
                attr.ClearField("sparse_tensor")
                attr.name, attr.type = "value", AttributeProto.TENSOR
                attr.t.CopyFrom(dense)
            elif attr.type == AttributeProto.GRAPH:
                _densify_graph(attr.g, base_dir)
            elif attr.type == AttributeProto.GRAPHS:
                for g in attr.graphs:
                    _densify_graph(g, base_dir)


def _dense_tensor(sp: Any, base_dir: str, name: str) -> Any:
    from onnx import numpy_helper

    what = f"sparse tensor '{sp.values.name or name}'"
    values = numpy_helper.to_array(sp.values, base_dir).reshape(-1)
    indices = numpy_helper.to_array(sp.indices, base_dir).astype(np.int64, copy=False)
    shape = [int(d) for d in sp.dims]
    if any(d < 0 for d in shape):
        raise InvalidGraph(f"{what}: dims must be >= 0, got {shape}")
    size = int(np.prod(shape, dtype=np.int64))
    nnz = values.shape[0]
    if indices.ndim == 1 and indices.shape[0] == nnz:
        flat = indices
    elif indices.ndim == 2 and indices.shape == (nnz, len(shape)):
        for axis, d in enumerate(shape):
            if nnz and (indices[:, axis].min() < 0 or indices[:, axis].max() >= d):
                raise InvalidGraph(f"{what}: indices of axis {axis} must lie in [0, {d}), got values in "
                                   f"[{indices[:, axis].min()}, {indices[:, axis].max()}]")
        flat = np.ravel_multi_index(tuple(indices.T), shape) if nnz else indices.reshape(-1)
    else:
        raise InvalidGraph(f"{what}: indices must have shape [{nnz}] (linear) or [{nnz}, {len(shape)}], got "
                           f"{list(indices.shape)}")
    if nnz and (flat.min() < 0 or flat.max() >= size):
        raise InvalidGraph(f"{what}: linear indices must lie in [0, {size}) for dims {shape}, got values in "
                           f"[{flat.min()}, {flat.max()}]")
    code = sp.values.data_type
    if code == _BFLOAT16:  # to_array widened the bits to float32; keep them as bfloat16 bits
        values = (values.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    dense = np.zeros(size, dtype=values.dtype) if values.dtype.kind != "O" else np.full(size, b"", dtype=object)
    dense[flat] = values
    tensor = numpy_helper.from_array(dense.reshape(shape), sp.values.name or name)
    tensor.data_type = code
    return tensor
