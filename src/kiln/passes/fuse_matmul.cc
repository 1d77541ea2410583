// Transformer rewrites (level extended and up):
//   x / sqrt(2) -> Erf -> + 1 -> * x -> * 0.5      one Gelu node (opset 20's op)
//   MatMul(A, W) -> Add(bias) [-> Relu | Gelu]     kiln::FusedMatMul: bias and activation run
//                                                  inside oneDNN's matmul
// W and the bias must be initializers; the fused node keeps the last node's output name.
#include <cmath>
#include <set>

#include "kiln/passes/graph_view.h"
#include "kiln/passes/passes.h"

namespace kiln {

namespace {

// The value of a one-element float constant, if `name` is one.
bool scalar_constant(const GraphView& view, const std::string& name, float& value) {
  const Tensor* t = view.constant(name);
  if (!t || t->dtype() != DType::Float32 || t->size() != 1) return false;
  value = t->data<float>()[0];
  return true;
}

bool is_op(const ir::Node& n, const char* op) { return n.domain.empty() && n.op_type == op; }

// The input of binary node `n` that is not `name`, or "" if `name` is not among its inputs.
std::string other_input(const ir::Node& n, const std::string& name) {
  if (n.inputs.size() != 2) return "";
  if (n.inputs[0] == name) return n.inputs[1];
  if (n.inputs[1] == name) return n.inputs[0];
  return "";
}

bool near(float a, float b) { return std::abs(a - b) <= 1e-4f * std::abs(b); }

void compact(ir::Graph& g, const std::set<size_t>& dead) {
  std::vector<ir::Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!dead.count(i)) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
}

// Div(x, sqrt2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5): returns the chain's node indices.
bool match_gelu(const ir::Graph& g, const GraphView& view, size_t div_index, std::vector<size_t>& chain,
                std::string& x, std::string& out) {
  const ir::Node& div = g.nodes[div_index];
  float c;
  if (!is_op(div, "Div") || div.inputs.size() != 2 || !scalar_constant(view, div.inputs[1], c) ||
      !near(c, std::sqrt(2.f)))
    return false;
  x = div.inputs[0];
  int erf = view.sole_reader(div.outputs[0]);
  if (erf < 0 || !is_op(g.nodes[size_t(erf)], "Erf")) return false;
  int add = view.sole_reader(g.nodes[size_t(erf)].outputs[0]);
  if (add < 0 || !is_op(g.nodes[size_t(add)], "Add")) return false;
  std::string one = other_input(g.nodes[size_t(add)], g.nodes[size_t(erf)].outputs[0]);
  if (!scalar_constant(view, one, c) || !near(c, 1.f)) return false;
  int mul = view.sole_reader(g.nodes[size_t(add)].outputs[0]);
  if (mul < 0 || !is_op(g.nodes[size_t(mul)], "Mul") || other_input(g.nodes[size_t(mul)], g.nodes[size_t(add)].outputs[0]) != x)
    return false;
  int half = view.sole_reader(g.nodes[size_t(mul)].outputs[0]);
  if (half < 0 || !is_op(g.nodes[size_t(half)], "Mul")) return false;
  if (!scalar_constant(view, other_input(g.nodes[size_t(half)], g.nodes[size_t(mul)].outputs[0]), c) || !near(c, 0.5f))
    return false;
  chain = {div_index, size_t(erf), size_t(add), size_t(mul), size_t(half)};
  out = g.nodes[size_t(half)].outputs[0];
  return true;
}

void fuse_gelu(ir::Graph& g) {
  GraphView view(g);
  std::set<size_t> dead;
  std::vector<std::pair<size_t, ir::Node>> added;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    std::vector<size_t> chain;
    std::string x, out;
    if (dead.count(i) || !match_gelu(g, view, i, chain, x, out)) continue;
    ir::Node gelu;
    gelu.name = g.nodes[i].name + "/Gelu";
    gelu.op_type = "Gelu";
    gelu.opset = 20;
    gelu.inputs = {x};
    gelu.outputs = {out};
    dead.insert(chain.begin(), chain.end());
    added.emplace_back(i, std::move(gelu));
  }
  for (auto& [at, node] : added) g.nodes[at] = std::move(node), dead.erase(at);
  compact(g, dead);
}

void fuse_bias_activation(ir::Graph& g) {
  GraphView view(g);
  std::set<size_t> dead;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& mm = g.nodes[i];
    if (!is_op(mm, "MatMul") || mm.inputs.size() != 2) continue;
    const Tensor* w = view.constant(mm.inputs[1]);
    if (!w || w->dtype() != DType::Float32 || w->rank() != 2) continue;
    int a = view.sole_reader(mm.outputs[0]);
    if (a < 0 || !is_op(g.nodes[size_t(a)], "Add")) continue;
    const std::string bias = other_input(g.nodes[size_t(a)], mm.outputs[0]);
    const Tensor* b = view.constant(bias);
    if (!b || b->dtype() != DType::Float32 || b->size() != w->dim(1) || b->rank() != 1) continue;
    ir::Node f = mm;
    f.domain = "kiln";
    f.op_type = "FusedMatMul";
    f.opset = 1;
    f.inputs.push_back(bias);
    f.outputs = g.nodes[size_t(a)].outputs;
    dead.insert(size_t(a));
    int act = view.sole_reader(f.outputs[0]);
    if (act >= 0) {
      const ir::Node& n = g.nodes[size_t(act)];
      const char* name = is_op(n, "Relu") ? "Relu" : is_op(n, "Gelu") && n.attr_string("approximate", "none") == "none" ? "Gelu"
                         : is_op(n, "Gelu") ? "GeluTanh" : nullptr;
      if (name) {
        ir::Attribute s;
        s.kind = ir::Attribute::Kind::String;
        s.s = name;
        f.attrs["activation"] = s;
        f.outputs = n.outputs;
        dead.insert(size_t(act));
      }
    }
    mm = std::move(f);
  }
  compact(g, dead);
}

}  // namespace

void fuse_matmuls(ir::Graph& g) {
  fuse_gelu(g);
  fuse_bias_activation(g);
}

}  // namespace kiln
