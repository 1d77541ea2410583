// kiln._C: the compiled core behind the Python package. The Python layer (python/kiln) shapes it
// into ONNX Runtime's API; this file only converts between numpy and Kiln tensors and maps
// errors to the exception classes of kiln.capi.onnxruntime_pybind11_state.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "kiln/exec/session.h"
#include "kiln/import/onnx_export.h"
#include "kiln/import/onnx_import.h"
#include "kiln/ops/random/random_seed.h"
#include "kiln/python/python_module.h"

namespace py = pybind11;
using namespace kiln;

namespace {

DType numpy_dtype(const py::array& a, const std::string& name) {
  const char kind = a.dtype().kind();
  const size_t size = a.itemsize();
  switch (kind) {
    case 'f':
      if (size == 4) return DType::Float32;
      if (size == 8) return DType::Float64;
      if (size == 2) return DType::Float16;
      break;
    case 'i':
      if (size == 1) return DType::Int8;
      if (size == 2) return DType::Int16;
      if (size == 4) return DType::Int32;
      if (size == 8) return DType::Int64;
      break;
    case 'u':
      if (size == 1) return DType::UInt8;
      if (size == 2) return DType::UInt16;
      if (size == 4) return DType::UInt32;
      if (size == 8) return DType::UInt64;
      break;
    case 'b': return DType::Bool;
    case 'U': case 'O': case 'S': return DType::String;
  }
  fail(ErrorCode::InvalidArgument, "input '", name, "': numpy dtype ", std::string(py::str(a.dtype())),
       " has no ONNX element type");
}

// Converts a feed. Numeric arrays are viewed in place (the caller keeps `keep` alive while the
// run uses them); strings are copied into a Kiln string tensor.
Tensor to_tensor(py::handle obj, const std::string& name, std::vector<py::object>& keep) {
  py::array a = py::array::ensure(obj, py::array::c_style);
  if (!a) {
    if (!PyErr_Occurred() || true) PyErr_Clear();
    // Python scalars and lists: let numpy choose, as ONNX Runtime does.
    a = py::array::ensure(py::module_::import("numpy").attr("asarray")(obj), py::array::c_style);
    if (!a) fail(ErrorCode::InvalidArgument, "input '", name, "' cannot be converted to a numpy array");
  }
  Shape shape(a.shape(), a.shape() + a.ndim());
  DType dt = numpy_dtype(a, name);
  if (dt == DType::String) {
    Tensor t(DType::String, shape);
    auto* s = t.data<std::string>();
    py::object flat = a.attr("reshape")(-1);
    int64_t i = 0;
    for (py::handle item : flat) {
      if (py::isinstance<py::bytes>(item)) s[i++] = std::string(py::reinterpret_borrow<py::bytes>(item));
      else s[i++] = py::str(item).cast<std::string>();
    }
    return t;
  }
  keep.push_back(a);
  // The owner holds the array, so a view that outlives the run (a Python op's input) stays valid.
  std::shared_ptr<void> owner(new py::object(a), [](void* p) {
    py::gil_scoped_acquire gil;
    delete static_cast<py::object*>(p);
  });
  return Tensor::view(dt, shape, const_cast<void*>(a.data()), std::move(owner));
}

// numpy has no bfloat16: a uint16 array fed where the model declares bfloat16 carries its bits.
Tensor retag_bfloat16(Tensor t, DType declared) {
  if (declared == DType::BFloat16 && t.dtype() == DType::UInt16)
    return Tensor::view(DType::BFloat16, t.shape(), t.raw(), t.owner());
  return t;
}

Value to_value(py::handle obj, const std::string& name, const ir::TypeInfo* declared, std::vector<py::object>& keep) {
  if (obj.is_none()) return Value::none();
  const ir::TypeInfo* elem = declared && declared->elem ? declared->elem.get() : nullptr;
  if (declared && declared->kind == ir::ValueKind::Optional) {
    declared = elem;
    elem = declared && declared->elem ? declared->elem.get() : nullptr;
  }
  if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    if (declared && declared->kind == ir::ValueKind::Tensor) return Value(to_tensor(obj, name, keep));
    std::vector<Tensor> items;
    DType elem_type = elem ? elem->dtype : DType::Undefined;
    for (py::handle item : obj) {
      Tensor t = to_tensor(item, name, keep);
      items.push_back(retag_bfloat16(t, elem_type));
    }
    if (elem_type == DType::Undefined && !items.empty()) elem_type = items[0].dtype();
    for (const Tensor& t : items)
      if (elem_type != DType::Undefined && t.dtype() != elem_type)
        fail(ErrorCode::InvalidArgument, "input '", name, "': sequence items must all be ", dtype_name(elem_type),
             ", got ", dtype_name(t.dtype()));
    return Value::sequence(std::move(items), elem_type);
  }
  Tensor t = to_tensor(obj, name, keep);
  return Value(retag_bfloat16(t, declared ? declared->dtype : DType::Undefined));
}

py::object to_numpy(const Tensor& t);

