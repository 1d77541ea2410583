#include "kiln/ir/graph_view.h"

namespace kiln {

namespace {
void count_subgraph_reads(const ir::Graph& g, std::unordered_map<std::string, int>& readers) {
  for (const auto& n : g.nodes) {
    for (const auto& i : n.inputs) ++readers[i];
    for (const auto& [k, a] : n.attrs) {
      if (a.g) count_subgraph_reads(*a.g, readers);
      for (const auto& sg : a.graphs) count_subgraph_reads(*sg, readers);
    }
  }
}
}  // namespace

GraphView::GraphView(const ir::Graph& g) : g_(g) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const auto& n = g.nodes[i];
    for (const auto& o : n.outputs)
      if (!o.empty()) producer_[o] = int(i);
    for (const auto& in : n.inputs)
      if (!in.empty()) {
        ++readers_[in];
        last_reader_[in] = int(i);
      }
    for (const auto& [k, a] : n.attrs) {  // a subgraph's reads count as many readers
      if (a.g) count_subgraph_reads(*a.g, readers_);
      for (const auto& sg : a.graphs) count_subgraph_reads(*sg, readers_);
    }
  }
  for (const auto& v : g.outputs) outputs_.insert(v.name);
  for (const auto& v : g.inputs) inputs_.insert(v.name);
}

int GraphView::producer(const std::string& name) const {
  auto it = producer_.find(name);
  return it == producer_.end() ? -1 : it->second;
}

int GraphView::readers(const std::string& name) const {
  auto it = readers_.find(name);
  return it == readers_.end() ? 0 : it->second;
}

const Tensor* GraphView::constant(const std::string& name) const {
  if (inputs_.count(name)) return nullptr;
  auto it = g_.initializers.find(name);
  return it == g_.initializers.end() ? nullptr : &it->second;
}

int GraphView::sole_reader(const std::string& name) const {
  if (readers(name) != 1 || is_graph_output(name)) return -1;
  return last_reader_.at(name);
}

}  // namespace kiln
