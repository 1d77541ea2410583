#include "kiln/import/onnx_import.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "kiln/core/error.h"
#include "kiln/import/model_file.h"

namespace kiln {

namespace fs = std::filesystem;

namespace {

// ONNX 1.12's checker knows IR <= 8 and ai.onnx <= 17; beyond that Kiln's own checks decide.
constexpr int64_t kCheckerMaxIr = 8;
constexpr int64_t kCheckerMaxOpset = 17;
constexpr int64_t kMinIr = 3, kMaxIr = 12;

struct ImportContext {
  std::string model_path;  // for messages
  fs::path base_dir;       // where external data lives
  const std::map<std::string, int64_t>* opsets;
};

int64_t checked_count(const onnx::TensorProto& tp, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : tp.dims()) {
    if (d < 0) fail(ErrorCode::InvalidGraph, what, ": negative dimension ", d);
    if (d != 0 && n > (int64_t(1) << 50) / d) fail(ErrorCode::InvalidGraph, what, ": shape is too large");
    n *= d;
  }
  return n;
}

// Reads `bytes` bytes of external data into `dst`.
void read_external(const onnx::TensorProto& tp, const ImportContext& ctx, const std::string& what, void* dst,
                   size_t bytes) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : tp.external_data()) {
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") offset = std::stoll(kv.value());
    else if (kv.key() == "length") length = std::stoll(kv.value());
  }
  if (location.empty()) fail(ErrorCode::InvalidGraph, what, ": external data without a location");
  fs::path rel(location);
  if (rel.is_absolute())
    fail(ErrorCode::InvalidGraph, what, ": external data location '", location,
         "' is an absolute path; it must be relative to the model's folder");
  fs::path base = fs::weakly_canonical(ctx.base_dir);
  fs::path full = fs::weakly_canonical(base / rel);
  auto [b, f] = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (b != base.end())
    fail(ErrorCode::InvalidGraph, what, ": external data location '", location, "' leaves the model's folder ",
         base.string());
  std::ifstream in(full, std::ios::binary);
  if (!in) fail(ErrorCode::NoSuchFile, what, ": external data file '", full.string(), "' cannot be opened");
  in.seekg(0, std::ios::end);
  int64_t file_size = in.tellg();
  if (length < 0) length = int64_t(bytes);
  if (offset < 0 || offset + length > file_size)
    fail(ErrorCode::InvalidGraph, what, ": external data range [", offset, ", ", offset + length, ") exceeds '",
         full.string(), "' of ", file_size, " bytes");
  if (size_t(length) != bytes)
    fail(ErrorCode::InvalidGraph, what, ": holds ", length, " bytes of data, its shape and type need ", bytes);
  in.seekg(offset);
  if (bytes && !in.read(static_cast<char*>(dst), int64_t(bytes)))
    fail(ErrorCode::InvalidGraph, what, ": reading ", bytes, " bytes of external data from '", full.string(), "' failed");
}

