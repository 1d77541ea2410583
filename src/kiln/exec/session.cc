#include "kiln/exec/session.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <thread>

#include "kiln/core/parallel.h"
#include "kiln/passes/passes.h"

namespace kiln {

namespace {

void collect_unsupported(const ir::Graph& g, const KernelSource& source, std::set<std::string>& missing) {
  for (const auto& node : g.nodes) {
    if (!source.find(node)) {
      std::string d = node.domain.empty() ? "" : node.domain + "::";
      missing.insert(d + node.op_type + " (opset " + std::to_string(node.opset) + ")");
    }
    for (const auto& [key, a] : node.attrs) {
      if (a.g) collect_unsupported(*a.g, source, missing);
      for (const auto& sg : a.graphs) collect_unsupported(*sg, source, missing);
    }
  }
}

std::string type_str(const ir::TypeInfo& t) { return std::string("tensor(") + dtype_name(t.dtype) + ")"; }

}  // namespace

std::vector<std::string> unsupported_ops(const ir::Model& model, const KernelSource& source) {
  std::set<std::string> missing;
  collect_unsupported(model.graph, source, missing);
  return {missing.begin(), missing.end()};
}

Session::Session(std::shared_ptr<ir::Model> model, SessionConfig config)
    : model_(std::move(model)), config_(std::move(config)) {
  if (config_.profile) profiler_ = std::make_unique<Profiler>();
  threads_ = config_.intra_op_threads > 0 ? config_.intra_op_threads : int(std::thread::hardware_concurrency());
  if (threads_ <= 0) threads_ = 1;
  ThreadLimit limit(threads_);  // load-time packing and constant folding run on the session's threads too
  upgrade_legacy_ops(model_->graph);  // old-opset nodes as the modern kernels know them
  expand_gradients(model_->graph);    // Gradient nodes as the nodes computing them
  auto missing = unsupported_ops(*model_, config_.kernels);
  if (!missing.empty()) {
    std::ostringstream os;
    os << "Kiln has no kernel for " << missing.size() << " op(s) of this model: ";
    for (size_t i = 0; i < missing.size(); ++i) os << (i ? ", " : "") << missing[i];
    fail(ErrorCode::NotImplemented, os.str());
  }
  optimize_graph(*model_, config_);
  if (config_.optimization != OptLevel::Disabled) WeightPacking::pack_all(model_->graph);
  plan_ = build_execution_plan(model_->graph);
  idle_.push_back(std::make_unique<Frame>(plan_, nullptr, &config_.kernels));  // builds every kernel once, now
}

Session::~Session() = default;

ir::Model Session::optimized_model() const {
  ir::Model copy = *model_;  // tensors share storage: only unpacked weights are new
  // In the plan's order: a fused node may read a value that a node after it in the graph's list
  // writes (a residual convolution's Z), and ONNX wants the nodes sorted.
  copy.graph.nodes.clear();
  for (const Step& s : plan_.steps) copy.graph.nodes.push_back(model_->graph.nodes[size_t(s.node)]);
  WeightPacking::unpack_all(copy.graph);
  return copy;
}

std::vector<const ir::ValueInfo*> Session::inputs() const {
  std::vector<const ir::ValueInfo*> out;
  for (const auto& v : model_->graph.inputs)
    if (!model_->graph.initializers.count(v.name)) out.push_back(&v);
  return out;
}

std::vector<const ir::ValueInfo*> Session::outputs() const {
  std::vector<const ir::ValueInfo*> out;
  for (const auto& v : model_->graph.outputs) out.push_back(&v);
  return out;
}

std::vector<const ir::ValueInfo*> Session::overridable_initializers() const {
  std::vector<const ir::ValueInfo*> out;
  for (const auto& v : model_->graph.inputs)
    if (model_->graph.initializers.count(v.name)) out.push_back(&v);
  return out;
}

std::unique_ptr<Frame> Session::borrow_frame() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto f = std::move(idle_.back());
      idle_.pop_back();
      return f;
    }
  }
  return std::make_unique<Frame>(plan_, nullptr, &config_.kernels);
}

void Session::return_frame(std::unique_ptr<Frame> frame) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(frame));
}

