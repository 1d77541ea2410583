// Python operators: ONNX nodes whose compute is Python.
//
// Two forms reach the same kernel:
//   - PyOp nodes (ONNX Runtime's contract): attributes name a module and class; Kiln builds
//     class_name(**string_attributes) once per kernel and calls its compute method.
//   - Ops defined with the kiln.op decorator: a process-wide registry keyed by (domain, op_type)
//     that a resolver serves to every session, or ops given to one session through its options.
//
// Threading: Session::run releases the GIL, so a Python op takes it only around its Python
// work (building arguments, the call, reading results). Every object here that holds Python
// references drops them with the GIL held, whichever thread lets go of it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <mutex>
#include <set>

#include "kiln/exec/kernel.h"
#include "kiln/python/python_module.h"

namespace py = pybind11;

namespace kiln::python {

namespace {

// Drops Python references with the GIL held. After interpreter shutdown they are let go
// without a decref: there is no interpreter left to tell.
template <typename... Objects>
void release_python(Objects&... objects) {
  if (!Py_IsInitialized()) {
    (objects.release(), ...);
    return;
  }
  py::gil_scoped_acquire gil;
  ((objects = py::object()), ...);
}

std::string type_label(DType t) { return std::string("tensor(") + dtype_name(t) + ")"; }

// The element type of a numpy array, or Undefined when ONNX has none for it.
DType array_type(const py::array& a) {
  using D = DType;
  const char kind = a.dtype().kind();
  if (kind == 'U' || kind == 'S' || kind == 'O') return D::String;
  if (kind == 'b') return D::Bool;
  const size_t n = a.itemsize();
  const int k = n == 1 ? 0 : n == 2 ? 1 : n == 4 ? 2 : n == 8 ? 3 : -1;  // by element size
  static constexpr D ints[] = {D::Int8, D::Int16, D::Int32, D::Int64};
  static constexpr D uints[] = {D::UInt8, D::UInt16, D::UInt32, D::UInt64};
  static constexpr D floats[] = {D::Undefined, D::Float16, D::Float32, D::Float64};
  if (k < 0) return D::Undefined;
  return kind == 'i' ? ints[k] : kind == 'u' ? uints[k] : kind == 'f' ? floats[k] : D::Undefined;
}

std::string python_error_text(const py::error_already_set& e) {
  try {
    // Errors raised from C code may come without a traceback.
    auto or_none = [](const py::object& o) -> py::object { return o ? o : py::object(py::none()); };
    py::object format = py::module_::import("traceback").attr("format_exception");
    py::list lines = format(or_none(e.type()), or_none(e.value()), or_none(e.trace()));
    std::string text;
    for (py::handle line : lines) text += line.cast<std::string>();
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
  } catch (const py::error_already_set&) {
    return e.what();
  }
}

// A read-only numpy array over the tensor's buffer, whose base keeps the buffer alive: no copy.
// Strings become a fresh object array of str.
py::object to_array(const Tensor& t) {
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  py::array a;
  if (t.dtype() == DType::String) {
    a = py::array(numpy_type(DType::String), shape);
    auto** items = static_cast<PyObject**>(a.mutable_data());
    const std::string* s = t.data<std::string>();
    for (int64_t i = 0; i < t.size(); ++i) {
      PyObject* item = py::str(s[i]).release().ptr();
      Py_XDECREF(items[i]);
      items[i] = item;
    }
  } else if (t.owner()) {
    auto* holder = new std::shared_ptr<void>(t.owner());
    py::capsule base(holder, [](void* p) { delete static_cast<std::shared_ptr<void>*>(p); });
    a = py::array(numpy_type(t.dtype()), shape, t.raw(), base);
  } else {
    // Nothing would keep this buffer alive past the run: the op gets a copy.
    a = py::array(numpy_type(t.dtype()), shape, t.raw());
  }
  py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return a;
}

std::string python_type_name(py::handle obj) { return py::str(py::type::handle_of(obj).attr("__name__")); }

// Checks one returned array against the declared type (and shape, when a shape function gave
// one) and copies it into output i.
void store_output(OpContext& ctx, int i, py::handle obj, DType want, const Shape* declared) {
  const std::string name = size_t(i) < ctx.node().outputs.size() ? ctx.node().outputs[size_t(i)] : "";
  py::array a = py::array::ensure(obj, want == DType::String ? 0 : py::array::c_style);
  if (!a)
    fail(ErrorCode::Fail, "output ", i, " ('", name, "'): expected a numpy array of ", type_label(want), ", got ",
         python_type_name(obj));
  const DType got = array_type(a);
  if (got != want && !(want == DType::BFloat16 && got == DType::UInt16))
    fail(ErrorCode::Fail, "output ", i, " ('", name, "'): expected ", type_label(want), ", got a numpy ",
         std::string(py::str(a.dtype())), " ", py::isinstance<py::array>(obj) ? "array" : python_type_name(obj));
  if (a.dtype().byteorder() == '>')  // x86 is little-endian
    a = a.attr("astype")(a.dtype().attr("newbyteorder")("="));
  Shape shape(a.shape(), a.shape() + a.ndim());
  if (declared && shape != *declared)
    fail(ErrorCode::Fail, "output ", i, " ('", name, "'): the shape function gave ", shape_str(*declared),
         ", compute returned ", shape_str(shape));
  if (!ctx.has_output(i)) return;
  Tensor& out = declared ? ctx.output(i) : ctx.allocate_output(i, want, shape);
  if (want != DType::String) {
    if (out.bytes()) std::memcpy(out.raw(), a.data(), out.bytes());
    return;
  }
  std::string* s = out.data<std::string>();
  int64_t k = 0;
  for (py::handle item : a.attr("reshape")(-1)) {
    if (py::isinstance<py::bytes>(item)) s[k++] = item.cast<std::string>();
    else if (py::isinstance<py::str>(item)) s[k++] = item.cast<std::string>();
    else
      fail(ErrorCode::Fail, "output ", i, " ('", name, "'): expected str or bytes items in a string tensor, got ",
           python_type_name(item));
  }
}

std::vector<py::object> result_items(const py::object& r) {
  std::vector<py::object> items;
  if (py::isinstance<py::tuple>(r) || py::isinstance<py::list>(r)) {
    for (py::handle h : r) items.push_back(py::reinterpret_borrow<py::object>(h));
  } else {
    items.push_back(r);
  }
  return items;
}

// One node's Python op in one frame. The callable and its keyword arguments were made when the
// kernel was built; compute() passes the inputs as numpy arrays and copies the results out.
class PythonKernel : public Kernel {
 public:
  PythonKernel(std::string what, std::vector<DType> in, std::vector<DType> out, py::object call, py::object kwargs,
               py::object shape_fn)
      : what_(std::move(what)),
        in_types_(std::move(in)),
        out_types_(std::move(out)),
        call_(std::move(call)),
        kwargs_(std::move(kwargs)),
        shape_fn_(std::move(shape_fn)) {}
  ~PythonKernel() override { release_python(call_, kwargs_, shape_fn_); }

