"""SparseTensor: ONNX Runtime's COO and CSR sparse tensors, over numpy arrays on the CPU.

The values and index arrays are referenced, not copied (string values are Python objects).
Kiln's engine computes on dense tensors: sparse initializers of a model are made dense when the
session loads it (see kiln.model_edits), and sparse tensors are not taken as run inputs.
"""

from __future__ import annotations

import enum
from typing import Any, Sequence

import numpy as np

from kiln.capi.onnxruntime_pybind11_state import InvalidArgument
from kiln.ortvalue import check_device, onnx_type_of, type_name


class SparseFormat(enum.IntEnum):
    """ONNX Runtime's OrtSparseFormat."""
    ORT_SPARSE_UNDEFINED = 0
    ORT_SPARSE_COO = 1
    ORT_SPARSE_CSRC = 2
    ORT_SPARSE_BLOCK_SPARSE = 4


class SparseCooView:
    def __init__(self, indices: np.ndarray) -> None:
        self._indices = indices

    def indices(self) -> np.ndarray:
        """The COO indices: linear (nnz,) or coordinates (nnz, 2)."""
        return self._indices


class SparseCsrView:
    def __init__(self, inner: np.ndarray, outer: np.ndarray) -> None:
        self._inner, self._outer = inner, outer

    def inner(self) -> np.ndarray:
        """Column index of each value (nnz,)."""
        return self._inner

    def outer(self) -> np.ndarray:
        """Row starts into the values (rows + 1,)."""
        return self._outer