py::object to_python(const Value& v) {
  if (v.is_none()) return py::none();
  if (v.is_sequence()) {
    py::list out;
    for (const Tensor& t : v.items()) out.append(to_numpy(t));
    return out;
  }
  return to_numpy(v.tensor());
}

py::object to_numpy(const Tensor& t) {
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  if (t.dtype() == DType::String) {
    py::array out(py::dtype("object"), shape);
    py::object flat = out.attr("reshape")(-1);
    const std::string* s = t.data<std::string>();
    for (int64_t i = 0; i < t.size(); ++i) flat.attr("__setitem__")(i, py::str(s[i]));
    return out;
  }
  // The array owns a reference to the tensor's storage: no copy.
  auto* holder = new std::shared_ptr<void>(t.owner());
  py::capsule base(holder, [](void* p) { delete static_cast<std::shared_ptr<void>*>(p); });
  return py::array(python::numpy_type(t.dtype()), shape, t.raw(), base);
}

py::object type_to_py(const ir::TypeInfo& t) {
  py::dict d;
  static const char* kinds[] = {"tensor", "seq", "optional", "map", "sparse_tensor", "unknown"};
  d["kind"] = kinds[int(t.kind)];
  d["elem_type"] = int(t.dtype);
  if (t.shape) {
    py::list dims;
    for (const auto& dim : *t.shape) {
      if (dim.value) dims.append(*dim.value);
      else if (!dim.symbol.empty()) dims.append(dim.symbol);
      else dims.append(py::none());
    }
    d["shape"] = dims;
  } else {
    d["shape"] = py::none();
  }
  d["elem"] = t.elem ? type_to_py(*t.elem) : py::none();
  return d;
}

py::list value_infos(const std::vector<const ir::ValueInfo*>& infos) {
  py::list out;
  for (const auto* v : infos) out.append(py::make_tuple(v->name, type_to_py(v->type)));
  return out;
}

// RunOptions lives in C++ so that setting `terminate` from another thread reaches a run in
// progress; the Python package adds ONNX Runtime's plain attributes on top.
struct PyRunOptions {
  std::atomic<bool> terminate{false};
  std::string run_tag;
};

class PySession {
 public:
  PySession(py::object model, const std::string& base_dir, int threads, int opt_level, bool profile,
            const py::list& python_ops, const std::map<std::string, std::string>& entries) {
    std::shared_ptr<ir::Model> m;
    if (py::isinstance<py::bytes>(model)) {
      std::string_view bytes = model.cast<std::string_view>();
      py::gil_scoped_release nogil;
      m = load_model_bytes(bytes.data(), bytes.size(), base_dir);
    } else {
      std::string path = py::str(model).cast<std::string>();
      py::gil_scoped_release nogil;
      m = load_model_file(path);
    }
    SessionConfig config;
    config.intra_op_threads = threads;
    config.optimization = OptLevel(opt_level);
    config.profile = profile;
    config.entries = entries;
    python::add_session_python_ops(config.kernels, *m, python_ops);
    py::gil_scoped_release nogil;
    session_ = std::make_unique<Session>(std::move(m), config);
  }

  // run_options arrives as an object: pybind11 loads None into a class pointer only on its
  // second try, after a failed attribute lookup that formats an error message on every run.
  py::list run(py::object output_names, py::dict feeds, py::object run_options) {
    PyRunOptions* options = nullptr;
    if (!run_options.is_none()) {
      if (!py::isinstance<PyRunOptions>(run_options))
        throw py::type_error("run_options must be a RunOptions, got " +
                             std::string(py::str(run_options.get_type().attr("__name__"))));
      options = run_options.cast<PyRunOptions*>();
    }
    std::vector<py::object> keep;
    std::vector<std::pair<std::string, Value>> inputs;
    for (auto [key, value] : feeds) {
      std::string name = py::str(key).cast<std::string>();
      const ir::TypeInfo* declared = nullptr;
      for (const auto& v : session_->model().graph.inputs)
        if (v.name == name) declared = &v.type;
      inputs.emplace_back(name, to_value(value, name, declared, keep));
    }
    std::vector<std::string> fetch;
    if (!output_names.is_none())
      for (py::handle h : output_names) fetch.push_back(py::str(h).cast<std::string>());
    std::vector<Value> results;
    RunContext ctx;
    if (options) {
      ctx.terminate = &options->terminate;
      ctx.tag = options->run_tag;
    }
    {
      py::gil_scoped_release nogil;
      results = session_->run(inputs, fetch, ctx);
    }
    py::list out;
    for (const Value& v : results) out.append(to_python(v));
    return out;
  }

  py::list inputs() const { return value_infos(session_->inputs()); }
  py::list outputs() const { return value_infos(session_->outputs()); }
  py::list overridable_initializers() const { return value_infos(session_->overridable_initializers()); }
  int threads() const { return session_->threads(); }
  // The graph as Kiln runs it (after folding and fusions), as ONNX model bytes.
  py::bytes optimized_model() const { return py::bytes(export_model(session_->optimized_model())); }