  void prepare(OpContext& ctx) override {
    check_inputs(ctx);
    if (!shape_fn_) return;
    std::vector<Shape> shapes;
    std::string error;
    {
      py::gil_scoped_acquire gil;
      try {
        py::tuple args(size_t(ctx.num_inputs()));
        for (int i = 0; i < ctx.num_inputs(); ++i) {
          if (!ctx.has_input(i)) {
            args[size_t(i)] = py::none();
            continue;
          }
          const Shape& s = ctx.input(i).shape();
          args[size_t(i)] = py::tuple(py::cast(s));
        }
        shapes = parse_shapes(shape_fn_(*args, **py::reinterpret_borrow<py::dict>(kwargs_)));
      } catch (const py::error_already_set& e) {
        error = python_error_text(e);
      }
    }
    if (!error.empty()) fail(ErrorCode::Fail, "the shape function of ", what_, " raised:\n", error);
    for (size_t o = 0; o < out_types_.size(); ++o)
      if (ctx.has_output(int(o))) ctx.set_output(int(o), out_types_[o], shapes[o]);
    shaped_ = true;
  }

  void compute(OpContext& ctx) override {
    std::string error;
    {
      py::gil_scoped_acquire gil;
      try {
        py::tuple args(size_t(ctx.num_inputs()));
        for (int i = 0; i < ctx.num_inputs(); ++i)
          args[size_t(i)] = ctx.has_input(i) ? to_array(ctx.input(i)) : py::none();
        py::object r = call_(*args, **py::reinterpret_borrow<py::dict>(kwargs_));
        std::vector<py::object> items = result_items(r);
        if (items.size() != out_types_.size())
          fail(ErrorCode::Fail, what_, " returned ", items.size(), " output(s), expected ", out_types_.size());
        for (size_t o = 0; o < items.size(); ++o) {
          const Shape* declared = nullptr;
          if (shaped_ && ctx.has_output(int(o))) declared = &ctx.output(int(o)).shape();
          store_output(ctx, int(o), items[o], out_types_[o], declared);
        }
      } catch (const py::error_already_set& e) {
        error = python_error_text(e);
      }
    }
    if (!error.empty()) fail(ErrorCode::Fail, what_, " raised:\n", error);
  }

