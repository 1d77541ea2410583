"""Small helpers for building one-node and few-node ONNX models in tests."""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import kiln

NP_TO_ONNX = {
    np.dtype("float32"): TensorProto.FLOAT, np.dtype("float64"): TensorProto.DOUBLE,
    np.dtype("float16"): TensorProto.FLOAT16, np.dtype("int8"): TensorProto.INT8,
    np.dtype("int16"): TensorProto.INT16, np.dtype("int32"): TensorProto.INT32,
    np.dtype("int64"): TensorProto.INT64, np.dtype("uint8"): TensorProto.UINT8,
    np.dtype("uint16"): TensorProto.UINT16, np.dtype("uint32"): TensorProto.UINT32,
    np.dtype("uint64"): TensorProto.UINT64, np.dtype("bool"): TensorProto.BOOL,
    np.dtype("object"): TensorProto.STRING,
}


def node_model(op_type, inputs, outputs, opset=17, initializers=None, domain="", **attrs):
    """A model with one node. ``inputs`` maps names to numpy arrays (fed at run time) or None
    (omitted optional input); ``initializers`` maps names to arrays stored in the model;
    ``outputs`` is a list of names, or of (name, onnx elem type)."""
    initializers = initializers or {}
    in_names, graph_inputs = [], []
    for name, value in inputs.items():
        in_names.append("" if value is None else name)
        if value is not None and name not in initializers:
            graph_inputs.append(helper.make_tensor_value_info(name, NP_TO_ONNX[np.asarray(value).dtype], None))
    out_names = [o if isinstance(o, str) else o[0] for o in outputs]
    graph_outputs = [helper.make_tensor_value_info(o, o_type, None) for o, o_type in
                     [(o, TensorProto.UNDEFINED) if isinstance(o, str) else o for o in outputs] if o]
    node = helper.make_node(op_type, in_names, out_names, domain=domain, **attrs)
    inits = [numpy_helper.from_array(np.asarray(v), name=k) for k, v in initializers.items()]
    graph = helper.make_graph([node], "test", graph_inputs, graph_outputs, inits)
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    return helper.make_model(graph, opset_imports=opsets)


def run_node(op_type, inputs, outputs, opset=17, initializers=None, **attrs):
    """Runs one node through kiln.InferenceSession and returns its outputs."""
    model = node_model(op_type, {**inputs, **(initializers or {})}, outputs, opset, initializers, **attrs)
    sess = kiln.InferenceSession(model.SerializeToString())
    feeds = {k: v for k, v in inputs.items() if v is not None}
    return sess.run(None, feeds)