void Session::check_feed(const ir::ValueInfo& info, const Value& v) const {
  const ir::TypeInfo& want = info.type;
  if (want.kind == ir::ValueKind::Sequence && !v.is_sequence())
    fail(ErrorCode::InvalidArgument, "input '", info.name, "' is a sequence; got ", v.type_str());
  if (v.is_none() && want.kind != ir::ValueKind::Optional)
    fail(ErrorCode::InvalidArgument, "input '", info.name, "' is not optional; got None");
  if (want.kind != ir::ValueKind::Tensor || !v.is_tensor()) return;
  const Tensor& t = v.tensor();
  if (want.dtype != DType::Undefined && t.dtype() != want.dtype)
    fail(ErrorCode::InvalidArgument, "Unexpected input data type for input '", info.name, "'. Actual: (tensor(",
         dtype_name(t.dtype()), ")) , expected: (", type_str(want), ")");
  if (!want.shape) return;
  const auto& dims = *want.shape;
  if (int64_t(dims.size()) != t.rank())
    fail(ErrorCode::InvalidArgument, "Invalid rank for input: ", info.name, " Got: ", t.rank(),
         " Expected: ", dims.size(), " Please fix either the inputs or the model.");
  auto wrong = [&](size_t i) { return dims[i].value && *dims[i].value != t.dim(int64_t(i)); };
  bool any = false;
  for (size_t i = 0; i < dims.size(); ++i) any |= wrong(i);
  if (!any) return;  // the usual case, before any string is built (a stream costs a run 0.3 us)
  std::ostringstream bad;
  for (size_t i = 0; i < dims.size(); ++i)
    if (wrong(i)) bad << " index: " << i << " Got: " << t.dim(int64_t(i)) << " Expected: " << *dims[i].value << "\n";
  fail(ErrorCode::InvalidArgument, "Got invalid dimensions for input: ", info.name, " for the following indices\n",
       bad.str(), " Please fix either the inputs or the model.");
}

std::vector<Value> Session::run(const std::vector<std::pair<std::string, Value>>& feeds,
                                const std::vector<std::string>& fetch, RunContext ctx) {
  const ir::Graph& g = model_->graph;
  std::vector<std::pair<int, Value>> bound;
  std::vector<int> fed;  // a model has few inputs: a scan beats a tree's allocations
  for (const auto& [name, t] : feeds) {
    const ir::ValueInfo* info = nullptr;
    for (const auto& v : g.inputs)
      if (v.name == name) info = &v;
    if (!info) {
      std::ostringstream os;
      for (const auto* v : inputs()) os << (os.str().empty() ? "" : ", ") << v->name;
      fail(ErrorCode::InvalidArgument, "Invalid input name: '", name, "'; the model's inputs are: ", os.str());
    }
    check_feed(*info, t);
    int id = plan_.id(name);
    if (id < 0) continue;  // declared but unused by any node
    if (std::find(fed.begin(), fed.end(), id) != fed.end())
      fail(ErrorCode::InvalidArgument, "input '", name, "' is fed twice");
    fed.push_back(id);
    bound.emplace_back(id, t);
  }
  for (int v : plan_.graph_inputs)
    if (std::find(fed.begin(), fed.end(), v) == fed.end())
      fail(ErrorCode::InvalidArgument, "Missing input: '", plan_.value_names[size_t(v)], "' must be fed");

  std::vector<int> wanted;
  if (fetch.empty()) {
    wanted = plan_.graph_outputs;
  } else {
    for (const auto& name : fetch) {
      bool is_output = false;
      for (const auto& v : g.outputs) is_output |= v.name == name;
      if (!is_output) fail(ErrorCode::InvalidArgument, "Invalid output name: '", name, "' is not a model output");
      wanted.push_back(plan_.id(name));
    }
  }

  const int saved_threads = num_threads();
  set_num_threads(threads_);
  ctx.profiler = profiler_.get();
  const int64_t t0 = profiler_ ? profiler_->now_us() : 0;
  auto frame = borrow_frame();
  std::vector<Value> results;
  try {
    results = frame->run(bound, wanted, &ctx);
  } catch (...) {
    set_num_threads(saved_threads);
    return_frame(std::move(frame));
    throw;
  }
  set_num_threads(saved_threads);
  return_frame(std::move(frame));
  if (profiler_) profiler_->record(RunEvent{t0, profiler_->now_us() - t0, ctx.tag});
  return results;
}

}  // namespace kiln
