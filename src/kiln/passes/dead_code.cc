// Removes nodes whose outputs nothing reads, and initializers no node reads.
#include <set>

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
}  // namespace

void remove_dead_code(ir::Graph& graph) {
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
