// Removes nodes whose outputs nothing reads, and initializers no node reads; Identity and
// inference-mode Dropout nodes hand their input straight to their readers.
#include <map>
#include <set>

#include "kiln/ir/graph_view.h"
#include "kiln/passes/passes.h"

namespace kiln {

namespace {
void collect_reads(const ir::Graph& g, std::set<std::string>& reads) {
  for (const auto& n : g.nodes) {
    for (const auto& i : n.inputs) reads.insert(i);
    for (const auto& [k, a] : n.attrs) {
      if (a.g) collect_reads(*a.g, reads);
      for (const auto& sg : a.graphs) collect_reads(*sg, reads);
    }
  }
}

// A node that passes input 0 through unchanged: Identity, or Dropout whose mask nobody asked
// for and that is not training (from opset 12: no training_mode input or a constant false one;
// opsets 7-11 always at inference; before 7, with is_test).
bool passes_through(const ir::Node& n, const GraphView& view) {
  if (!n.domain.empty() || n.inputs.empty() || n.inputs[0].empty()) return false;
  if (n.op_type == "Identity") return n.outputs.size() == 1;
  if (n.op_type != "Dropout" || n.outputs.empty() || (n.outputs.size() > 1 && !n.outputs[1].empty())) return false;
  if (n.opset < 12) return n.opset >= 7 || n.attr_int("is_test", 0) != 0;
  if (!n.has_input(2)) return true;
  const Tensor* t = view.constant(n.inputs[2]);
  return t && t->size() == 1 && t->dtype() == DType::Bool && !t->data<bool>()[0];
}

// Readers of a pass-through node's output read its input instead; the node goes. Outputs of the
// graph and names read inside subgraphs keep their node (renaming them is not worth it).
void bypass_pass_through(ir::Graph& graph) {
  GraphView view(graph);
  std::map<std::string, std::string> alias;
  std::map<std::string, int> node_reads;
  for (const auto& n : graph.nodes)
    for (const auto& in : n.inputs) ++node_reads[in];
  std::vector<ir::Node> kept;
  for (auto& n : graph.nodes) {
    const std::string& out = n.outputs.empty() ? std::string() : n.outputs[0];
    if (passes_through(n, view) && !view.is_graph_output(out) && view.readers(out) == node_reads[out]) {
      auto it = alias.find(n.inputs[0]);
      alias[out] = it == alias.end() ? n.inputs[0] : it->second;
      continue;
    }
    for (auto& in : n.inputs) {
      auto it = alias.find(in);
      if (it != alias.end()) in = it->second;
    }
    kept.push_back(std::move(n));
  }
  graph.nodes = std::move(kept);
}
}  // namespace

void remove_dead_code(ir::Graph& graph) {
  bypass_pass_through(graph);
  for (bool changed = true; changed;) {
    changed = false;
    std::set<std::string> reads;
    collect_reads(graph, reads);
    for (const auto& v : graph.outputs) reads.insert(v.name);
    std::vector<ir::Node> kept;
    for (auto& n : graph.nodes) {
      bool used = false;
      for (const auto& o : n.outputs) used |= !o.empty() && reads.count(o);
      if (used) kept.push_back(std::move(n));
      else changed = true;
    }
    graph.nodes = std::move(kept);
  }
  std::set<std::string> reads;
  collect_reads(graph, reads);
  for (const auto& v : graph.outputs) reads.insert(v.name);
  std::set<std::string> inputs;
  for (const auto& v : graph.inputs) inputs.insert(v.name);
  for (auto it = graph.initializers.begin(); it != graph.initializers.end();)
    it = (!reads.count(it->first) && !inputs.count(it->first)) ? graph.initializers.erase(it) : std::next(it);
}

}  // namespace kiln
