#include "kiln/plan/execution_plan.h"

#include <algorithm>
#include <set>

#include "kiln/core/error.h"

namespace kiln {

int ExecutionPlan::id(const std::string& name) const {
  auto it = value_ids.find(name);
  return it == value_ids.end() ? -1 : it->second;
}

namespace {

// Names a node reads from outside its own body, recursively through nested subgraphs.
void collect_subgraph_reads(const ir::Graph& g, std::set<std::string>& reads) {
  std::set<std::string> defined;
  for (const auto& v : g.inputs) defined.insert(v.name);
  for (const auto& [name, t] : g.initializers) defined.insert(name);
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs) defined.insert(o);
  for (const auto& n : g.nodes) {
    for (const auto& i : n.inputs)
      if (!i.empty() && !defined.count(i)) reads.insert(i);
    for (const auto& [key, a] : n.attrs) {
      std::set<std::string> inner;
      if (a.g) collect_subgraph_reads(*a.g, inner);
      for (const auto& sg : a.graphs) collect_subgraph_reads(*sg, inner);
      for (const auto& name : inner)
        if (!defined.count(name)) reads.insert(name);
    }
  }
}

}  // namespace

ExecutionPlan build_execution_plan(const ir::Graph& graph, bool subgraph) {
  ExecutionPlan plan;
  plan.graph = &graph;
  auto intern = [&](const std::string& name) {
    auto [it, added] = plan.value_ids.emplace(name, int(plan.value_names.size()));
    if (added) plan.value_names.push_back(name);
    return it->second;
  };

  std::set<std::string> available;
  for (const auto& [name, t] : graph.initializers) {
    plan.initializers.push_back(intern(name));
    available.insert(name);
  }
  for (const auto& v : graph.inputs) {
    if (graph.initializers.count(v.name)) continue;  // an overridable initializer
    plan.graph_inputs.push_back(intern(v.name));
    available.insert(v.name);
  }

  // Every node's full read set, including what its subgraphs read from this scope.
  const size_t n = graph.nodes.size();
  std::vector<std::vector<std::string>> reads(n);
  std::map<std::string, size_t> writer;
  for (size_t i = 0; i < n; ++i) {
    const auto& node = graph.nodes[i];
    for (const auto& o : node.outputs) {
      if (o.empty()) continue;
      if (writer.count(o) || available.count(o))
        fail(ErrorCode::InvalidGraph, node.label(), ": output '", o, "' is written more than once");
      writer[o] = i;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const auto& node = graph.nodes[i];
    std::set<std::string> r;
    for (const auto& in : node.inputs)
      if (!in.empty()) r.insert(in);
    for (const auto& [key, a] : node.attrs) {
      if (a.g) collect_subgraph_reads(*a.g, r);
      for (const auto& sg : a.graphs) collect_subgraph_reads(*sg, r);
    }
    for (const auto& name : r) {
      if (writer.count(name) || available.count(name)) {
        reads[i].push_back(name);
      } else if (subgraph) {
        if (!plan.value_ids.count(name)) plan.outer_values.push_back(intern(name));
        reads[i].push_back(name);
        available.insert(name);
      } else {
        bool direct = std::find(node.inputs.begin(), node.inputs.end(), name) != node.inputs.end();
        fail(ErrorCode::InvalidGraph, node.label(), direct ? ": input '" : ": its subgraph reads '", name,
             "', which no node, graph input or initializer defines");
      }
    }
  }

  // Kahn's algorithm, keeping the file's order among ready nodes.
  std::vector<int> pending(n, 0);
  std::map<std::string, std::vector<size_t>> readers;
  for (size_t i = 0; i < n; ++i)
    for (const auto& name : reads[i])
      if (writer.count(name)) {
        ++pending[i];
        readers[name].push_back(i);
      }
  std::set<size_t> ready;
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.insert(i);
  std::vector<size_t> order;
  while (!ready.empty()) {
    size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (const auto& o : graph.nodes[i].outputs) {
      if (o.empty()) continue;
      for (size_t r : readers[o])
        if (--pending[r] == 0) ready.insert(r);
    }
  }
  if (order.size() != n) {
    for (size_t i = 0; i < n; ++i)
      if (pending[i] > 0) fail(ErrorCode::InvalidGraph, graph.nodes[i].label(), " is part of a cycle");
  }

  for (size_t i : order) {
    const auto& node = graph.nodes[i];
    Step s;
    s.node = int(i);
    for (const auto& in : node.inputs) s.inputs.push_back(in.empty() ? -1 : intern(in));
    for (const auto& o : node.outputs) s.outputs.push_back(o.empty() ? -1 : intern(o));
    plan.steps.push_back(std::move(s));
  }
  for (const auto& v : graph.outputs) {
    int id = plan.id(v.name);
    if (id < 0) fail(ErrorCode::InvalidGraph, "graph output '", v.name, "' is not produced by any node");
    plan.graph_outputs.push_back(id);
  }

  const size_t nv = plan.value_names.size();
  plan.last_use.assign(nv, -1);
  plan.producer.assign(nv, -1);
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    for (int o : plan.steps[s].outputs)
      if (o >= 0) plan.producer[o] = int(s);
    for (const auto& name : reads[size_t(plan.steps[s].node)]) plan.last_use[plan.id(name)] = int(s);
  }
  for (int v : plan.graph_outputs) plan.last_use[v] = ExecutionPlan::kForever;
  for (int v : plan.initializers) plan.last_use[v] = ExecutionPlan::kForever;
  for (int v : plan.outer_values) plan.last_use[v] = ExecutionPlan::kForever;
  for (int v : plan.graph_inputs) plan.last_use[v] = ExecutionPlan::kForever;  // the caller owns them
  return plan;
}

}  // namespace kiln
