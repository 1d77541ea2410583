"""The ONNX backend API (``onnx.backend.base``) on top of :class:`kiln.InferenceSession`.

    import kiln.backend
    rep = kiln.backend.prepare(model)          # onnx.ModelProto, model bytes or a path
    outputs = rep.run([x, y])                  # by position (graph inputs that are not initializers)
    outputs = rep.run({"x": x, "y": y})        # or by name
    outputs.z, outputs["z"], outputs[0]        # a namedtupledict, as onnx's backend tests expect

This makes Kiln usable by ``onnx.backend.test.BackendTest`` and by any tool written for the
backend API. Only the CPU device exists.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, TensorProto, helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from kiln.session import InferenceSession, RunOptions, SessionOptions

# The numpy kinds/sizes a run_node input can have, as ONNX element types.
_NP_TO_ONNX = {
    np.dtype("float32"): TensorProto.FLOAT, np.dtype("float64"): TensorProto.DOUBLE,
    np.dtype("float16"): TensorProto.FLOAT16, np.dtype("int8"): TensorProto.INT8,
    np.dtype("int16"): TensorProto.INT16, np.dtype("int32"): TensorProto.INT32,
    np.dtype("int64"): TensorProto.INT64, np.dtype("uint8"): TensorProto.UINT8,
    np.dtype("uint16"): TensorProto.UINT16, np.dtype("uint32"): TensorProto.UINT32,
    np.dtype("uint64"): TensorProto.UINT64, np.dtype("bool"): TensorProto.BOOL,
    np.dtype("complex64"): TensorProto.COMPLEX64, np.dtype("complex128"): TensorProto.COMPLEX128,
}


def _onnx_elem_type(a: np.ndarray) -> int:
    if a.dtype.kind in "OUS":
        return TensorProto.STRING
    if a.dtype not in _NP_TO_ONNX:
        raise TypeError(f"numpy dtype {a.dtype} has no ONNX element type")
    return _NP_TO_ONNX[a.dtype]


def _split_options(cls: type, kwargs: Dict[str, Any], what: str) -> Any:
    """An options object (SessionOptions or RunOptions) with the attributes named in kwargs."""
    opts = cls()
    unknown = [k for k in kwargs if not hasattr(opts, k) or k.startswith("_")]
    if unknown:
        known = sorted(k for k in vars(opts) if not k.startswith("_"))
        raise TypeError(f"unknown {what} option(s) {unknown}; known: {known}")
    for k, v in kwargs.items():
        setattr(opts, k, v)
    return opts


class KilnBackendRep(BackendRep):
    """A prepared model: runs it on one :class:`kiln.InferenceSession`."""

    def __init__(self, session: InferenceSession) -> None:
        self._session = session
        self._input_names = [i.name for i in session.get_inputs()]
        self._output_names = [o.name for o in session.get_outputs()]

    @property
    def session(self) -> InferenceSession:
        return self._session

    def run(self, inputs: Any, **kwargs: Any) -> Tuple[Any, ...]:
        """Runs the model. ``inputs`` is a list (by position over the graph inputs that are not
        initializers), a dict (by name), or a single array for a one-input model. Values are numpy
        arrays (bfloat16 as uint16 bit patterns), Python lists for sequences, None for an empty
        optional. ``kwargs`` set :class:`kiln.RunOptions` attributes."""
        run_options = _split_options(RunOptions, kwargs, "run") if kwargs else None
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            inputs = list(inputs)
            if len(inputs) > len(self._input_names):
                raise ValueError(f"got {len(inputs)} inputs, the model takes {len(self._input_names)}: "
                                 f"{self._input_names}")
            feeds = dict(zip(self._input_names, inputs))
        outputs = self._session.run(None, feeds, run_options)
        return namedtupledict("Outputs", self._output_names)(*outputs)


class KilnBackend(Backend):
    """Kiln as an ONNX backend (``onnx.backend.base.Backend``)."""

    @classmethod
    def supports_device(cls, device: str) -> bool:
        try:
            return Device(device).type == DeviceType.CPU
        except (AttributeError, ValueError):
            return False

    @classmethod
    def _check_device(cls, device: str) -> None:
        if not cls.supports_device(device):
            raise ValueError(f"Kiln runs on the CPU only, device {device!r} was asked for")

    @classmethod
    def is_compatible(cls, model: Any, device: str = "CPU", **kwargs: Any) -> bool:
        # Missing kernels are not checked here: prepare() names them in its NotImplemented error,
        # which is what a conformance run should report rather than a silent skip.
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", **kwargs: Any) -> KilnBackendRep:
        """``model`` is an onnx.ModelProto, the model's bytes or a file path. ``kwargs`` set
        :class:`kiln.SessionOptions` attributes (e.g. ``intra_op_num_threads=1``)."""
        cls._check_device(device)
        options = _split_options(SessionOptions, kwargs, "session")
        if isinstance(model, ModelProto):
            model = model.SerializeToString()
        return KilnBackendRep(InferenceSession(model, sess_options=options))

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str = "CPU", **kwargs: Any) -> Tuple[Any, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info: Optional[Sequence[Tuple[np.dtype, Tuple[int, ...]]]] = None,
                 **kwargs: Any) -> Tuple[Any, ...]:
        """Runs one node. ``inputs`` is a list matching ``node.input`` (either every entry, with
        None for omitted ones, or only the non-empty names) or a dict by name. Output types come
        from ONNX shape inference, else from ``outputs_info`` ((dtype, shape) per output).
        ``opset_version`` (default: the installed onnx's latest) sets the model's ai.onnx opset;
        other kwargs go to :meth:`prepare`."""
        super().run_node(node, inputs, device=device, outputs_info=outputs_info, **kwargs)
        cls._check_device(device)
        opset = int(kwargs.pop("opset_version", onnx.defs.onnx_opset_version()))
        feeds = cls._node_feeds(node, inputs)
        graph_inputs = [cls._value_info(name, value) for name, value in feeds.items()]
        model = cls._node_model(node, graph_inputs, outputs_info, opset)
        return cls.prepare(model, device, **kwargs).run(feeds)

    @staticmethod
    def _node_feeds(node: NodeProto, inputs: Any) -> Dict[str, Any]:
        if isinstance(inputs, dict):
            feeds = dict(inputs)
            missing = [n for n in node.input if n and n not in feeds]
            if missing:
                raise ValueError(f"no value for node input(s) {missing}")
            return feeds
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        inputs = list(inputs)
        named = [n for n in node.input if n]
        if len(inputs) == len(node.input):
            pairs = zip(node.input, inputs)
        elif len(inputs) == len(named):
            pairs = zip(named, inputs)
        else:
            raise ValueError(f"node {node.op_type} has inputs {list(node.input)}, got {len(inputs)} values")
        feeds = {}
        for name, value in pairs:
            if not name:
                if value is not None:
                    raise ValueError(f"a value was given for an omitted (empty-named) input of {node.op_type}")
                continue
            feeds[name] = value
        return feeds

    @staticmethod
    def _value_info(name: str, value: Any) -> onnx.ValueInfoProto:
        if isinstance(value, list):
            elem = _onnx_elem_type(np.asarray(value[0])) if value else TensorProto.FLOAT
            return helper.make_tensor_sequence_value_info(name, elem, None)
        a = np.asarray(value)
        return helper.make_tensor_value_info(name, _onnx_elem_type(a), a.shape)

    @staticmethod
    def _node_model(node: NodeProto, graph_inputs: List[onnx.ValueInfoProto],
                    outputs_info: Optional[Sequence[Tuple[np.dtype, Tuple[int, ...]]]], opset: int) -> ModelProto:
        outs = [o for o in node.output if o]
        untyped = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs]
        opsets = [helper.make_opsetid("", opset)]
        if node.domain not in ("", "ai.onnx"):
            opsets.append(helper.make_opsetid(node.domain, 1))
        model = helper.make_model(helper.make_graph([node], "run_node", graph_inputs, untyped),
                                  opset_imports=opsets)
        inferred: Dict[str, onnx.ValueInfoProto] = {}
        try:
            g = onnx.shape_inference.infer_shapes(model).graph
            inferred = {v.name: v for v in list(g.value_info) + list(g.output)}
        except Exception:  # inference is a convenience here: the engine derives the real types
            pass
        typed = []
        for i, o in enumerate(outs):
            vi = inferred.get(o)
            if vi is not None and vi.type.WhichOneof("value") is not None and \
                    not (vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type == TensorProto.UNDEFINED):
                typed.append(vi)
            elif outputs_info is not None and i < len(outputs_info):
                dtype, shape = outputs_info[i]
                typed.append(helper.make_tensor_value_info(o, _NP_TO_ONNX[np.dtype(dtype)], shape))
            else:
                typed.append(untyped[i])
        del model.graph.output[:]
        model.graph.output.extend(typed)
        return model


prepare = KilnBackend.prepare
run_model = KilnBackend.run_model
run_node = KilnBackend.run_node
supports_device = KilnBackend.supports_device
is_compatible = KilnBackend.is_compatible