def _int64_vector(a: Any, what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype != np.int64:
        raise InvalidArgument(f"{what} must be an int64 numpy array, got {arr.dtype}")
    return np.ascontiguousarray(arr)


def _values(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidArgument(f"values must be 1-D (one per non-zero element), got shape {list(arr.shape)}")
    if arr.dtype.kind in "US":
        arr = arr.astype(object)
    onnx_type_of(arr.dtype)
    return np.ascontiguousarray(arr)


def _dense_shape(dense_shape: Any) -> np.ndarray:
    try:
        shape = np.array([int(d) for d in dense_shape], dtype=np.int64)
    except (TypeError, ValueError):
        raise InvalidArgument(f"dense_shape must be a sequence of integers, got {dense_shape!r}") from None
    if (shape < 0).any():
        raise InvalidArgument(f"dense_shape dimensions must be >= 0, got {shape.tolist()}")
    return shape


class SparseTensor:
    """A sparse tensor in COO or CSR(C) format."""

    def __init__(self, fmt: SparseFormat, dense_shape: np.ndarray, values: np.ndarray, indices: Sequence[np.ndarray]):
        self._format = fmt
        self._dense_shape = dense_shape
        self._values_arr = values
        self._indices = tuple(indices)
        self._onnx = onnx_type_of(values.dtype)

    @staticmethod
    def sparse_coo_from_numpy(dense_shape: Sequence[int], values: Any, coo_indices: Any,
                              ort_device: Any) -> "SparseTensor":
        """A COO tensor. `coo_indices` (int64) holds either one linear index per value (shape
        (nnz,)) or the coordinates of a 2-D tensor (shape (nnz, 2), or (2 * nnz,) flattened)."""
        check_device(ort_device)
        shape = _dense_shape(dense_shape)
        vals = _values(values)
        idx = _int64_vector(coo_indices, "coo_indices")
        nnz = vals.shape[0]
        size = int(np.prod(shape, dtype=np.int64))
        if idx.ndim == 1 and idx.shape[0] == nnz:
            if nnz and (idx.min() < 0 or idx.max() >= size):
                raise InvalidArgument(f"coo_indices: linear indices must lie in [0, {size}) for dense shape "
                                      f"{shape.tolist()}, got values in [{idx.min()}, {idx.max()}]")
        elif idx.size == 2 * nnz and (idx.ndim == 1 or (idx.ndim == 2 and idx.shape[1] == 2)):
            if shape.size != 2:
                raise InvalidArgument(f"coo_indices: 2-D coordinates need a 2-D dense shape, got {shape.tolist()}")
            coords = idx.reshape(nnz, 2)
            for axis in range(2):
                if nnz and (coords[:, axis].min() < 0 or coords[:, axis].max() >= shape[axis]):
                    raise InvalidArgument(f"coo_indices: coordinates of axis {axis} must lie in [0, {shape[axis]}), "
                                          f"got values in [{coords[:, axis].min()}, {coords[:, axis].max()}]")
        else:
            raise InvalidArgument(f"coo_indices: expected {nnz} linear indices or {nnz} (row, column) pairs for "
                                  f"{nnz} values, got shape {list(idx.shape)}")
        return SparseTensor(SparseFormat.ORT_SPARSE_COO, shape, vals, (idx,))

    @staticmethod
    def sparse_csr_from_numpy(dense_shape: Sequence[int], values: Any, inner_indices: Any, outer_indices: Any,
                              ort_device: Any) -> "SparseTensor":
        """A CSR tensor of a 2-D dense shape: `inner_indices` are the values' columns,
        `outer_indices` the start of each row in `values` (rows + 1 entries, int64)."""
        check_device(ort_device)
        shape = _dense_shape(dense_shape)
        if shape.size != 2:
            raise InvalidArgument(f"CSR tensors are 2-D, got dense shape {shape.tolist()}")
        vals = _values(values)
        inner = _int64_vector(inner_indices, "inner_indices")
        outer = _int64_vector(outer_indices, "outer_indices")
        nnz = vals.shape[0]
        rows, cols = int(shape[0]), int(shape[1])
        if inner.ndim != 1 or inner.shape[0] != nnz:
            raise InvalidArgument(f"inner_indices: expected {nnz} column indices (one per value), "
                                  f"got shape {list(inner.shape)}")
        if nnz and (inner.min() < 0 or inner.max() >= cols):
            raise InvalidArgument(f"inner_indices: columns must lie in [0, {cols}), "
                                  f"got values in [{inner.min()}, {inner.max()}]")
        if nnz == 0 and outer.size == 0:
            pass  # ONNX Runtime allows an empty CSR tensor without row starts
        elif outer.ndim != 1 or outer.shape[0] != rows + 1:
            raise InvalidArgument(f"outer_indices: expected {rows + 1} row starts (rows + 1), got shape "
                                  f"{list(outer.shape)}")
        elif outer[0] != 0 or outer[-1] != nnz or (np.diff(outer) < 0).any():
            raise InvalidArgument(f"outer_indices must rise from 0 to the number of values ({nnz}) without "
                                  f"decreasing, got {outer.tolist()[:8]}{' ...' if outer.size > 8 else ''}")
        return SparseTensor(SparseFormat.ORT_SPARSE_CSRC, shape, vals, (inner, outer))

    def values(self) -> np.ndarray:
        """The non-zero values (the array given, not a copy)."""
        return self._values_arr

    def format(self) -> SparseFormat:
        return self._format

    def dense_shape(self) -> np.ndarray:
        return self._dense_shape.copy()

    def data_type(self) -> str:
        return f"sparse_tensor({type_name(self._onnx)})"

    def device_name(self) -> str:
        return "cpu"

    def as_coo_view(self) -> SparseCooView:
        self._expect(SparseFormat.ORT_SPARSE_COO, "as_coo_view()")
        return SparseCooView(self._indices[0])

    def as_csrc_view(self) -> SparseCsrView:
        self._expect(SparseFormat.ORT_SPARSE_CSRC, "as_csrc_view()")
        return SparseCsrView(self._indices[0], self._indices[1])

    def as_blocksparse_view(self) -> Any:
        self._expect(SparseFormat.ORT_SPARSE_BLOCK_SPARSE, "as_blocksparse_view()")

    def to_cuda(self, ort_device: Any) -> "SparseTensor":
        check_device(ort_device)  # anything but the CPU fails here, naming the missing provider
        raise InvalidArgument("to_cuda(): no CUDA execution provider is available; Kiln runs on the CPU only")

    def _expect(self, fmt: SparseFormat, what: str) -> None:
        if self._format != fmt:
            raise InvalidArgument(f"{what}: this sparse tensor is {self._format.name}, not {fmt.name}"
                                  + (" (Kiln makes COO and CSR tensors only)"
                                     if fmt == SparseFormat.ORT_SPARSE_BLOCK_SPARSE else ""))

    def __repr__(self) -> str:
        return (f"SparseTensor({self._format.name}, {self.data_type()}, dense_shape={self._dense_shape.tolist()}, "
                f"nnz={self._values_arr.shape[0]})")