 private:
  // Input types are checked before Python sees them, as a typed kernel would.
  void check_inputs(OpContext& ctx) const {
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      if (!ctx.has_input(i)) continue;
      const Value& v = ctx.input_value(i);
      const std::string& name = ctx.node().inputs[size_t(i)];
      if (!v.is_tensor())
        fail(ErrorCode::InvalidArgument, "input ", i, " ('", name, "'): Python ops take tensors, got ", v.type_str());
      if (v.tensor().dtype() != in_types_[size_t(i)])
        fail(ErrorCode::InvalidArgument, "input ", i, " ('", name, "'): expected ", type_label(in_types_[size_t(i)]),
             ", got ", type_label(v.tensor().dtype()));
    }
  }

  std::vector<Shape> parse_shapes(const py::object& r) const {
    const std::string bad = "the shape function of " + what_ + " must return one shape (a sequence of ints) per output";
    if (!py::isinstance<py::sequence>(r) || py::isinstance<py::str>(r))
      fail(ErrorCode::Fail, bad, ", got ", python_type_name(r));
    py::sequence seq = py::reinterpret_borrow<py::sequence>(r);
    // One output: a bare shape such as (2, 3) is accepted as well as [(2, 3)].
    bool bare = out_types_.size() == 1 && seq.size() > 0;
    for (py::handle h : seq) bare = bare && !py::isinstance<py::sequence>(h);
    std::vector<py::object> items;
    if (bare) items.push_back(r);
    else
      for (py::handle h : seq) items.push_back(py::reinterpret_borrow<py::object>(h));
    if (items.size() != out_types_.size())
      fail(ErrorCode::Fail, bad, ": got ", items.size(), " shape(s), expected ", out_types_.size());
    std::vector<Shape> shapes;
    for (size_t o = 0; o < items.size(); ++o) {
      Shape s;
      try {
        s = items[o].cast<Shape>();
      } catch (const py::cast_error&) {
        fail(ErrorCode::Fail, bad, ": output ", o, " got ", std::string(py::repr(items[o])));
      }
      for (int64_t d : s)
        if (d < 0) fail(ErrorCode::Fail, bad, ": output ", o, " has a negative dimension in ", shape_str(s));
      shapes.push_back(std::move(s));
    }
    return shapes;
  }