Tensor import_tensor(const onnx::TensorProto& tp, const ImportContext& ctx, const std::string& what) {
  if (!dtype_valid(tp.data_type()))
    fail(ErrorCode::NotImplemented, what, ": element type ", tp.data_type(), " is not supported");
  DType dt = DType(tp.data_type());
  int64_t n = checked_count(tp, what);
  Shape shape(tp.dims().begin(), tp.dims().end());
  const size_t bytes = size_t(n) * dtype_size(dt);
  if (tp.data_location() != onnx::TensorProto::EXTERNAL && dt != DType::String && tp.has_raw_data()) {
    if (tp.raw_data().size() != bytes)
      fail(ErrorCode::InvalidGraph, what, ": holds ", tp.raw_data().size(), " bytes of data, shape ", shape_str(shape),
           " of ", dtype_name(dt), " needs ", bytes);
    // The parsed bytes become the tensor's storage: the weights are not copied again. The
    // protobuf objects belong to the import, which gives up its copy here.
    auto owner = std::make_shared<std::string>(std::move(*const_cast<onnx::TensorProto&>(tp).mutable_raw_data()));
    return Tensor::view(dt, shape, owner->data(), owner);
  }
  Tensor t(dt, shape);
  auto expect_count = [&](int64_t got) {
    if (got != n)
      fail(ErrorCode::InvalidGraph, what, ": holds ", got, " values, shape ", shape_str(shape), " needs ", n);
  };

  if (tp.data_location() == onnx::TensorProto::EXTERNAL) {
    if (dt == DType::String) fail(ErrorCode::InvalidGraph, what, ": string tensors cannot use external data");
    read_external(tp, ctx, what, t.raw(), bytes);
    return t;
  }
  if (dt == DType::String) {
    expect_count(tp.string_data_size());
    auto* s = t.data<std::string>();
    for (int64_t i = 0; i < n; ++i) s[i] = tp.string_data(int(i));
    return t;
  }
  switch (dt) {
    case DType::Float32:
      expect_count(tp.float_data_size());
      std::copy(tp.float_data().begin(), tp.float_data().end(), t.data<float>());
      break;
    case DType::Float64:
      expect_count(tp.double_data_size());
      std::copy(tp.double_data().begin(), tp.double_data().end(), t.data<double>());
      break;
    case DType::Int64:
      expect_count(tp.int64_data_size());
      std::copy(tp.int64_data().begin(), tp.int64_data().end(), t.data<int64_t>());
      break;
    case DType::UInt32:
    case DType::UInt64:
      expect_count(tp.uint64_data_size());
      dispatch(TypeList<uint32_t, uint64_t>{}, dt, what.c_str(), [&]<typename T>() {
        for (int64_t i = 0; i < n; ++i) t.data<T>()[i] = T(tp.uint64_data(int(i)));
      });
      break;
    default:  // int32_data carries every narrower type, bool and the 16-bit floats
      expect_count(tp.int32_data_size());
      dispatch(TypeList<int32_t, int8_t, int16_t, uint8_t, uint16_t, bool, Float16, BFloat16>{}, dt, what.c_str(),
               [&]<typename T>() {
                 for (int64_t i = 0; i < n; ++i) {
                   int32_t v = tp.int32_data(int(i));
                   if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>)
                     t.data<T>()[i] = T{uint16_t(v)};
                   else
                     t.data<T>()[i] = T(v);
                 }
               });
  }
  return t;
}

ir::TypeInfo import_type(const onnx::TypeProto& tp) {
  ir::TypeInfo t;
  auto shape_of = [](const onnx::TensorShapeProto& sp) {
    std::vector<ir::Dim> dims;
    for (const auto& d : sp.dim()) {
      ir::Dim dim;
      if (d.has_dim_value()) dim.value = d.dim_value();
      else if (d.has_dim_param()) dim.symbol = d.dim_param();
      dims.push_back(dim);
    }
    return dims;
  };
  switch (tp.value_case()) {
    case onnx::TypeProto::kTensorType:
      t.kind = ir::ValueKind::Tensor;
      t.dtype = DType(tp.tensor_type().elem_type());
      if (tp.tensor_type().has_shape()) t.shape = shape_of(tp.tensor_type().shape());
      break;
    case onnx::TypeProto::kSequenceType:
      t.kind = ir::ValueKind::Sequence;
      t.elem = std::make_shared<ir::TypeInfo>(import_type(tp.sequence_type().elem_type()));
      break;
    case onnx::TypeProto::kOptionalType:
      t.kind = ir::ValueKind::Optional;
      t.elem = std::make_shared<ir::TypeInfo>(import_type(tp.optional_type().elem_type()));
      break;
    case onnx::TypeProto::kSparseTensorType:
      t.kind = ir::ValueKind::SparseTensor;
      t.dtype = DType(tp.sparse_tensor_type().elem_type());
      if (tp.sparse_tensor_type().has_shape()) t.shape = shape_of(tp.sparse_tensor_type().shape());
      break;
    case onnx::TypeProto::kMapType:
      t.kind = ir::ValueKind::Map;
      break;
    default:
      t.kind = ir::ValueKind::Unknown;
  }
  return t;
}

ir::ValueInfo import_value_info(const onnx::ValueInfoProto& vp) {
  ir::ValueInfo v;
  v.name = vp.name();
  v.doc_string = vp.doc_string();
  if (vp.has_type()) v.type = import_type(vp.type());
  else v.type.kind = ir::ValueKind::Unknown;
  return v;
}

std::shared_ptr<ir::Graph> import_graph(const onnx::GraphProto& gp, const ImportContext& ctx);