  // Node and run events recorded since the last call, as dicts (times in microseconds).
  py::dict take_profile() {
    py::dict out;
    py::list nodes, runs;
    if (Profiler* p = session_->profiler()) {
      // The profiler's zero on steady_clock, which is Python's time.monotonic_ns() clock.
      out["start_ns"] = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch()).count() - p->now_us() * 1000;
      auto [node_events, run_events] = p->take();
      for (const auto& e : node_events) {
        py::dict d;
        d["name"] = e.name;
        d["op_type"] = e.op_type;
        d["ts"] = e.start_us;
        d["dur"] = e.dur_us;
        d["input_shapes"] = e.input_shapes;
        d["output_shapes"] = e.output_shapes;
        d["input_types"] = e.input_types;
        d["output_types"] = e.output_types;
        d["thread"] = e.thread;
        nodes.append(d);
      }
      for (const auto& e : run_events) {
        py::dict d;
        d["ts"] = e.start_us;
        d["dur"] = e.dur_us;
        d["tag"] = e.tag;
        runs.append(d);
      }
    }
    out["nodes"] = nodes;
    out["runs"] = runs;
    return out;
  }

  py::dict metadata() const {
    const ir::Model& m = session_->model();
    py::dict d;
    d["producer_name"] = m.producer_name;
    d["producer_version"] = m.producer_version;
    d["domain"] = m.domain;
    d["description"] = m.doc_string;
    d["graph_name"] = m.graph.name;
    d["graph_description"] = m.graph.doc_string;
    d["version"] = m.model_version;
    d["ir_version"] = m.ir_version;
    d["custom_metadata_map"] = m.metadata;
    d["opsets"] = m.opsets;
    return d;
  }

 private:
  std::unique_ptr<Session> session_;
};

// Summary of a model file without running it: inputs, outputs, opsets, op counts, support.
py::dict inspect_model(py::object model) {
  std::shared_ptr<ir::Model> m;
  if (py::isinstance<py::bytes>(model)) {
    std::string_view bytes = model.cast<std::string_view>();
    m = load_model_bytes(bytes.data(), bytes.size(), "", true);
  } else {
    m = load_model_file(py::str(model).cast<std::string>(), true);
  }
  py::dict d;
  std::vector<const ir::ValueInfo*> ins, outs;
  for (const auto& v : m->graph.inputs)
    if (!m->graph.initializers.count(v.name)) ins.push_back(&v);
  for (const auto& v : m->graph.outputs) outs.push_back(&v);
  d["inputs"] = value_infos(ins);
  d["outputs"] = value_infos(outs);
  d["opsets"] = m->opsets;
  d["ir_version"] = m->ir_version;
  d["producer"] = m->producer_name + " " + m->producer_version;
  std::map<std::string, int> counts;
  for (const auto& n : m->graph.nodes) counts[(n.domain.empty() ? "" : n.domain + "::") + n.op_type]++;
  d["op_counts"] = counts;
  d["unsupported"] = unsupported_ops(*m);
  d["initializers"] = m->graph.initializers.size();
  d["checker"] = m->checker_message;
  size_t bytes = 0;
  for (const auto& [k, t] : m->graph.initializers) bytes += t.bytes();
  d["initializer_bytes"] = bytes;
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "Kiln's compiled core";
  m.attr("__version__") = KILN_VERSION;

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const kiln::Error& e) {
      py::object state = py::module_::import("kiln.capi.onnxruntime_pybind11_state");
      py::object cls = state.attr(error_code_name(e.code()));
      PyErr_SetObject(cls.ptr(), py::str(e.what()).ptr());
    }
  });

  py::class_<PyRunOptions>(m, "RunOptionsCore", py::dynamic_attr())
      .def(py::init<>())
      .def_property(
          "terminate", [](const PyRunOptions& o) { return o.terminate.load(); },
          [](PyRunOptions& o, bool v) { o.terminate.store(v); })
      .def_readwrite("run_tag", &PyRunOptions::run_tag);

  py::class_<PySession>(m, "Session")
      .def(py::init<py::object, const std::string&, int, int, bool, const py::list&,
                    const std::map<std::string, std::string>&>(),
           py::arg("model"),
           py::arg("base_dir") = "", py::arg("threads") = 0, py::arg("opt_level") = 99, py::arg("profile") = false,
           py::arg("python_ops") = py::list(), py::arg("config") = std::map<std::string, std::string>())
      .def("run", &PySession::run, py::arg("output_names"), py::arg("feeds"), py::arg("run_options") = py::none())
      .def("take_profile", &PySession::take_profile)
      .def("optimized_model", &PySession::optimized_model)
      .def("inputs", &PySession::inputs)
      .def("outputs", &PySession::outputs)
      .def("overridable_initializers", &PySession::overridable_initializers)
      .def("metadata", &PySession::metadata)
      .def("threads", &PySession::threads);

  python::bind_python_ops(m);
  m.def("inspect_model", &inspect_model);
  m.def("supported_ops", [](const std::string& domain) { return KernelRegistry::global().op_types(domain); },
        py::arg("domain") = "");
  // The random operators' process-wide seed; a negative seed is taken modulo 2^64.
  m.def("set_seed", [](int64_t seed) { set_random_seed(uint64_t(seed)); }, py::arg("seed"));
}