  std::string what_;  // names the Python code in messages: "mymodule.Multi_1.compute"
  std::vector<DType> in_types_, out_types_;
  py::object call_, kwargs_, shape_fn_;
  bool shaped_ = false;
};

// --- PyOp nodes --------------------------------------------------------------------------------

std::vector<DType> declared_types(const ir::Node& node, const char* key) {
  if (!node.has_attr(key) || node.attr(key)->kind != ir::Attribute::Kind::Ints)
    fail(ErrorCode::InvalidGraph, "PyOp needs the attribute '", key, "': a list of ONNX element type numbers");
  std::vector<DType> types;
  for (int64_t code : node.attr_ints(key)) {
    if (code < 1 || code > 16 || !dtype_valid(int32_t(code)))
      fail(ErrorCode::InvalidGraph, "PyOp '", key, "': element type ", code, " is not one Kiln supports");
    types.push_back(DType(int32_t(code)));
  }
  return types;
}

std::unique_ptr<Kernel> make_pyop(const KernelInit& init) {
  const ir::Node& node = init.node;
  const std::string module = node.attr_string("module", "");
  const std::string class_name = node.attr_string("class_name", "");
  const std::string compute = node.attr_string("compute", "compute");
  if (module.empty()) fail(ErrorCode::InvalidGraph, "PyOp needs the string attribute 'module'");
  if (class_name.empty()) fail(ErrorCode::InvalidGraph, "PyOp needs the string attribute 'class_name'");
  std::vector<DType> in = declared_types(node, "input_types");
  std::vector<DType> out = declared_types(node, "output_types");
  if (in.size() != node.inputs.size())
    fail(ErrorCode::InvalidGraph, "PyOp declares ", in.size(), " input_types, the node has ", node.inputs.size(),
         " inputs");
  if (out.size() < node.outputs.size())
    fail(ErrorCode::InvalidGraph, "PyOp declares ", out.size(), " output_types, the node has ", node.outputs.size(),
         " outputs");
  static const std::set<std::string> kReserved = {"module", "class_name", "compute", "input_types", "output_types"};
  const std::string what = module + "." + class_name + "." + compute;

  py::object call, kwargs;
  std::string error;
  {
    py::gil_scoped_acquire gil;
    try {
      // As ONNX Runtime does: modules are found on sys.path, with the current directory last.
      py::list path = py::module_::import("sys").attr("path");
      if (!path.contains(py::str("."))) path.append(py::str("."));
      py::dict args;
      for (const auto& [key, a] : node.attrs)
        if (!kReserved.count(key) && a.kind == ir::Attribute::Kind::String) args[py::str(key)] = py::str(a.s);
      py::object cls = py::module_::import(module.c_str()).attr(class_name.c_str());
      call = cls(**args).attr(compute.c_str());
      kwargs = py::dict();
    } catch (const py::error_already_set& e) {
      error = python_error_text(e);
    }
  }
  if (!error.empty()) fail(ErrorCode::InvalidGraph, "PyOp cannot make ", what, ":\n", error);
  return std::make_unique<PythonKernel>(what, std::move(in), std::move(out), std::move(call), std::move(kwargs),
                                        py::object());
}

// --- Ops defined with kiln.op ------------------------------------------------------------------

enum class AttrKind { Int, Bool, Float, String, Ints, Floats, Strings };

AttrKind attr_kind(const std::string& s) {
  static const std::map<std::string, AttrKind> kinds = {
      {"int", AttrKind::Int},   {"bool", AttrKind::Bool},       {"float", AttrKind::Float},
      {"string", AttrKind::String}, {"ints", AttrKind::Ints}, {"floats", AttrKind::Floats},
      {"strings", AttrKind::Strings}};
  auto it = kinds.find(s);
  if (it == kinds.end())
    fail(ErrorCode::InvalidArgument, "attribute type '", s,
         "': expected int, bool, float, string, ints, floats or strings");
  return it->second;
}

const char* attr_kind_name(AttrKind k) {
  static const char* names[] = {"int", "bool", "float", "string", "ints", "floats", "strings"};
  return names[int(k)];
}

struct OpDef {
  std::string domain, op_type, fn_name;
  std::vector<DType> inputs, outputs;
  std::map<std::string, AttrKind> attrs;
  py::object fn, shape_fn;
  std::string name() const { return domain + "::" + op_type; }
  ~OpDef() { release_python(fn, shape_fn); }
};

// A node attribute as the Python value its declared kind calls for.
py::object attr_value(const OpDef& def, const std::string& key, const ir::Attribute& a) {
  using K = ir::Attribute::Kind;
  auto it = def.attrs.find(key);
  if (it == def.attrs.end()) {
    std::string declared;
    for (const auto& [k, kind] : def.attrs) declared += (declared.empty() ? "" : ", ") + k;
    fail(ErrorCode::InvalidGraph, "attribute '", key, "' is not declared by ", def.name(),
         " (declared: ", declared.empty() ? "none" : declared, ")");
  }
  const AttrKind want = it->second;
  switch (want) {
    case AttrKind::Int: if (a.kind == K::Int) return py::int_(a.i); break;
    case AttrKind::Bool: if (a.kind == K::Int) return py::bool_(a.i != 0); break;
    case AttrKind::Float:
      if (a.kind == K::Float) return py::float_(a.f);
      if (a.kind == K::Int) return py::float_(double(a.i));
      break;
    case AttrKind::String: if (a.kind == K::String) return py::str(a.s); break;
    case AttrKind::Ints: if (a.kind == K::Ints) return py::cast(a.ints); break;
    case AttrKind::Floats:
      if (a.kind == K::Floats) return py::cast(std::vector<double>(a.floats.begin(), a.floats.end()));
      if (a.kind == K::Ints) return py::cast(std::vector<double>(a.ints.begin(), a.ints.end()));
      break;
    case AttrKind::Strings: if (a.kind == K::Strings) return py::cast(a.strings); break;
  }
  static const char* onnx_kinds[] = {"float", "int", "string", "tensor", "graph", "floats", "ints", "strings",
                                     "tensors", "graphs"};
  fail(ErrorCode::InvalidGraph, "attribute '", key, "' of ", def.name(), ": expected ", attr_kind_name(want),
       ", the node has ", onnx_kinds[int(a.kind)]);
}

std::unique_ptr<Kernel> make_defined(const OpDef& def, const ir::Node& node) {
  if (node.inputs.size() > def.inputs.size())
    fail(ErrorCode::InvalidGraph, def.name(), " takes ", def.inputs.size(), " input(s), the node has ",
         node.inputs.size());
  if (node.outputs.size() > def.outputs.size())
    fail(ErrorCode::InvalidGraph, def.name(), " makes ", def.outputs.size(), " output(s), the node has ",
         node.outputs.size());
  std::vector<DType> in(def.inputs.begin(), def.inputs.begin() + ptrdiff_t(node.inputs.size()));
  py::object call, kwargs, shape_fn;
  {
    py::gil_scoped_acquire gil;
    py::dict args;
    for (const auto& [key, a] : node.attrs) args[py::str(key)] = attr_value(def, key, a);
    call = def.fn;
    kwargs = std::move(args);
    shape_fn = def.shape_fn;
  }
  return std::make_unique<PythonKernel>(def.name() + " (Python function " + def.fn_name + ")", std::move(in),
                                        def.outputs, std::move(call), std::move(kwargs), std::move(shape_fn));
}

KernelFactory factory_for(std::shared_ptr<const OpDef> def) {
  return [def](const KernelInit& init) { return make_defined(*def, init.node); };
}

// The process-wide registry. Never destroyed: it holds Python objects, which must not be let go
// after the interpreter is gone.
std::mutex registry_mu;
auto* registry = new std::map<std::pair<std::string, std::string>, std::shared_ptr<const OpDef>>();

std::shared_ptr<const OpDef> registered(const std::string& domain, const std::string& op_type) {
  std::lock_guard<std::mutex> lock(registry_mu);
  auto it = registry->find({domain, op_type});
  return it == registry->end() ? nullptr : it->second;
}

std::shared_ptr<OpDef> make_def(const std::string& domain, const std::string& op_type, py::object fn,
                                const std::vector<int>& inputs, const std::vector<int>& outputs,
                                const std::map<std::string, std::string>& attrs, py::object shape_fn) {
  if (domain.empty() || domain == "ai.onnx")
    fail(ErrorCode::InvalidArgument, "Python op '", op_type, "': give it a domain of its own, not ONNX's");
  if (op_type.empty()) fail(ErrorCode::InvalidArgument, "Python op in domain '", domain, "' has no op type");
  if (!PyCallable_Check(fn.ptr()))
    fail(ErrorCode::InvalidArgument, "Python op ", domain, "::", op_type, ": fn is not callable");
  if (outputs.empty()) fail(ErrorCode::InvalidArgument, "Python op ", domain, "::", op_type, " declares no outputs");
  auto def = std::make_shared<OpDef>();
  def->domain = domain;
  def->op_type = op_type;
  for (const auto* list : {&inputs, &outputs})
    for (int code : *list) {
      if (!dtype_valid(code))
        fail(ErrorCode::InvalidArgument, "Python op ", def->name(), ": element type ", code,
             " is not one Kiln supports");
      (list == &inputs ? def->inputs : def->outputs).push_back(DType(code));
    }
  for (const auto& [k, v] : attrs) def->attrs[k] = attr_kind(v);
  def->fn_name = py::str(py::getattr(fn, "__qualname__", py::repr(fn)));
  def->fn = std::move(fn);
  if (!shape_fn.is_none()) def->shape_fn = std::move(shape_fn);
  return def;
}

void add_graph_ops(const ir::Graph& g, KernelSource& source) {
  for (const auto& node : g.nodes) {
    std::pair<std::string, std::string> key{node.domain, node.op_type};
    if (!source.session_ops.count(key) && !KernelRegistry::global().find(node.domain, node.op_type, node.opset))
      if (auto def = registered(node.domain, node.op_type)) source.session_ops[key] = factory_for(def);
    for (const auto& [k, a] : node.attrs) {
      if (a.g) add_graph_ops(*a.g, source);
      for (const auto& sg : a.graphs) add_graph_ops(*sg, source);
    }
  }
}

}  // namespace

