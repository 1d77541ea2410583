"""The parts of ONNX Runtime's session API beyond plain runs, mixed into SessionOptions and
InferenceSession: model edits at load, OrtValues, IOBinding, asynchronous runs and profiling."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from kiln import model_edits, ortvalue
from kiln.capi.onnxruntime_pybind11_state import InvalidArgument, NotImplemented
from kiln.io_binding import IOBinding
from kiln.ortvalue import OrtValue
from kiln.profiling import ProfileState, trace_file_name


class SessionOptionsApi:
    """SessionOptions methods that change the model a session loads."""

    def _edits(self) -> model_edits.ModelEdits:
        edits = self.__dict__.get("_model_edits")
        if edits is None:
            edits = self.__dict__["_model_edits"] = model_edits.ModelEdits()
        return edits

    @staticmethod
    def _dim_value(dim_value: Any, what: str) -> int:
        if not isinstance(dim_value, int) or isinstance(dim_value, bool) or dim_value < 0:
            raise InvalidArgument(f"{what}: the dimension value must be an integer >= 0, got {dim_value!r}")
        return dim_value

    def add_free_dimension_override_by_name(self, dim_name: str, dim_value: int) -> None:
        """Fixes the symbolic dimension `dim_name` of the model's inputs to `dim_value`."""
        self._edits().dims_by_name[str(dim_name)] = self._dim_value(dim_value, f"free dimension '{dim_name}'")

    def add_free_dimension_override_by_denotation(self, dim_denotation: str, dim_value: int) -> None:
        """Fixes the input dimensions denoted `dim_denotation` (e.g. 'DATA_BATCH') to `dim_value`."""
        self._edits().dims_by_denotation[str(dim_denotation)] = self._dim_value(
            dim_value, f"free dimension denotation '{dim_denotation}'")

    def add_initializer(self, name: str, ortvalue: OrtValue) -> None:
        """Replaces the data of the model's initializer `name` with `ortvalue` (same element type
        and shape) in the sessions created with these options."""
        if not isinstance(ortvalue, OrtValue) or not ortvalue.is_tensor():
            raise InvalidArgument(f"add_initializer '{name}': expected a tensor OrtValue, got {ortvalue!r}")
        self._edits().initializers[str(name)] = ortvalue

    def add_external_initializers(self, names: Sequence[str], ortvalues: Sequence[OrtValue]) -> None:
        if len(names) != len(ortvalues):
            raise InvalidArgument(f"add_external_initializers: {len(names)} names but {len(ortvalues)} values")
        for name, value in zip(names, ortvalues):
            self.add_initializer(name, value)

    def register_custom_ops_library(self, library_path: str) -> None:
        raise NotImplemented(f"register_custom_ops_library('{library_path}'): Kiln cannot load ONNX Runtime "
                             "custom-op libraries (they are built against ONNX Runtime's C API). Write the op "
                             "in Python with kiln.op instead (see docs/python_ops.md)")


class SessionApi:
    """InferenceSession methods for OrtValues, IOBinding, asynchronous runs and profiling."""

    _profile: Optional[ProfileState] = None
    _enable_fallback = True

    def _create_core(self, model: Union[str, bytes], make: Callable[[Union[str, bytes], str], Any]) -> Any:
        """Makes the engine's session with `make(model, base_dir)`, after the model edits the
        options ask for; sparse initializers, which the engine refuses, are made dense first."""
        opts = self._sess_options
        edits = opts._edits() if isinstance(opts, SessionOptionsApi) else None
        t0 = time.monotonic_ns()
        core_model, base_dir = model_edits.prepare(model, edits, densify=False)
        try:
            core = make(core_model, base_dir)
        except NotImplemented as e:
            if "sparse" not in str(e):
                raise
            core_model, base_dir = model_edits.prepare(model, edits, densify=True)
            core = make(core_model, base_dir)
        if opts.enable_profiling:
            start = core.take_profile()["start_ns"]
            self._profile = ProfileState(t0, time.monotonic_ns(), start, isinstance(model, str))
        return core

    def _feeds(self, input_feed: Dict[str, Any]) -> Dict[str, Any]:
        """The feeds for the engine (OrtValues unwrapped, without copies)."""
        if self._profile is not None and self._profile.ended:
            self._sess.take_profile()  # profiling has ended: drop what the engine still records
        return ortvalue.feeds(input_feed)

    def run_with_ort_values(self, output_names: Optional[Iterable[str]], input_dict_of_ortvalues: Dict[str, Any],
                            run_options: Any = None) -> List[OrtValue]:
        """Runs with OrtValue inputs; returns the outputs as OrtValues (over Kiln's buffers)."""
        return [OrtValue._from_result(r) for r in self.run(output_names, input_dict_of_ortvalues, run_options)]

    def run_async(self, output_names: Optional[Iterable[str]], input_feed: Dict[str, Any],
                  callback: Callable[[List[Any], Any, str], None], user_data: Any, run_options: Any = None) -> None:
        """Starts the run on a worker thread and returns; `callback(outputs, user_data, err)` gets
        the outputs and '' on success, or [] and the error message."""
        if not callable(callback):
            raise InvalidArgument(f"run_async: callback must be callable, got {type(callback).__name__}")
        if not isinstance(input_feed, dict):
            raise InvalidArgument(f"input_feed must be a dict of input name to array, got {type(input_feed).__name__}")
        names = list(output_names) if output_names else None
        feeds = dict(input_feed)  # later changes to the caller's dict do not reach the run

        def work() -> None:
            try:
                outputs = self.run(names, feeds, run_options)
            except Exception as e:  # every failure goes to the callback, as ONNX Runtime does
                callback([], user_data, str(e))
            else:
                callback(outputs, user_data, "")

        threading.Thread(target=work, name="kiln-run-async").start()

    def io_binding(self) -> IOBinding:
        return IOBinding(self)

    def run_with_iobinding(self, iobinding: IOBinding, run_options: Any = None) -> None:
        iobinding._run(run_options)

    def end_profiling(self) -> str:
        """Writes the profile as ONNX Runtime's Chrome-trace JSON, '{profile_file_prefix}_{time}.json',
        and returns its path; '' when profiling is off or has ended. Profiling stops here."""
        if self._profile is None or self._profile.ended:
            return ""
        self._profile.collect(self._sess)
        path = self._profile.write(trace_file_name(self._sess_options.profile_file_prefix))
        self._profile.ended = True
        self._profile.clear()
        return path

    def get_profiling_start_time_ns(self) -> int:
        """When profiling started, on time.monotonic_ns()'s clock (0 without profiling)."""
        return self._profile.t0_ns if self._profile is not None else 0

    def disable_fallback(self) -> None:
        """Kiln has one provider (the CPU), so there is nothing to fall back to; recorded only."""
        self._enable_fallback = False

    def enable_fallback(self) -> None:
        self._enable_fallback = True
