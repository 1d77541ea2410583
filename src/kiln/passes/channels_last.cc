// Layout between convolutions (level all): oneDNN runs fp32 convolutions channels-last on this
// CPU, so a value that only convolutions read is stored NHWC by its producing convolution and
// read as such by its consumers, instead of a reorder to NCHW and back around every conv.
// Marks the nodes with kiln_x_nhwc / kiln_y_nhwc; tensor shapes stay logical (NCHW).
#include <map>
#include <set>

#include "kiln/passes/graph_view.h"
#include "kiln/passes/passes.h"

namespace kiln {

namespace {

bool is_conv2d(const ir::Node& n, const GraphView& view) {
  const bool conv = (n.domain.empty() && n.op_type == "Conv") || (n.domain == "kiln" && n.op_type == "FusedConv");
  if (!conv || n.inputs.size() < 2 || n.outputs.size() != 1) return false;
  const Tensor* w = view.constant(n.inputs[1]);
  return w && w->dtype() == DType::Float32 && w->rank() == 4;
}

void set_flag(ir::Node& n, const char* key) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::Int;
  a.i = 1;
  n.attrs[key] = a;
}

}  // namespace

void choose_conv_layouts(ir::Graph& g) {
  GraphView view(g);
  std::vector<bool> conv(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) conv[i] = is_conv2d(g.nodes[i], view);

  // Every read of every value: (node, input slot). Reads from subgraphs or by the graph's
  // outputs pin a value to NCHW.
  std::map<std::string, std::vector<std::pair<size_t, size_t>>> reads;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (size_t k = 0; k < g.nodes[i].inputs.size(); ++k)
      if (!g.nodes[i].inputs[k].empty()) reads[g.nodes[i].inputs[k]].push_back({i, k});

  std::set<std::string> nhwc;  // candidate values: a conv writes them, only convs read them as X or Z
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!conv[i]) continue;
    const std::string& y = g.nodes[i].outputs[0];
    if (view.is_graph_output(y) || view.readers(y) != int(reads[y].size()) || reads[y].empty()) continue;
    bool ok = true;
    for (auto [r, slot] : reads[y]) ok &= conv[r] && (slot == 0 || slot == 3);
    if (ok) nhwc.insert(y);
  }
  // Z rides in the destination buffer: it must be stored as the reader's Y is.
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (!conv[i] || g.nodes[i].inputs.size() < 4 || g.nodes[i].inputs[3].empty()) continue;
      const std::string &z = g.nodes[i].inputs[3], &y = g.nodes[i].outputs[0];
      if (nhwc.count(z) != nhwc.count(y)) {
        changed = true;
        nhwc.erase(z);
        nhwc.erase(y);
      }
    }
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!conv[i]) continue;
    ir::Node& n = g.nodes[i];
    if (nhwc.count(n.inputs[0])) set_flag(n, "kiln_x_nhwc");
    if (nhwc.count(n.outputs[0])) set_flag(n, "kiln_y_nhwc");
  }
}

}  // namespace kiln