py::dtype numpy_type(DType t) {
  constexpr int kNpyObject = 17, kNpyHalf = 23;  // numpy's type numbers (NPY_OBJECT, NPY_HALF)
  switch (t) {
    case DType::Float32: return py::dtype::of<float>();
    case DType::Float64: return py::dtype::of<double>();
    case DType::Float16: return py::dtype(kNpyHalf);
    case DType::BFloat16: return py::dtype::of<uint16_t>();  // bit patterns: numpy has no bfloat16
    case DType::Int8: return py::dtype::of<int8_t>();
    case DType::Int16: return py::dtype::of<int16_t>();
    case DType::Int32: return py::dtype::of<int32_t>();
    case DType::Int64: return py::dtype::of<int64_t>();
    case DType::UInt8: return py::dtype::of<uint8_t>();
    case DType::UInt16: return py::dtype::of<uint16_t>();
    case DType::UInt32: return py::dtype::of<uint32_t>();
    case DType::UInt64: return py::dtype::of<uint64_t>();
    case DType::Bool: return py::dtype::of<bool>();
    case DType::String: return py::dtype(kNpyObject);
    default: fail(ErrorCode::NotImplemented, "no numpy type for ", type_label(t));
  }
}

// The session's own ops, then the registered ops its graph uses, as they are now: a session
// keeps the definitions it was created with.
void add_session_python_ops(KernelSource& source, const ir::Model& model, const py::list& ops) {
  for (py::handle h : ops) {
    auto def = h.cast<std::shared_ptr<OpDef>>();
    source.session_ops[{def->domain, def->op_type}] = factory_for(def);
  }
  add_graph_ops(model.graph, source);
}

