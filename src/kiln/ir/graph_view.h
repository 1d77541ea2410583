// Read-only facts about a graph that rewrites ask again and again: who writes a value, how
// many places read it (nodes, subgraphs, graph outputs), and which initializers are constant.
#pragma once

#include <map>
#include <set>
#include <string>

#include "kiln/ir/graph.h"

namespace kiln {

class GraphView {
 public:
  explicit GraphView(const ir::Graph& g);
  // Index of the node writing `name`, or -1.
  int producer(const std::string& name) const;
  int readers(const std::string& name) const;
  bool is_graph_output(const std::string& name) const { return outputs_.count(name) != 0; }
  // An initializer that no feed can override.
  const Tensor* constant(const std::string& name) const;
  // The single node reading `name`, if exactly one node reads it and it is not a graph output.
  int sole_reader(const std::string& name) const;

 private:
  const ir::Graph& g_;
  std::map<std::string, int> producer_;
  std::map<std::string, int> readers_;
  std::map<std::string, int> last_reader_;
  std::set<std::string> outputs_, inputs_;
};

}  // namespace kiln
