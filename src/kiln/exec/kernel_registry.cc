#include <algorithm>

#include "kiln/exec/kernel.h"

namespace kiln {

KernelRegistry& KernelRegistry::global() {
  static KernelRegistry registry;
  return registry;
}

void KernelRegistry::add(const std::string& domain, const std::string& op_type, int since_version,
                         KernelFactory f) {
  auto& list = entries_[{domain == "ai.onnx" ? "" : domain, op_type}];
  list.push_back({since_version, std::move(f)});
  std::sort(list.begin(), list.end(), [](const Entry& a, const Entry& b) { return a.since_version > b.since_version; });
}

const KernelFactory* KernelRegistry::find(const std::string& domain, const std::string& op_type, int opset) const {
  auto it = entries_.find({domain == "ai.onnx" ? "" : domain, op_type});
  if (it == entries_.end()) return nullptr;
  for (const Entry& e : it->second)
    if (e.since_version <= opset) return &e.factory;
  return nullptr;
}

void KernelRegistry::add_resolver(KernelResolver r) { resolvers_.push_back(std::move(r)); }

KernelFactory KernelRegistry::lookup(const ir::Node& node) const {
  if (const KernelFactory* f = find(node.domain, node.op_type, node.opset)) return *f;
  for (const auto& r : resolvers_)
    if (KernelFactory f = r(node)) return f;
  return {};
}

KernelFactory KernelSource::find(const ir::Node& node) const {
  auto it = session_ops.find({node.domain, node.op_type});
  if (it != session_ops.end()) return it->second;
  return KernelRegistry::global().lookup(node);
}

const KernelSource& KernelSource::registry_only() {
  static const KernelSource source;
  return source;
}

std::vector<std::string> KernelRegistry::op_types(const std::string& domain) const {
  std::vector<std::string> out;
  for (const auto& [key, list] : entries_)
    if (key.first == domain) out.push_back(key.second);
  return out;
}

namespace {
std::vector<std::pair<WeightPacking::Rewrite, WeightPacking::Rewrite>>& packings() {
  static std::vector<std::pair<WeightPacking::Rewrite, WeightPacking::Rewrite>> list;
  return list;
}
}  // namespace

WeightPacking::WeightPacking(Rewrite pack, Rewrite unpack) { packings().push_back({pack, unpack}); }

void WeightPacking::pack_all(ir::Graph& graph) {
  for (auto& [pack, unpack] : packings()) pack(graph);
}

void WeightPacking::unpack_all(ir::Graph& graph) {
  for (auto& [pack, unpack] : packings()) unpack(graph);
}

}  // namespace kiln
