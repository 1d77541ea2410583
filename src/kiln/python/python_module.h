// What the two halves of kiln._C share: module.cc (sessions, numpy conversion) and
// python_op.cc (Python operators).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "kiln/exec/kernel.h"

namespace kiln::python {

namespace py = pybind11;

// The numpy element type of a Kiln tensor type, numpy's descriptor looked up by its type
// number (one made from a name parses the name on every call). bfloat16 travels as uint16 bits.
py::dtype numpy_type(DType t);

// python_op.cc
void bind_python_ops(py::module_& m);
void add_session_python_ops(KernelSource& source, const ir::Model& model, const py::list& ops);

}  // namespace kiln::python