ir::Attribute import_attribute(const onnx::AttributeProto& ap, const ImportContext& ctx, const std::string& where) {
  using K = ir::Attribute::Kind;
  ir::Attribute a;
  const std::string what = where + " attribute '" + ap.name() + "'";
  if (ap.has_ref_attr_name()) {
    a.ref = ap.ref_attr_name();
    return a;
  }
  switch (ap.type()) {
    case onnx::AttributeProto::FLOAT: a.kind = K::Float; a.f = ap.f(); break;
    case onnx::AttributeProto::INT: a.kind = K::Int; a.i = ap.i(); break;
    case onnx::AttributeProto::STRING: a.kind = K::String; a.s = ap.s(); break;
    case onnx::AttributeProto::TENSOR: a.kind = K::Tensor; a.t = import_tensor(ap.t(), ctx, what); break;
    case onnx::AttributeProto::GRAPH: a.kind = K::Graph; a.g = import_graph(ap.g(), ctx); break;
    case onnx::AttributeProto::FLOATS: a.kind = K::Floats; a.floats.assign(ap.floats().begin(), ap.floats().end()); break;
    case onnx::AttributeProto::INTS: a.kind = K::Ints; a.ints.assign(ap.ints().begin(), ap.ints().end()); break;
    case onnx::AttributeProto::STRINGS: a.kind = K::Strings; a.strings.assign(ap.strings().begin(), ap.strings().end()); break;
    case onnx::AttributeProto::TENSORS:
      a.kind = K::Tensors;
      for (const auto& t : ap.tensors()) a.tensors.push_back(import_tensor(t, ctx, what));
      break;
    case onnx::AttributeProto::GRAPHS:
      a.kind = K::Graphs;
      for (const auto& g : ap.graphs()) a.graphs.push_back(import_graph(g, ctx));
      break;
    case onnx::AttributeProto::TYPE_PROTO:
      a.kind = K::Type;
      a.type = std::make_shared<ir::TypeInfo>(import_type(ap.tp()));
      break;
    case onnx::AttributeProto::SPARSE_TENSOR:
    case onnx::AttributeProto::SPARSE_TENSORS:
      fail(ErrorCode::NotImplemented, what, ": sparse tensor attributes are not supported");
    default:
      // Older writers leave `type` unset; infer it from the field that is filled.
      if (ap.has_f()) { a.kind = K::Float; a.f = ap.f(); }
      else if (ap.has_i()) { a.kind = K::Int; a.i = ap.i(); }
      else if (ap.has_s()) { a.kind = K::String; a.s = ap.s(); }
      else if (ap.has_t()) { a.kind = K::Tensor; a.t = import_tensor(ap.t(), ctx, what); }
      else if (ap.has_g()) { a.kind = K::Graph; a.g = import_graph(ap.g(), ctx); }
      else if (ap.floats_size()) { a.kind = K::Floats; a.floats.assign(ap.floats().begin(), ap.floats().end()); }
      else if (ap.ints_size()) { a.kind = K::Ints; a.ints.assign(ap.ints().begin(), ap.ints().end()); }
      else if (ap.strings_size()) { a.kind = K::Strings; a.strings.assign(ap.strings().begin(), ap.strings().end()); }
      else fail(ErrorCode::InvalidGraph, what, " has no type and no value");
  }
  return a;
}

ir::Node import_node(const onnx::NodeProto& np, const ImportContext& ctx, int index) {
  ir::Node n;
  n.name = np.name().empty() ? np.op_type() + "_" + std::to_string(index) : np.name();
  n.op_type = np.op_type();
  n.domain = np.domain() == "ai.onnx" ? "" : np.domain();
  n.inputs.assign(np.input().begin(), np.input().end());
  n.outputs.assign(np.output().begin(), np.output().end());
  auto it = ctx.opsets->find(n.domain);
  n.opset = it == ctx.opsets->end() ? 1 : int(it->second);
  for (const auto& ap : np.attribute()) n.attrs[ap.name()] = import_attribute(ap, ctx, n.label());
  return n;
}

std::shared_ptr<ir::Graph> import_graph(const onnx::GraphProto& gp, const ImportContext& ctx) {
  auto g = std::make_shared<ir::Graph>();
  g->name = gp.name();
  g->doc_string = gp.doc_string();
  for (const auto& t : gp.initializer()) {
    if (t.name().empty()) fail(ErrorCode::InvalidGraph, "graph '", gp.name(), "' has an initializer without a name");
    g->initializers[t.name()] = import_tensor(t, ctx, "initializer '" + t.name() + "'");
  }
  if (gp.sparse_initializer_size())
    fail(ErrorCode::NotImplemented, "graph '", gp.name(), "' has sparse initializers, which Kiln does not load yet");
  for (const auto& v : gp.input()) g->inputs.push_back(import_value_info(v));
  for (const auto& v : gp.output()) g->outputs.push_back(import_value_info(v));
  for (const auto& v : gp.value_info()) g->value_info.push_back(import_value_info(v));
  int index = 0;
  for (const auto& np : gp.node()) g->nodes.push_back(import_node(np, ctx, index++));
  return g;
}

