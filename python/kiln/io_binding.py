"""IOBinding: ONNX Runtime's bound inputs and outputs, on the CPU.

Inputs are bound as numpy arrays, OrtValues or raw pointers (viewed in place, no copy). Outputs
are either left to Kiln (``get_outputs()`` then returns OrtValues over Kiln's buffers) or bound to
caller memory: after the run the result is written into that memory, once its element type and
shape are checked against what the model produced, so a wrong buffer is an error and never a
write past its end.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from kiln.capi.onnxruntime_pybind11_state import InvalidArgument
from kiln.ortvalue import OrtValue, _check_shape, check_device, feed, numpy_dtype, onnx_type_of, view_memory


def _describe(a: Any) -> str:
    if a is None:
        return "no value (an empty optional)"
    if isinstance(a, list):
        return f"a sequence of {len(a)} tensors"
    return f"{a.dtype} {list(a.shape)}"


class IOBinding:
    """Inputs and outputs bound for ``InferenceSession.run_with_iobinding``."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._input_names = [i.name for i in session.get_inputs()] + [
            i.name for i in session.get_overridable_initializers()]
        self._output_names = [o.name for o in session.get_outputs()]
        self._inputs: Dict[str, Any] = {}
        self._outputs: Dict[str, Optional[OrtValue]] = {}  # None: Kiln allocates the output
        self._results: Dict[str, OrtValue] = {}

    # -- inputs ------------------------------------------------------------------------------

    def _check_input(self, name: str) -> None:
        if name not in self._input_names:
            raise InvalidArgument(f"Invalid input name: '{name}'; the model's inputs are: "
                                  f"{', '.join(self._input_names)}")

    def bind_cpu_input(self, name: str, arr_on_cpu: Any) -> None:
        """Binds a numpy array (or a list of arrays for a sequence input); it is read in place."""
        self._check_input(name)
        self._inputs[name] = feed(arr_on_cpu, name)

    def bind_input(self, name: str, device_type: Any, device_id: int, element_type: Any, shape: Any,
                   buffer_ptr: int) -> None:
        """Binds memory at `buffer_ptr` holding a C-contiguous tensor of `element_type` and `shape`
        (a torch tensor's data_ptr(), an OrtValue's data_ptr()). The memory is read in place at
        each run: it must stay valid while bound."""
        self._check_input(name)
        check_device(device_type, device_id)
        dtype = numpy_dtype(element_type)
        if dtype.kind == "O":
            raise InvalidArgument(f"input '{name}': string tensors cannot be bound by pointer; use bind_cpu_input")
        dims = _check_shape(shape, f"input '{name}'")
        self._inputs[name] = view_memory(int(buffer_ptr), dtype, dims)

    def bind_ortvalue_input(self, name: str, ortvalue: OrtValue) -> None:
        self._check_input(name)
        if not isinstance(ortvalue, OrtValue):
            raise InvalidArgument(f"input '{name}': expected an OrtValue, got {type(ortvalue).__name__}")
        self._inputs[name] = feed(ortvalue, name)

    def clear_binding_inputs(self) -> None:
        self._inputs.clear()

    def synchronize_inputs(self) -> None:
        """Nothing to wait for: bound CPU memory is read when the run starts."""

    # -- outputs -----------------------------------------------------------------------------

    def _check_output(self, name: str) -> None:
        if name not in self._output_names:
            raise InvalidArgument(f"Invalid output name: '{name}'; the model's outputs are: "
                                  f"{', '.join(self._output_names)}")

    def bind_output(self, name: str, device_type: Any = "cpu", device_id: int = 0, element_type: Any = None,
                    shape: Any = None, buffer_ptr: Optional[int] = None) -> None:
        """Without `buffer_ptr`, Kiln allocates the output (any shape). With it, the output is
        written into that caller-owned memory, which must hold `element_type` and `shape`
        exactly as the model produces them."""
        self._check_output(name)
        check_device(device_type, device_id)
        if buffer_ptr is None:
            self._outputs[name] = None
            return
        if element_type is None or shape is None:
            raise ValueError("`element_type` and `shape` are to be provided if pre-allocated memory is provided")
        dtype = numpy_dtype(element_type)
        if dtype.kind == "O":
            raise InvalidArgument(f"output '{name}': string tensors cannot be bound by pointer")
        dims = _check_shape(shape, f"output '{name}'")
        code = int(element_type) if isinstance(element_type, (int, np.integer)) else onnx_type_of(dtype)
        self._outputs[name] = OrtValue._make("tensor", view_memory(int(buffer_ptr), dtype, dims), code)

    def bind_ortvalue_output(self, name: str, ortvalue: OrtValue) -> None:
        """The output is written into `ortvalue`'s tensor, which must match it in type and shape."""
        self._check_output(name)
        if not isinstance(ortvalue, OrtValue) or not ortvalue.is_tensor():
            raise InvalidArgument(f"output '{name}': expected a tensor OrtValue, got "
                                  f"{ortvalue!r}")
        self._outputs[name] = ortvalue

    def clear_binding_outputs(self) -> None:
        self._outputs.clear()
        self._results.clear()

    def synchronize_outputs(self) -> None:
        """Nothing to wait for: outputs are complete when run_with_iobinding returns."""

    def get_outputs(self) -> List[OrtValue]:
        """The bound outputs, in binding order, as OrtValues: the caller's memory for outputs bound
        to a buffer, Kiln's result otherwise (no value before the first run)."""
        out = []
        for name, target in self._outputs.items():
            out.append(target if target is not None else self._results.get(name, OrtValue()))
        return out

    get_outputs_as_ortvaluevector = get_outputs

    def copy_outputs_to_cpu(self) -> List[Any]:
        """Copies of the bound outputs as numpy arrays (lists for sequences, None for no value)."""
        out = []
        for v in self.get_outputs():
            if v.is_tensor():
                out.append(v.numpy())
            elif v.is_tensor_sequence():
                out.append([np.array(a, copy=True) for a in v._value])
            else:
                out.append(None)
        return out

    # -- running -----------------------------------------------------------------------------

    def _run(self, run_options: Any) -> None:
        names = list(self._outputs)
        if not names:
            raise InvalidArgument("run_with_iobinding: no output is bound; bind at least one with bind_output")
        results = self._session.run(names, self._inputs, run_options)
        # Check every caller buffer before writing any.
        for name, res in zip(names, results):
            target = self._outputs[name]
            if target is None:
                continue
            buf = target._value
            if not isinstance(res, np.ndarray) or res.dtype != buf.dtype or res.shape != buf.shape:
                raise InvalidArgument(f"output '{name}': the bound buffer expects {_describe(buf)}, got "
                                      f"{_describe(res)} from the model; nothing was written")
            if not buf.flags.writeable:
                raise InvalidArgument(f"output '{name}': the bound buffer is read-only")
        self._results = {}
        for name, res in zip(names, results):
            target = self._outputs[name]
            if target is None:
                self._results[name] = OrtValue._from_result(res)
            else:
                np.copyto(target._value, res)