void bind_python_ops(py::module_& m) {
  py::class_<OpDef, std::shared_ptr<OpDef>>(m, "PythonOpDef")
      .def(py::init(&make_def), py::arg("domain"), py::arg("op_type"), py::arg("fn"), py::arg("inputs"),
           py::arg("outputs"), py::arg("attrs"), py::arg("shape") = py::none())
      .def_readonly("domain", &OpDef::domain)
      .def_readonly("op_type", &OpDef::op_type);

  // A replaced definition is let go after the lock is released: its destructor takes the GIL.
  m.def("register_python_op", [](std::shared_ptr<OpDef> def) {
    std::shared_ptr<const OpDef> old;
    {
      std::lock_guard<std::mutex> lock(registry_mu);
      auto& slot = (*registry)[{def->domain, def->op_type}];
      old = std::move(slot);
      slot = std::move(def);
    }
  });
  m.def("unregister_python_op", [](const std::string& domain, const std::string& op_type) {
    std::shared_ptr<const OpDef> old;
    {
      std::lock_guard<std::mutex> lock(registry_mu);
      auto it = registry->find({domain, op_type});
      if (it == registry->end()) return false;
      old = std::move(it->second);
      registry->erase(it);
    }
    return true;
  });

  KernelRegistry::global().add_resolver([](const ir::Node& node) -> KernelFactory {
    if (auto def = registered(node.domain, node.op_type)) return factory_for(def);
    if (node.op_type == "PyOp") return make_pyop;
    return {};
  });
}

}  // namespace kiln::python
