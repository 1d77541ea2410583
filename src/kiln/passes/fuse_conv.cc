// Convolution rewrites (level extended and up):
//   Conv -> BatchNormalization            the BN folded into W and B
//   Conv -> Add(residual Z) [-> act]      kiln::FusedConv with Z as oneDNN's `sum` post-op
//   Conv -> activation                    kiln::FusedConv with the activation as a post-op
//   Conv -> Sigmoid -> Mul(conv, sigmoid) kiln::FusedConv with SiLU (oneDNN's swish post-op)
// A fused node keeps the last node's output name, so the rest of the graph is untouched.
#include <algorithm>
#include <cmath>
#include <set>

#include "kiln/ir/fresh_names.h"
#include "kiln/ir/graph_view.h"
#include "kiln/passes/passes.h"

namespace kiln {

namespace {

bool is_float_conv(const ir::Node& n, const GraphView& view) {
  if (n.domain.empty() && n.op_type == "Conv") {
    const Tensor* w = n.inputs.size() > 1 ? view.constant(n.inputs[1]) : nullptr;
    return w && w->dtype() == DType::Float32;
  }
  return false;
}

// W' = W * s, B' = (B - mean) * s + beta, with s = scale / sqrt(var + eps) per out channel.
bool fold_batch_norm(ir::Graph& g, ir::Node& conv, const ir::Node& bn, const GraphView& view, FreshNames& names) {
  if (bn.inputs.size() < 5 || bn.outputs.size() != 1 || bn.attr_int("training_mode", 0) != 0) return false;
  const Tensor* w = view.constant(conv.inputs[1]);
  const Tensor* b = conv.has_input(2) ? view.constant(conv.inputs[2]) : nullptr;
  if (conv.has_input(2) && !b) return false;
  const Tensor* p[4];
  for (int i = 0; i < 4; ++i) {
    p[i] = view.constant(bn.inputs[size_t(i + 1)]);
    if (!p[i] || p[i]->dtype() != DType::Float32) return false;
  }
  const int64_t m = w->dim(0);
  for (auto* t : p)
    if (t->size() != m) return false;
  if (b && (b->dtype() != DType::Float32 || b->size() != m)) return false;
  const float eps = bn.attr_float("epsilon", 1e-5f);
  Tensor nw = w->clone();
  Tensor nb(DType::Float32, {m});
  const int64_t per = w->size() / std::max<int64_t>(m, 1);
  for (int64_t c = 0; c < m; ++c) {
    const float s = p[0]->data<float>()[c] / std::sqrt(p[3]->data<float>()[c] + eps);
    for (int64_t k = 0; k < per; ++k) nw.data<float>()[c * per + k] *= s;
    const float bias = b ? b->data<float>()[c] : 0.f;
    nb.data<float>()[c] = (bias - p[2]->data<float>()[c]) * s + p[1]->data<float>()[c];
  }
  const std::string wn = names.make(conv.name + "/folded_W"), bname = names.make(conv.name + "/folded_B");
  g.initializers[wn] = nw;
  g.initializers[bname] = nb;
  conv.inputs.resize(3);
  conv.inputs[1] = wn;
  conv.inputs[2] = bname;
  conv.outputs = bn.outputs;
  return true;
}

// The activation of `n` as FusedConv attributes, or false if it has none oneDNN can fuse.
bool activation_attrs(const ir::Node& n, const GraphView& view, ir::Node& fused) {
  if (!n.domain.empty()) return false;
  static const std::set<std::string> kPlain = {"Relu", "Sigmoid", "Tanh", "HardSwish"};
  std::vector<float> params;
  if (kPlain.count(n.op_type)) {
  } else if (n.op_type == "LeakyRelu") {
    params = {n.attr_float("alpha", 0.01f)};
  } else if (n.op_type == "HardSigmoid") {
    params = {n.attr_float("alpha", 0.2f), n.attr_float("beta", 0.5f)};
  } else if (n.op_type == "Clip") {
    float lo = -INFINITY, hi = INFINITY;
    if (n.opset < 11) {
      lo = n.attr_float("min", lo);
      hi = n.attr_float("max", hi);
    } else {
      for (size_t i = 1; i < 3; ++i) {
        if (!n.has_input(i)) continue;
        const Tensor* t = view.constant(n.inputs[i]);
        if (!t || t->dtype() != DType::Float32 || t->size() != 1) return false;
        (i == 1 ? lo : hi) = t->data<float>()[0];
      }
    }
    params = {lo, hi};
  } else {
    return false;
  }
  ir::Attribute act;
  act.kind = ir::Attribute::Kind::String;
  act.s = n.op_type;
  fused.attrs["activation"] = act;
  if (!params.empty()) {
    ir::Attribute pa;
    pa.kind = ir::Attribute::Kind::Floats;
    pa.floats = params;
    fused.attrs["activation_params"] = pa;
  }
  return true;
}

// The Mul of a SiLU y * Sigmoid(y) when exactly those two nodes read `y`, or -1; `sig` gets
// the Sigmoid.
int silu_mul(const ir::Graph& g, const GraphView& view, const std::string& y, int& sig) {
  if (view.readers(y) != 2 || view.is_graph_output(y)) return -1;
  int mul = -1;
  sig = -1;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const ir::Node& n = g.nodes[k];
    if (std::find(n.inputs.begin(), n.inputs.end(), y) == n.inputs.end() || !n.domain.empty()) continue;
    if (n.op_type == "Sigmoid") sig = int(k);
    else if (n.op_type == "Mul" && n.inputs.size() == 2) mul = int(k);
  }
  if (sig < 0 || mul < 0) return -1;
  const std::string& s = g.nodes[size_t(sig)].outputs[0];
  const ir::Node& m = g.nodes[size_t(mul)];
  const bool pair = (m.inputs[0] == y && m.inputs[1] == s) || (m.inputs[1] == y && m.inputs[0] == s);
  return pair && view.sole_reader(s) == mul ? mul : -1;
}

}  // namespace

