"""Operators whose compute is Python.

``kiln.op`` turns a function into an ONNX operator that Kiln runs::

    @kiln.op("my.domain::Gelu2", inputs=[kiln.float32], outputs=[kiln.float32],
             attrs={"approx": kiln.string, "alpha": kiln.float32})
    def gelu2(x, approx="none", alpha=1.0):
        ...

Sessions created afterwards run ``my.domain::Gelu2`` nodes with it. ``register=False`` keeps
the op out of the process-wide registry; ``SessionOptions.register_python_op(op)`` then gives it
to the sessions created with those options only. See docs/python_ops.md.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from kiln import _C


class ElementType(int):
    """An ONNX tensor element type: its TensorProto number, with a name and a numpy dtype.

    Used for a Python op's input and output types, and (mapped to int, float, string or bool)
    for its attribute types.
    """

    def __new__(cls, code: int, name: str, numpy_type: Any) -> "ElementType":
        self = super().__new__(cls, code)
        self.type_name = name
        self.numpy_type = np.dtype(numpy_type)
        return self

    def __repr__(self) -> str:
        return f"kiln.{self.type_name}"

    __str__ = __repr__


float32 = ElementType(1, "float32", np.float32)
uint8 = ElementType(2, "uint8", np.uint8)
int8 = ElementType(3, "int8", np.int8)
uint16 = ElementType(4, "uint16", np.uint16)
int16 = ElementType(5, "int16", np.int16)
int32 = ElementType(6, "int32", np.int32)
int64 = ElementType(7, "int64", np.int64)
string = ElementType(8, "string", object)
bool_ = ElementType(9, "bool_", np.bool_)
float16 = ElementType(10, "float16", np.float16)
float64 = ElementType(11, "float64", np.float64)
uint32 = ElementType(12, "uint32", np.uint32)
uint64 = ElementType(13, "uint64", np.uint64)
bfloat16 = ElementType(16, "bfloat16", np.uint16)  # numpy has no bfloat16: uint16 arrays carry the bits

ELEMENT_TYPES: Tuple[ElementType, ...] = (float32, uint8, int8, uint16, int16, int32, int64, string, bool_, float16,
                                          float64, uint32, uint64, bfloat16)
_BY_CODE = {int(t): t for t in ELEMENT_TYPES}
_BY_NUMPY = {t.numpy_type: t for t in ELEMENT_TYPES if t is not bfloat16}

_FLOATS = (float16, float32, float64, bfloat16)


def element_type(t: Any) -> ElementType:
    """``t`` as an ElementType: a token (kiln.float32), an ONNX type number, or a numpy dtype."""
    if isinstance(t, ElementType):
        return t
    if isinstance(t, (int, np.integer)) and not isinstance(t, bool):
        if int(t) in _BY_CODE:
            return _BY_CODE[int(t)]
        raise ValueError(f"{t} is not an ONNX element type Kiln supports")
    try:
        return _BY_NUMPY[np.dtype(t)]
    except (TypeError, KeyError):
        raise TypeError(f"expected an element type such as kiln.float32, got {t!r}") from None


def _attr_kind(spec: Any) -> str:
    """The attribute kind the C++ side converts to: int, bool, float, string or their lists."""
    if isinstance(spec, list):
        if len(spec) != 1:
            raise TypeError(f"a list attribute type holds one element type, as [kiln.int64]; got {spec!r}")
        inner = _attr_kind(spec[0])
        if inner == "bool":
            return "ints"
        return inner + "s"
    if spec is bool or spec is bool_:
        return "bool"
    if spec is int:
        return "int"
    if spec is float:
        return "float"
    if spec is str:
        return "string"
    t = element_type(spec)
    if t is string:
        return "string"
    return "float" if t in _FLOATS else "int"


def _split_name(name: str) -> Tuple[str, str]:
    domain, sep, op_type = name.rpartition("::")
    if not sep or not domain or not op_type:
        raise ValueError(f"a Python op is named 'domain::OpType', got {name!r}")
    return domain, op_type


class PythonOp:
    """An ONNX operator whose compute is a Python function; made by :func:`op`.

    Calling it calls the function. ``name`` is ``"domain::OpType"``.
    """

    def __init__(self, fn: Callable, name: str, inputs: Sequence[Any], outputs: Sequence[Any],
                 attrs: Optional[Dict[str, Any]] = None, shape: Optional[Callable] = None) -> None:
        if not callable(fn):
            raise TypeError(f"a Python op wraps a function, got {fn!r}")
        if shape is not None and not callable(shape):
            raise TypeError(f"shape must be a function of the input shapes, got {shape!r}")
        self.domain, self.op_type = _split_name(name)
        self.fn = fn
        self.inputs = tuple(element_type(t) for t in inputs)
        self.outputs = tuple(element_type(t) for t in outputs)
        self.attrs = dict(attrs or {})
        self.shape = shape
        self._def = _C.PythonOpDef(self.domain, self.op_type, fn, [int(t) for t in self.inputs],
                                   [int(t) for t in self.outputs],
                                   {str(k): _attr_kind(v) for k, v in self.attrs.items()}, shape)
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        return f"{self.domain}::{self.op_type}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<kiln Python op {self.name}: {getattr(self.fn, '__qualname__', self.fn)!s}>"


def op(name: str, inputs: Sequence[Any], outputs: Sequence[Any], attrs: Optional[Dict[str, Any]] = None,
       shape: Optional[Callable] = None, register: bool = True) -> Callable[[Callable], PythonOp]:
    """Decorator: the function becomes the operator ``name`` ("domain::OpType").

    ``inputs`` and ``outputs`` list element types (kiln.float32, ..., or ONNX type numbers);
    ``attrs`` maps attribute names to kiln.int64 / kiln.float32 / kiln.string / kiln.bool_ (or
    int, float, str, bool) or one-element lists of them for list attributes. The function gets
    the inputs as read-only numpy arrays and the node's attributes as keyword arguments, and
    returns one array or a tuple. ``shape(*input_shapes, **attrs)`` may give the output shapes
    (a list with one shape per output); without it they are known only when compute returns.
    ``register=True`` adds the op to the process-wide registry, seen by sessions created later.
    """

    _split_name(name)

    def wrap(fn: Callable) -> PythonOp:
        python_op = PythonOp(fn, name, inputs, outputs, attrs, shape)
        if register:
            _C.register_python_op(python_op._def)
        return python_op

    return wrap


def unregister(name: Union[str, PythonOp]) -> bool:
    """Removes an op from the process-wide registry; True if it was there. Sessions already
    created keep it."""
    domain, op_type = (name.domain, name.op_type) if isinstance(name, PythonOp) else _split_name(name)
    return _C.unregister_python_op(domain, op_type)


def _check_session_op(python_op: Any) -> PythonOp:
    if not isinstance(python_op, PythonOp):
        raise TypeError(f"register_python_op takes an op made by kiln.op, got {python_op!r}")
    return python_op
