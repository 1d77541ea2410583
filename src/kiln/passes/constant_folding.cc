// Runs every node whose inputs are all constant once, at session creation, and stores its
// outputs as initializers: Constant nodes, shape arithmetic on static shapes, weight
// transposes exported by PyTorch.
#include <set>

#include "kiln/exec/frame.h"
#include "kiln/passes/passes.h"

namespace kiln {

namespace {

bool foldable(const ir::Node& node) {
  static const std::set<std::string> kNever = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                               "RandomUniformLike", "Bernoulli", "Multinomial", "Dropout"};
  if (!node.domain.empty() || kNever.count(node.op_type)) return false;
  for (const auto& [k, a] : node.attrs)
    if (a.g || !a.graphs.empty()) return false;
  return KernelRegistry::global().find(node.domain, node.op_type, node.opset) != nullptr;  // static kernels only
}

}  // namespace

void fold_constants(ir::Graph& graph) {
  std::set<std::string> overridable;
  for (const auto& v : graph.inputs) overridable.insert(v.name);
  const ExecutionPlan plan = build_execution_plan(graph);
  std::set<size_t> folded;
  for (const Step& step : plan.steps) {
    const ir::Node& node = graph.nodes[size_t(step.node)];
    if (!foldable(node)) continue;
    bool constant = true;
    for (const auto& in : node.inputs)
      if (!in.empty() && (!graph.initializers.count(in) || overridable.count(in))) constant = false;
    if (!constant) continue;

    ir::Graph one;
    one.nodes.push_back(node);
    for (const auto& in : node.inputs)
      if (!in.empty()) one.initializers[in] = graph.initializers.at(in);
    for (const auto& out : node.outputs)
      if (!out.empty()) one.outputs.push_back(ir::ValueInfo{out, {}, {}});
    std::vector<Value> results;
    try {
      const ExecutionPlan one_plan = build_execution_plan(one);
      Frame frame(one_plan, nullptr);
      results = frame.run({});
    } catch (const Error&) {
      continue;  // leave it to run time, where the error names the inputs that reach it
    }
    bool all_tensors = true;
    for (const Value& v : results) all_tensors &= v.is_tensor();
    if (!all_tensors) continue;
    size_t k = 0;
    for (const auto& out : node.outputs)
      if (!out.empty()) graph.initializers[out] = results[k++].tensor();
    folded.insert(size_t(step.node));
  }
  ir::erase_nodes(graph, folded);
}

}  // namespace kiln