// A model-local function: its body is inlined at every call.
struct Function {
  std::vector<std::string> inputs, outputs;
  std::vector<ir::Node> nodes;
};
using Functions = std::map<std::pair<std::string, std::string>, Function>;

Functions import_functions(const onnx::ModelProto& mp, const ImportContext& model_ctx) {
  Functions fns;
  for (const auto& fp : mp.functions()) {
    std::map<std::string, int64_t> opsets = *model_ctx.opsets;
    for (const auto& op : fp.opset_import()) opsets[op.domain() == "ai.onnx" ? "" : op.domain()] = op.version();
    ImportContext ctx = model_ctx;
    ctx.opsets = &opsets;
    Function f;
    f.inputs.assign(fp.input().begin(), fp.input().end());
    f.outputs.assign(fp.output().begin(), fp.output().end());
    int index = 0;
    for (const auto& np : fp.node()) f.nodes.push_back(import_node(np, ctx, index++));
    fns[{fp.domain() == "ai.onnx" ? "" : fp.domain(), fp.name()}] = std::move(f);
  }
  return fns;
}

// Renames the names `names` maps in a subgraph, except those the subgraph defines itself.
void rename_reads(ir::Graph& g, const std::map<std::string, std::string>& names) {
  std::map<std::string, std::string> visible = names;
  for (const auto& v : g.inputs) visible.erase(v.name);
  for (const auto& [k, t] : g.initializers) visible.erase(k);
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs) visible.erase(o);
  for (auto& n : g.nodes) {
    for (auto& i : n.inputs)
      if (auto it = visible.find(i); it != visible.end()) i = it->second;
    for (auto& [k, a] : n.attrs) {
      if (a.g) rename_reads(*a.g, visible);
      for (auto& sg : a.graphs) rename_reads(*sg, visible);
    }
  }
}

// Replaces every call of a model-local function, in `g` and its subgraphs, by the body.
void inline_functions(ir::Graph& g, const Functions& fns, int& counter, int depth) {
  if (depth > 32) fail(ErrorCode::InvalidGraph, "model-local functions nest deeper than 32 levels (recursion?)");
  std::vector<ir::Node> out;
  bool expanded = false;
  for (auto& node : g.nodes) {
    for (auto& [k, a] : node.attrs) {
      if (a.g) inline_functions(*a.g, fns, counter, depth);
      for (auto& sg : a.graphs) inline_functions(*sg, fns, counter, depth);
    }
    auto it = fns.find({node.domain, node.op_type});
    if (it == fns.end()) {
      out.push_back(std::move(node));
      continue;
    }
    const Function& f = it->second;
    expanded = true;
    const std::string prefix = node.name + "/" + std::to_string(counter++) + "/";
    std::map<std::string, std::string> names;
    for (size_t i = 0; i < f.inputs.size(); ++i) names[f.inputs[i]] = i < node.inputs.size() ? node.inputs[i] : "";
    for (size_t i = 0; i < f.outputs.size(); ++i) names[f.outputs[i]] = i < node.outputs.size() ? node.outputs[i] : "";
    auto rename = [&](const std::string& n) {
      if (n.empty()) return n;
      auto r = names.find(n);
      return r != names.end() ? r->second : prefix + n;
    };
    for (ir::Node body : f.nodes) {
      body.name = prefix + body.name;
      for (auto& i : body.inputs) i = rename(i);
      for (auto& o : body.outputs) o = rename(o);
      for (auto a = body.attrs.begin(); a != body.attrs.end();) {
        if (a->second.ref.empty()) {
          if (a->second.g) rename_reads(*a->second.g, names);
          ++a;
          continue;
        }
        // ONNX 1.12's FunctionProto has no attribute defaults: an attribute the call omits is absent.
        const ir::Attribute* given = node.attr(a->second.ref);
        if (given) a->second = *given, ++a;
        else a = body.attrs.erase(a);
      }
      out.push_back(std::move(body));
    }
  }
  g.nodes = std::move(out);
  if (expanded) inline_functions(g, fns, counter, depth + 1);  // bodies may call functions
}

