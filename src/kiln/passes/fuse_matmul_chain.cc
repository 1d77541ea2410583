// Level all: kiln::FusedMatMul -> kiln::FusedMatMul -> ... (each the next's only input 0, read
// by nothing else) with small constant weights becomes one kiln::MatMulChain, which takes each
// thread's rows through every layer in one parallel region (matmul_chain.cc). Small: every
// weight at most 512 KB and all of them at most 1 MB, so each core keeps them all in its L2;
// a larger weight is better split by columns, each thread streaming its share.
#include <set>

#include "kiln/ir/graph_view.h"
#include "kiln/ops/math/packed_gemm.h"
#include "kiln/passes/passes.h"

namespace kiln {

namespace {

constexpr size_t kMaxWeightBytes = size_t(512) << 10, kMaxChainBytes = size_t(1) << 20;

// The bytes of `n`'s weight if it is a FusedMatMul a chain may hold, else 0.
size_t link_bytes(const ir::Node& n, const GraphView& view) {
  if (n.domain != "kiln" || n.op_type != "FusedMatMul" || n.inputs.size() != 3 || n.outputs.size() != 1) return 0;
  for (const auto& [key, attr] : n.attrs)
    if (key != "activation" && key != "kiln_weight_nk") return 0;  // bfloat16 or packed: not here
  const Tensor* w = view.constant(n.inputs[1]);
  const Tensor* b = view.constant(n.inputs[2]);
  if (!w || !b || w->dtype() != DType::Float32 || w->rank() != 2 || b->dtype() != DType::Float32 ||
      w->bytes() > kMaxWeightBytes || w->size() == 0)
    return 0;
  const bool nk = n.attr_int("kiln_weight_nk", 0) != 0;
  const int64_t k = w->dim(nk ? 1 : 0), cols = w->dim(nk ? 0 : 1);
  if (b->size() != cols || !PackedPanels::from(panel_layout(k, cols), nullptr)) return 0;
  return w->bytes();
}

}  // namespace

void fuse_matmul_chains(ir::Graph& g) {
  GraphView view(g);
  std::set<size_t> dead;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    size_t bytes = dead.count(i) ? 0 : link_bytes(g.nodes[i], view);
    if (!bytes) continue;
    std::vector<size_t> chain{i};
    for (;;) {
      const std::string& out = g.nodes[chain.back()].outputs[0];
      const int r = view.sole_reader(out);
      if (r < 0 || view.is_graph_output(out) || g.nodes[size_t(r)].inputs[0] != out) break;
      const size_t more = link_bytes(g.nodes[size_t(r)], view);
      if (!more || bytes + more > kMaxChainBytes) break;
      bytes += more;
      chain.push_back(size_t(r));
    }
    if (chain.size() < 2) continue;
    ir::Node fused = g.nodes[i];  // its name, domain and opset
    fused.op_type = "MatMulChain";
    fused.inputs = {g.nodes[i].inputs[0]};
    fused.attrs.clear();
    ir::Attribute acts, nk;
    acts.kind = ir::Attribute::Kind::Strings;
    nk.kind = ir::Attribute::Kind::Ints;
    for (size_t c : chain) {
      const ir::Node& n = g.nodes[c];
      fused.inputs.push_back(n.inputs[1]);
      fused.inputs.push_back(n.inputs[2]);
      acts.strings.push_back(n.attr_string("activation", ""));
      nk.ints.push_back(n.attr_int("kiln_weight_nk", 0));
    }
    fused.attrs["activations"] = acts;
    fused.attrs["kiln_weight_nk"] = nk;
    fused.outputs = g.nodes[chain.back()].outputs;
    g.nodes[i] = std::move(fused);
    dead.insert(chain.begin() + 1, chain.end());
  }
  ir::erase_nodes(g, dead);
}

}  // namespace kiln
