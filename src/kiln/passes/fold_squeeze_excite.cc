// A squeeze-excite block's passes over its image folded into the convolutions around it (level
// all, after the layout pass). The block computes S = f(GlobalAveragePool(X)), [N, C, 1, 1],
// then Mul(X, S), whose sole reader is a projection convolution.
//
// The scale: as exported (`scale * input`) the Mul wrote a fresh image-sized tensor
// (EfficientNet-B0: 16 of them, 0.46 ms of an 8 ms run at 1 thread); the projection takes S as
// FusedConv's fifth input instead and scales X in X's own buffer where X dies, just before
// reading it back from cache.
//
// The squeeze: a GlobalAveragePool of a convolution's output becomes that convolution's second
// output, which the depthwise kernel sums from its registers as it stores X (EfficientNet-B0's
// pools read 0.25 ms of images back), and other paths read back from Y as the pool did.
//
// S is recognised by its shape's provenance, without shape inference: a chain of 1x1
// convolutions without padding and elementwise activations from a GlobalAveragePool of X
// itself keeps the pooled [N, C', 1, 1] shape (the kernel checks C' against X's channels).
#include <algorithm>
#include <set>

#include "kiln/ir/graph_view.h"
#include "kiln/passes/passes.h"

namespace kiln {

namespace {

// A constant float 2-D W with a 1x1 kernel.
bool pointwise_weight(const ir::Node& conv, const GraphView& view) {
  if (conv.inputs.size() < 2) return false;
  const Tensor* w = view.constant(conv.inputs[1]);
  return w && w->dtype() == DType::Float32 && w->rank() == 4 && w->dim(2) == 1 && w->dim(3) == 1;
}

// Whether `name` is pooled from `x`: written by GlobalAveragePool(x), or by a 1x1 convolution
// without padding or a one-input activation whose first input is.
bool pooled_from(const std::string& name, const std::string& x, const ir::Graph& g, const GraphView& view) {
  static const std::set<std::string> kActivations = {"Relu", "Sigmoid", "HardSigmoid", "HardSwish",
                                                     "Clip", "Tanh",    "LeakyRelu"};
  std::string v = name;
  for (int depth = 0; depth < 8; ++depth) {
    const int p = view.producer(v);
    if (p < 0) return false;
    const ir::Node& n = g.nodes[size_t(p)];
    if (n.outputs.size() != 1 || n.inputs.empty()) return false;
    if (is_op(n, "GlobalAveragePool")) return n.inputs[0] == x;
    const bool unary = n.domain.empty() && kActivations.count(n.op_type) &&
                       (n.op_type == "Clip" || n.inputs.size() == 1);
    const std::vector<int64_t> pads = n.attr_ints("pads", {0, 0, 0, 0});
    const bool conv = is_conv(n) && pointwise_weight(n, view) && !n.has_input(3) &&
                      std::all_of(pads.begin(), pads.end(), [](int64_t q) { return q == 0; }) &&
                      n.attr_string("auto_pad", "NOTSET") != "SAME_UPPER" &&
                      n.attr_string("auto_pad", "NOTSET") != "SAME_LOWER";
    if (!unary && !conv) return false;
    v = n.inputs[0];
  }
  return false;
}

// Mul(X, S) read by a 1x1 convolution as that convolution's S.
void fold_scales(ir::Graph& g) {
  GraphView view(g);
  std::set<size_t> dead;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& mul = g.nodes[i];
    if (!is_op(mul, "Mul") || mul.inputs.size() != 2 || mul.outputs.size() != 1) continue;
    const int r = view.sole_reader(mul.outputs[0]);
    if (r < 0) continue;
    ir::Node& conv = g.nodes[size_t(r)];
    if (!is_conv(conv) || conv.inputs[0] != mul.outputs[0] || conv.has_input(4) || conv.attr_int("group", 1) != 1 ||
        conv.has_attr("kiln_pool_kernel") || !pointwise_weight(conv, view))
      continue;
    int scale = -1;  // which of the Mul's inputs is S
    for (int k = 0; k < 2; ++k)
      if (pooled_from(mul.inputs[size_t(k)], mul.inputs[size_t(1 - k)], g, view)) scale = k;
    if (scale < 0) continue;
    const std::string x = mul.inputs[size_t(1 - scale)], s = mul.inputs[size_t(scale)];
    as_fused_conv(conv);
    conv.inputs.resize(5);  // X, W, B, Z (absent ones ""), S
    conv.inputs[0] = x;
    conv.inputs[4] = s;
    dead.insert(i);
  }
  ir::erase_nodes(g, dead);
}

// The pools of convolutions' outputs as their second outputs.
void fold_squeezes(ir::Graph& g) {
  GraphView view(g);
  std::set<size_t> dead;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& pool = g.nodes[i];
    if (!is_op(pool, "GlobalAveragePool") || pool.inputs.size() != 1 || pool.outputs.size() != 1) continue;
    const int p = view.producer(pool.inputs[0]);
    if (p < 0) continue;
    ir::Node& conv = g.nodes[size_t(p)];
    if (!is_conv(conv) || conv.outputs.size() != 1 || conv.inputs.size() < 2) continue;
    const Tensor* w = view.constant(conv.inputs[1]);
    if (!w || w->dtype() != DType::Float32 || w->rank() != 4) continue;
    as_fused_conv(conv);
    conv.outputs.push_back(pool.outputs[0]);
    dead.insert(i);
  }
  ir::erase_nodes(g, dead);
}

}  // namespace

void fold_squeeze_excite(ir::Graph& g) {
  fold_scales(g);  // first: it finds S by the pool it comes from
  fold_squeezes(g);
}

}  // namespace kiln
