// Value and node names no part of a graph (its subgraphs included) uses yet, for rewrites that
// add nodes.
#pragma once

#include <set>
#include <string>

#include "kiln/ir/graph.h"

namespace kiln {

class FreshNames {
 public:
  explicit FreshNames(const ir::Graph& root) { collect(root); }

  std::string make(const std::string& base) {
    std::string name = base;
    for (int k = 1; used_.count(name); ++k) name = base + "_" + std::to_string(k);
    used_.insert(name);
    return name;
  }

 private:
  void collect(const ir::Graph& g) {
    for (const auto& v : g.inputs) used_.insert(v.name);
    for (const auto& v : g.outputs) used_.insert(v.name);
    for (const auto& [name, t] : g.initializers) used_.insert(name);
    for (const ir::Node& n : g.nodes) {
      used_.insert(n.name);
      for (const auto& o : n.outputs) used_.insert(o);
      for (const auto& [key, a] : n.attrs) {
        if (a.g) collect(*a.g);
        for (const auto& sg : a.graphs) collect(*sg);
      }
    }
  }

  std::set<std::string> used_;
};

}  // namespace kiln
