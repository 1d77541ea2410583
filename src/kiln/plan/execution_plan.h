// The static part of running a graph: values numbered, nodes in topological order, and the
// step after which each value is dead. Built once per session (and per subgraph).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "kiln/ir/graph.h"

namespace kiln {

struct Step {
  int node = 0;              // index into graph.nodes
  std::vector<int> inputs;   // value ids, -1 for an omitted optional input
  std::vector<int> outputs;  // value ids, -1 for an omitted optional output
};

struct ExecutionPlan {
  const ir::Graph* graph = nullptr;
  std::vector<std::string> value_names;
  std::map<std::string, int> value_ids;
  std::vector<Step> steps;
  std::vector<int> graph_inputs;   // declared inputs that are not initializers
  std::vector<int> graph_outputs;
  std::vector<int> initializers;   // value ids of graph.initializers, in map order
  std::vector<int> outer_values;   // read from an enclosing graph (subgraphs only)
  std::vector<int> last_use;       // per value: last step that reads it; kForever if it outlives the run
  std::vector<int> producer;       // per value: the step that writes it, -1 if none

  static constexpr int kForever = 1 << 30;
  int id(const std::string& name) const;  // -1 if unknown
};

// Orders the nodes so every value is written before it is read. In a main graph a name that
// no node, input or initializer defines is an error naming the node and the input; in a
// subgraph (`subgraph` true) it is read from the enclosing scopes, which checked it.
ExecutionPlan build_execution_plan(const ir::Graph& graph, bool subgraph = false);

}  // namespace kiln
