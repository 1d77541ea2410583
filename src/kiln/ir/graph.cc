#include "kiln/ir/graph.h"

#include <algorithm>

namespace kiln::ir {

const Attribute* Node::attr(const std::string& key) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? nullptr : &it->second;
}

int64_t Node::attr_int(const std::string& key, int64_t fallback) const {
  const Attribute* a = attr(key);
  return a ? a->i : fallback;
}

float Node::attr_float(const std::string& key, float fallback) const {
  const Attribute* a = attr(key);
  return a ? a->f : fallback;
}

std::string Node::attr_string(const std::string& key, const std::string& fallback) const {
  const Attribute* a = attr(key);
  return a ? a->s : fallback;
}

std::vector<int64_t> Node::attr_ints(const std::string& key, std::vector<int64_t> fallback) const {
  const Attribute* a = attr(key);
  return a ? a->ints : fallback;
}

std::vector<float> Node::attr_floats(const std::string& key, std::vector<float> fallback) const {
  const Attribute* a = attr(key);
  return a ? a->floats : fallback;
}

std::vector<std::string> Node::attr_strings(const std::string& key) const {
  const Attribute* a = attr(key);
  return a ? a->strings : std::vector<std::string>{};
}

std::string Node::label() const {
  return "node '" + name + "' (" + (domain.empty() ? "" : domain + "::") + op_type + ")";
}

void erase_nodes(Graph& g, const std::set<size_t>& dead) {
  std::map<size_t, std::vector<Node>> none;
  splice_nodes(g, dead, none);
}

void splice_nodes(Graph& g, const std::set<size_t>& dead, std::map<size_t, std::vector<Node>>& inserted) {
  if (dead.empty() && inserted.empty()) return;
  std::vector<Node> kept;
  kept.reserve(g.nodes.size() - std::min(dead.size(), g.nodes.size()));
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (auto it = inserted.find(i); it != inserted.end())
      for (Node& n : it->second) kept.push_back(std::move(n));
    if (!dead.count(i)) kept.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(kept);
}

}  // namespace kiln::ir
