"""OrtValue and OrtDevice: ONNX Runtime's value and device classes over numpy memory.

Kiln runs on the CPU, so an OrtValue is a thin wrapper around numpy: a tensor OrtValue views its
array (no copy), keeps it alive, and is fed to the engine as that array. DLPack moves tensors to
and from other libraries (PyTorch, numpy) without copies.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

import numpy as np

from kiln.capi.onnxruntime_pybind11_state import InvalidArgument

# ONNX TensorProto element types: number -> (name in type strings, numpy dtype holding the values).
_ONNX_TYPES = {
    1: ("float", np.dtype(np.float32)), 2: ("uint8", np.dtype(np.uint8)), 3: ("int8", np.dtype(np.int8)),
    4: ("uint16", np.dtype(np.uint16)), 5: ("int16", np.dtype(np.int16)), 6: ("int32", np.dtype(np.int32)),
    7: ("int64", np.dtype(np.int64)), 8: ("string", np.dtype(object)), 9: ("bool", np.dtype(np.bool_)),
    10: ("float16", np.dtype(np.float16)), 11: ("double", np.dtype(np.float64)), 12: ("uint32", np.dtype(np.uint32)),
    13: ("uint64", np.dtype(np.uint64)), 14: ("complex64", np.dtype(np.complex64)),
    15: ("complex128", np.dtype(np.complex128)),
    16: ("bfloat16", np.dtype(np.uint16)),  # numpy has no bfloat16: uint16 arrays carry the bits
}
_BFLOAT16 = 16
_ONNX_OF_NUMPY = {dt: code for code, (_, dt) in _ONNX_TYPES.items() if code != _BFLOAT16}

_KDLCPU = 1  # DLPack's device type code for host memory


def onnx_type_of(dtype: np.dtype) -> int:
    """The ONNX element type of a numpy dtype (str/bytes/object arrays are strings)."""
    if dtype.kind in "USO":
        return 8
    code = _ONNX_OF_NUMPY.get(dtype)
    if code is None:
        raise InvalidArgument(f"numpy dtype {dtype} has no ONNX element type")
    return code


def numpy_dtype(element_type: Any) -> np.dtype:
    """The numpy dtype for an element type given as ONNX Runtime accepts it: a numpy dtype or
    type (np.float32), or an ONNX TensorProto number (onnx.TensorProto.FLOAT)."""
    if isinstance(element_type, (int, np.integer)) and not isinstance(element_type, bool):
        if int(element_type) not in _ONNX_TYPES:
            raise InvalidArgument(f"{int(element_type)} is not an ONNX tensor element type "
                                  f"(expected one of {sorted(_ONNX_TYPES)})")
        return _ONNX_TYPES[int(element_type)][1]
    try:
        dt = np.dtype(element_type)
    except TypeError:
        raise InvalidArgument(f"element type {element_type!r} is neither a numpy type nor an ONNX "
                              "TensorProto number") from None
    onnx_type_of(dt)  # rejects dtypes without an ONNX type
    return dt


def _onnx_type(element_type: Any) -> int:
    if isinstance(element_type, (int, np.integer)) and not isinstance(element_type, bool):
        numpy_dtype(element_type)
        return int(element_type)
    return onnx_type_of(numpy_dtype(element_type))


def type_name(onnx_type: int) -> str:
    return _ONNX_TYPES[onnx_type][0]


def check_device(device_type: Any, device_id: int = 0) -> None:
    """Accepts the CPU in every spelling ONNX Runtime takes; any other device is a clear error."""
    if isinstance(device_type, OrtDevice):
        device_type, device_id = device_type.device_type(), device_type.device_id()
    if isinstance(device_type, (int, np.integer)) and not isinstance(device_type, bool):
        name = {OrtDevice.cpu(): "cpu", OrtDevice.cuda(): "cuda", OrtDevice.fpga(): "fpga",
                OrtDevice.npu(): "npu"}.get(int(device_type), str(int(device_type)))
    elif isinstance(device_type, str):
        name = device_type.lower()
    else:
        raise InvalidArgument(f"device type must be a string such as 'cpu', got {device_type!r}")
    if name != "cpu":
        what = "CUDA execution provider" if name in ("cuda", "gpu") else f"'{device_type}' device"
        raise InvalidArgument(f"device '{device_type}': no {what} is available; Kiln runs on the CPU only "
                              "(use device_type='cpu')")
    if not isinstance(device_id, (int, np.integer)) or device_id < 0:
        raise InvalidArgument(f"device_id must be an integer >= 0, got {device_id!r}")


class OrtDevice:
    """A device: type (OrtDevice.cpu() is the only one Kiln has), memory type and id."""

    def __init__(self, device_type: Any = 0, memory_type: int = 0, device_id: int = 0) -> None:
        if isinstance(device_type, OrtDevice):  # ONNX Runtime wraps a C device the same way
            device_type, memory_type, device_id = device_type._type, device_type._memory, device_type._id
        check_device(device_type, device_id)
        self._type = OrtDevice.cpu()
        self._memory = int(memory_type)
        self._id = int(device_id)

    @staticmethod
    def make(ort_device_name: str, device_id: int) -> "OrtDevice":
        check_device(ort_device_name, device_id)
        return OrtDevice(OrtDevice.cpu(), OrtDevice.default_memory(), device_id)

    # Device type and memory type numbers, as ONNX Runtime's C.OrtDevice gives them.
    @staticmethod
    def cpu() -> int:
        return 0

    @staticmethod
    def cuda() -> int:
        return 1

    @staticmethod
    def fpga() -> int:
        return 2

    @staticmethod
    def npu() -> int:
        return 3

    @staticmethod
    def default_memory() -> int:
        return 0

    def device_type(self) -> int:
        return self._type

    def device_id(self) -> int:
        return self._id

    def device_mem_type(self) -> int:
        return self._memory

    def device_vendor_id(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OrtDevice) and (self._type, self._memory, self._id) == (
            other._type, other._memory, other._id)

    def __hash__(self) -> int:
        return hash((self._type, self._memory, self._id))

    def __repr__(self) -> str:
        return f"OrtDevice(cpu, memory_type={self._memory}, device_id={self._id})"


class _ArrayView:
    """Describes foreign memory to numpy (``np.asarray(view)``) and keeps its owner alive: the
    array numpy makes has this object as its base."""

    def __init__(self, interface: dict, owner: Any) -> None:
        self.__array_interface__ = interface
        self._owner = owner


def view_memory(address: int, dtype: np.dtype, shape: Sequence[int], owner: Any = None,
                strides: Optional[Sequence[int]] = None) -> np.ndarray:
    """A writeable numpy array over memory at `address` (no copy); `owner` is kept alive with it."""
    if int(np.prod(shape, dtype=np.int64)) == 0:
        return np.empty(shape, dtype)
    if not address:
        raise InvalidArgument("buffer_ptr is null for a non-empty tensor")
    interface = {"version": 3, "shape": tuple(int(d) for d in shape), "typestr": dtype.str, "data": (int(address), False)}
    if strides is not None:
        interface["strides"] = tuple(int(s) for s in strides)
    return np.asarray(_ArrayView(interface, owner))


def array_address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _check_shape(shape: Any, what: str) -> List[int]:
    try:
        dims = [int(d) for d in shape]
    except (TypeError, ValueError):
        raise InvalidArgument(f"{what}: shape must be a sequence of integers, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise InvalidArgument(f"{what}: shape dimensions must be >= 0, got {dims}")
    return dims


class _Capsule:
    """Presents a bare DLPack capsule with the protocol np.from_dlpack expects."""

    def __init__(self, capsule: Any) -> None:
        self._capsule = capsule

    def __dlpack__(self, stream: Any = None) -> Any:
        return self._capsule

    def __dlpack_device__(self):
        return (_KDLCPU, 0)


class OrtValue:
    """A tensor, a sequence of tensors, a sparse tensor or an empty optional.

    Tensor OrtValues view numpy arrays: ``ortvalue_from_numpy`` does not copy, and feeding the
    value to a session reads the same memory.
    """

    def __init__(self, ortvalue: Any = None, numpy_obj: Any = None) -> None:
        if isinstance(ortvalue, OrtValue):
            self._kind, self._value, self._onnx = ortvalue._kind, ortvalue._value, ortvalue._onnx
        elif ortvalue is None:
            self._kind, self._value, self._onnx = "none", None, None
        else:
            raise TypeError("OrtValue(...) wraps another OrtValue; make new ones with "
                            "OrtValue.ortvalue_from_numpy or ortvalue_from_shape_and_type")
        self._numpy_obj = numpy_obj  # kept alive with the value, as ONNX Runtime does

    @classmethod
    def _make(cls, kind: str, value: Any, onnx_type: Optional[int] = None) -> "OrtValue":
        v = cls.__new__(cls)
        v._kind, v._value, v._onnx, v._numpy_obj = kind, value, onnx_type, None
        return v

    @classmethod
    def _from_result(cls, value: Any) -> "OrtValue":
        """Wraps what InferenceSession.run returns for one output."""
        if value is None:
            return cls._make("none", None)
        if isinstance(value, list):
            return cls._make("seq", value)
        return cls._make("tensor", value)

    # -- construction ------------------------------------------------------------------------

    @staticmethod
    def ortvalue_from_numpy(numpy_obj: Any, device_type: Any = "cpu", device_id: int = 0,
                            vendor_id: int = -1) -> "OrtValue":
        """An OrtValue viewing `numpy_obj` (no copy when it is a C-contiguous array)."""
        check_device(device_type, device_id)
        arr = np.asarray(numpy_obj)
        if arr.dtype.kind in "US":
            arr = arr.astype(object)
        elif not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        onnx_type_of(arr.dtype)
        return OrtValue._make("tensor", arr)

    @staticmethod
    def ortvalue_from_numpy_with_onnx_type(data: np.ndarray, onnx_element_type: int) -> "OrtValue":
        """An OrtValue over `data` whose element type is `onnx_element_type` (e.g. bfloat16 held in
        a uint16 array); the item sizes must agree."""
        dt = numpy_dtype(int(onnx_element_type))
        arr = np.ascontiguousarray(data)
        if arr.dtype.itemsize != dt.itemsize or (dt.kind == "O") != (arr.dtype.kind == "O"):
            raise InvalidArgument(f"data of dtype {arr.dtype} cannot hold ONNX element type "
                                  f"{type_name(int(onnx_element_type))} ({dt.itemsize} bytes per element)")
        return OrtValue._make("tensor", arr.view(dt) if dt.kind != "O" else arr, int(onnx_element_type))

    @staticmethod
    def ortvalue_from_shape_and_type(shape: Sequence[int], element_type: Any, device_type: Any = "cpu",
                                     device_id: int = 0, vendor_id: int = -1) -> "OrtValue":
        """A new tensor of `shape` and `element_type` (numpy type or ONNX number), uninitialized."""
        check_device(device_type, device_id)
        dims = _check_shape(shape, "ortvalue_from_shape_and_type")
        code = _onnx_type(element_type)
        dt = numpy_dtype(code)
        arr = np.empty(dims, dt) if dt.kind != "O" else np.full(dims, "", dtype=object)
        return OrtValue._make("tensor", arr, code)

    @staticmethod
    def ort_value_from_sparse_tensor(sparse_tensor: Any) -> "OrtValue":
        from kiln.sparse import SparseTensor
        if not isinstance(sparse_tensor, SparseTensor):
            raise InvalidArgument(f"expected a SparseTensor, got {type(sparse_tensor).__name__}")
        return OrtValue._make("sparse", sparse_tensor)

    # -- what it holds -----------------------------------------------------------------------

    def _tensor(self, what: str) -> np.ndarray:
        if self._kind != "tensor":
            raise InvalidArgument(f"{what} needs a tensor OrtValue; this one holds {self._describe()}")
        return self._value

    def _describe(self) -> str:
        return {"none": "no value", "seq": "a sequence of tensors", "sparse": "a sparse tensor",
                "tensor": "a tensor"}[self._kind]

    def _element(self) -> int:
        if self._onnx is not None:
            return self._onnx
        if self._kind == "tensor":
            return onnx_type_of(self._value.dtype)
        if self._kind == "sparse":
            return self._value._onnx
        if self._kind == "seq" and self._value:
            return onnx_type_of(np.asarray(self._value[0]).dtype)
        raise InvalidArgument(f"this OrtValue holds {self._describe()}: it has no element type")

    def has_value(self) -> bool:
        return self._kind != "none"

    def is_tensor(self) -> bool:
        return self._kind == "tensor"

    def is_sparse_tensor(self) -> bool:
        return self._kind == "sparse"

    def is_tensor_sequence(self) -> bool:
        return self._kind == "seq"

    def device_name(self) -> str:
        return "cpu"

    def shape(self) -> List[int]:
        if self._kind == "sparse":
            return [int(d) for d in self._value.dense_shape()]
        return list(self._tensor("shape()").shape)

    def data_type(self) -> str:
        """The ONNX type string: 'tensor(float)', 'seq(tensor(int64))', 'sparse_tensor(float)'."""
        if self._kind == "tensor":
            return f"tensor({type_name(self._element())})"
        if self._kind == "sparse":
            return f"sparse_tensor({type_name(self._element())})"
        if self._kind == "seq":
            inner = f"tensor({type_name(self._element())})" if self._value else "undefined"
            return f"seq({inner})"
        raise InvalidArgument("this OrtValue holds no value, so it has no data type")

    def element_type(self) -> int:
        """The ONNX TensorProto element type number (onnx.TensorProto.FLOAT is 1)."""
        return self._element()

    def data_ptr(self) -> int:
        """Address of the tensor's first element."""
        arr = self._tensor("data_ptr()")
        if arr.dtype.kind == "O":
            raise InvalidArgument("data_ptr() is not available for string tensors (Python objects)")
        return array_address(arr)

    def numpy(self) -> np.ndarray:
        """A copy of the tensor as a numpy array (as in ONNX Runtime: later writes to the value, such
        as the next run into a bound output, do not change it)."""
        return self._tensor("numpy()").copy()

    def update_inplace(self, np_arr: Any) -> None:
        """Copies `np_arr` into the tensor's memory; dtype and element count must match."""
        arr = self._tensor("update_inplace()")
        src = np.asarray(np_arr)
        if src.dtype != arr.dtype or src.size != arr.size:
            raise InvalidArgument(f"update_inplace: the OrtValue holds {arr.dtype} {list(arr.shape)} "
                                  f"({arr.size} elements), got {src.dtype} {list(src.shape)} ({src.size} elements)")
        if not arr.flags.writeable:
            raise InvalidArgument("update_inplace: the OrtValue views a read-only array")
        np.copyto(arr.reshape(-1), src.reshape(-1))

    def as_sparse_tensor(self) -> Any:
        if self._kind != "sparse":
            raise InvalidArgument(f"as_sparse_tensor() needs a sparse tensor OrtValue; this one holds "
                                  f"{self._describe()}")
        return self._value

    # -- DLPack ------------------------------------------------------------------------------

    def to_dlpack(self) -> Any:
        """A DLPack capsule sharing the tensor's memory (bool tensors travel as uint8, as in ONNX
        Runtime: read them back with ``from_dlpack(capsule, is_bool_tensor=True)``)."""
        arr = self._tensor("to_dlpack()")
        if arr.dtype == np.bool_:
            arr = arr.view(np.uint8)
        if not arr.flags.writeable:
            raise InvalidArgument("to_dlpack(): the OrtValue views a read-only array, and DLPack cannot mark "
                                  "memory read-only; make the value from a writeable array")
        try:
            return arr.__dlpack__()
        except (TypeError, BufferError) as e:
            raise InvalidArgument(f"to_dlpack(): {e}") from None

    def __dlpack__(self, stream: Any = None) -> Any:
        return self.to_dlpack()

    def __dlpack_device__(self):
        return (_KDLCPU, 0)

    @staticmethod
    def from_dlpack(data: Any, is_bool_tensor: bool = False) -> "OrtValue":
        """An OrtValue sharing the memory of a DLPack capsule or of an object with ``__dlpack__``
        (a PyTorch CPU tensor, a numpy array). No copy is made; the producer is kept alive."""
        source = data if hasattr(data, "__dlpack__") else _Capsule(data)
        if hasattr(source, "__dlpack_device__") and source.__dlpack_device__()[0] != _KDLCPU:
            raise InvalidArgument(f"from_dlpack(): the tensor is on DLPack device {tuple(source.__dlpack_device__())}; "
                                  "Kiln runs on the CPU only (move it to the CPU first)")
        try:
            ro = np.from_dlpack(source)
        except (TypeError, BufferError, RuntimeError) as e:
            raise InvalidArgument(f"from_dlpack(): {e}") from None
        if not ro.flags.c_contiguous:
            raise InvalidArgument(f"from_dlpack(): the tensor is not contiguous (shape {list(ro.shape)}, strides "
                                  f"{list(ro.strides)}); make it contiguous first (torch: .contiguous())")
        # numpy marks DLPack arrays read-only; the memory is the producer's and writeable, as the
        # ONNX Runtime contract (update_inplace, outputs bound to a torch tensor) needs.
        arr = view_memory(array_address(ro), ro.dtype, ro.shape, owner=(ro, data)) if ro.size else ro
        if is_bool_tensor:
            if arr.dtype.itemsize != 1:
                raise InvalidArgument(f"from_dlpack(is_bool_tensor=True): expected 1-byte elements, got {arr.dtype}")
            arr = arr.view(np.bool_)
        return OrtValue._make("tensor", arr)

    def __repr__(self) -> str:
        if self._kind == "tensor":
            return f"OrtValue({self.data_type()}, shape={self.shape()}, device=cpu)"
        if self._kind == "seq":
            return f"OrtValue({self.data_type()}, {len(self._value)} tensors)"
        if self._kind == "sparse":
            return f"OrtValue({self.data_type()}, dense_shape={self.shape()})"
        return "OrtValue(no value)"


def feed(value: Any, name: str) -> Any:
    """What the engine takes for one feed: OrtValues become the arrays they view (no copy)."""
    if not isinstance(value, OrtValue):
        return value
    if value._kind == "sparse":
        raise InvalidArgument(f"input '{name}': sparse tensor inputs are not supported by Kiln; feed the dense "
                              "tensor instead")
    return value._value


def feeds(input_feed: dict) -> dict:
    """`input_feed` with OrtValues unwrapped (the same dict when it holds none)."""
    for v in input_feed.values():
        if isinstance(v, OrtValue):
            return {k: feed(v, k) for k, v in input_feed.items()}
    return input_feed