bool checker_applies(const onnx::ModelProto& mp) {
  if (mp.ir_version() > kCheckerMaxIr) return false;
  std::set<std::string> declared;
  for (const auto& op : mp.opset_import()) {
    std::string d = op.domain() == "ai.onnx" ? "" : op.domain();
    declared.insert(d);
    if (d.empty() && op.version() > kCheckerMaxOpset) return false;
    if (!d.empty() && d != "ai.onnx.ml") return false;  // custom domains: the checker cannot judge them
  }
  for (const auto& n : mp.graph().node())
    if (!declared.count(n.domain() == "ai.onnx" ? "" : n.domain())) return false;
  return mp.functions_size() == 0;
}

std::shared_ptr<ir::Model> import_model(onnx::ModelProto& mp, const std::string& path, const fs::path& base_dir,
                                        bool check) {
  const std::string label = path.empty() ? std::string("model bytes") : "model '" + path + "'";
  if (!mp.has_graph()) fail(ErrorCode::InvalidGraph, label, " has no graph");
  if (mp.ir_version() < kMinIr || mp.ir_version() > kMaxIr)
    fail(ErrorCode::InvalidGraph, label, ": IR version ", mp.ir_version(), " is not supported (Kiln loads ",
         kMinIr, " to ", kMaxIr, ")");
  std::string checker_message;
  if (check && checker_applies(mp)) {
    try {
      onnx::checker::CheckerContext cctx;
      cctx.set_ir_version(int(mp.ir_version()));
      std::unordered_map<std::string, int> opsets;
      for (const auto& op : mp.opset_import()) opsets[op.domain()] = int(op.version());
      cctx.set_opset_imports(opsets);
      cctx.set_model_dir(base_dir.string());
      onnx::checker::LexicalScopeContext lex;
      onnx::checker::check_graph(mp.graph(), cctx, lex);
    } catch (const onnx::checker::ValidationError& e) {
      // ONNX Runtime runs models the checker rejects (outputs without shapes, say): report, don't refuse.
      checker_message = e.what();
    }
  }
  auto m = std::make_shared<ir::Model>();
  m->checker_message = checker_message;
  m->ir_version = mp.ir_version();
  for (const auto& op : mp.opset_import()) m->opsets[op.domain() == "ai.onnx" ? "" : op.domain()] = op.version();
  if (!m->opsets.count("")) m->opsets[""] = 1;
  m->producer_name = mp.producer_name();
  m->producer_version = mp.producer_version();
  m->domain = mp.domain();
  m->doc_string = mp.doc_string();
  m->model_version = mp.model_version();
  for (const auto& kv : mp.metadata_props()) m->metadata[kv.key()] = kv.value();
  m->path = path;
  ImportContext ctx{path, base_dir, &m->opsets};
  m->graph = std::move(*import_graph(mp.graph(), ctx));
  if (mp.functions_size()) {
    int counter = 0;
    inline_functions(m->graph, import_functions(mp, ctx), counter, 0);
  }
  return m;
}

bool parse(onnx::ModelProto& mp, const void* data, size_t size) {
  google::protobuf::io::ArrayInputStream raw(data, int(size));
  google::protobuf::io::CodedInputStream in(&raw);
  in.SetTotalBytesLimit(INT32_MAX);
  return mp.ParseFromCodedStream(&in) && in.ConsumedEntireMessage();
}

}  // namespace

std::shared_ptr<ir::Model> load_model_file(const std::string& path, bool check) {
  onnx::ModelProto mp;
  parse_model_file(path, mp);
  fs::path base = fs::path(path).parent_path();
  return import_model(mp, path, base.empty() ? fs::current_path() : base, check);
}

std::shared_ptr<ir::Model> load_model_bytes(const void* data, size_t size, const std::string& base_dir, bool check) {
  if (size >= size_t(INT32_MAX))
    fail(ErrorCode::InvalidProtobuf, "model bytes of ", size, " bytes are over protobuf's 2 GB limit");
  onnx::ModelProto mp;
  if (!parse(mp, data, size))
    fail(ErrorCode::InvalidProtobuf, "the bytes given are not a valid ONNX model (protobuf parsing failed)");
  return import_model(mp, "", base_dir.empty() ? fs::current_path() : fs::path(base_dir), check);
}

}  // namespace kiln