void fuse_convolutions(ir::Graph& g) {
  FreshNames names(g);
  for (bool changed = true; changed;) {
    // One sweep makes every rewrite whose nodes it has not touched yet; the next sweep, on a
    // fresh view, chains further ones (Conv+BN, then + activation).
    changed = false;
    GraphView view(g);
    std::set<size_t> dead;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      ir::Node& conv = g.nodes[i];
      const bool plain = is_float_conv(conv, view);
      const bool fused = conv.domain == "kiln" && conv.op_type == "FusedConv";
      if (!plain && !fused) continue;
      if (conv.outputs.size() != 1) continue;
      if (!conv.has_attr("activation")) {
        const std::string y = conv.outputs[0];
        int sig;
        const int mul = silu_mul(g, view, y, sig);
        if (mul >= 0 && !dead.count(size_t(mul))) {
          ir::Node f = conv;
          ir::as_fused_conv(f);
          ir::Attribute act;
          act.kind = ir::Attribute::Kind::String;
          act.s = "Silu";
          f.attrs["activation"] = act;
          f.outputs = g.nodes[size_t(mul)].outputs;
          conv = f;
          dead.insert(size_t(mul));
          dead.insert(size_t(sig));
          changed = true;
          continue;
        }
      }
      int r = view.sole_reader(conv.outputs[0]);
      if (r < 0 || dead.count(size_t(r))) continue;
      ir::Node& next = g.nodes[size_t(r)];
      if (plain && next.domain.empty() && next.op_type == "BatchNormalization" && next.inputs[0] == conv.outputs[0]) {
        if (fold_batch_norm(g, conv, next, view, names)) dead.insert(size_t(r)), changed = true;
        continue;
      }
      const bool has_act = conv.has_attr("activation");
      if (!has_act && next.domain.empty() && next.op_type == "Add" && next.inputs.size() == 2 &&
          !(fused && conv.has_input(3))) {
        const std::string& z = next.inputs[0] == conv.outputs[0] ? next.inputs[1] : next.inputs[0];
        if (z == conv.outputs[0] || view.constant(z)) continue;  // a constant Z is a bias, not a residual
        ir::Node f = conv;
        ir::as_fused_conv(f);
        f.inputs.resize(3);
        f.inputs.push_back(z);
        f.outputs = next.outputs;
        conv = f;
        dead.insert(size_t(r));
        changed = true;
        continue;
      }
      if (!has_act) {
        ir::Node f = conv;
        if (!activation_attrs(next, view, f) || next.inputs[0] != conv.outputs[0]) continue;
        ir::as_fused_conv(f);
        f.outputs = next.outputs;
        conv = f;
        dead.insert(size_t(r));
        changed = true;
      }
    }
    ir::erase_nodes(g, dead);
  }
}

}  // namespace kiln
