// Read-only facts about a graph that rewrites ask again and again: who writes a value, how
// many places read it (nodes, subgraphs, graph outputs), and which initializers are constant.
#pragma once

#include <string>
#include <unordered_map>
#include <unordered_set>

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
  // Hashed: a model's value names share long prefixes ("/features/features.3/block/..."), which
  // ordered maps compare again at every level (a tenth of MobileNetV3's session creation).
  std::unordered_map<std::string, int> producer_;
  std::unordered_map<std::string, int> readers_;
  std::unordered_map<std::string, int> last_reader_;
  std::unordered_set<std::string> outputs_, inputs_;
};

}  // namespace kiln
