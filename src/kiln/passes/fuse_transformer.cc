// Transformer rewrites (level extended and up):
//   the decomposed LayerNorm of exports before opset 17   one LayerNormalization node
//     (ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, Mul gamma, Add beta)
//   x / sqrt(2) -> Erf -> + 1 -> * x -> * 0.5      one Gelu node (opset 20's op)
//   0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  one Gelu node, approximate="tanh"
//   MatMul(A, W) -> Add(bias) [-> Reshape] [-> Relu | Gelu] [-> Add(residual)]
//                                                  kiln::FusedMatMul: bias, activation and
//                                                  residual run inside oneDNN's matmul
//   Transpose -> MatMul -> Transpose (attention's head splits and merges)
//                                                  kiln::MatMul reading and writing through strides
//   Mul/Div by a scalar -> MatMul -> Mul/Div by a scalar (attention's scaled query or scores)
//                                                  kiln::MatMul's kiln_alpha
//   Gemm(A, W, bias) with constant W, alpha = beta = 1, no transA
//                                                  kiln::FusedMatMul (reading transB's W as stored)
//   FusedMatMul -> Slices | Reshape -> Split of the last axis
//                                                  one FusedMatMul per part
// W and the bias must be initializers; the fused node keeps the last node's output name.
#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <set>

#include "kiln/ir/fresh_names.h"
#include "kiln/ir/graph_view.h"
#include "kiln/ops/tensor/tensor_copy.h"
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

using ir::is_op;

// The input of binary node `n` that is not `name`, or "" if `name` is not among its inputs.
std::string other_input(const ir::Node& n, const std::string& name) {
  if (n.inputs.size() != 2) return "";
  if (n.inputs[0] == name) return n.inputs[1];
  if (n.inputs[1] == name) return n.inputs[0];
  return "";
}

bool near(float a, float b) { return std::abs(a - b) <= 1e-4f * std::abs(b); }

// The node that is the sole reader of `name` and is `op`, or -1.
int sole_reader_op(const ir::Graph& g, const GraphView& view, const std::string& name, const char* op) {
  const int r = view.sole_reader(name);
  return r >= 0 && is_op(g.nodes[size_t(r)], op) ? r : -1;
}

// Whether binary node `n` reads `name` and a scalar constant near `value`.
bool with_constant(const ir::Node& n, const GraphView& view, const std::string& name, float value) {
  float c;
  return scalar_constant(view, other_input(n, name), c) && near(c, value);
}

// Div(x, sqrt2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5): returns the chain's node indices.
bool match_gelu(const ir::Graph& g, const GraphView& view, size_t div_index, std::vector<size_t>& chain,
                std::string& x, std::string& out) {
  const ir::Node& div = g.nodes[div_index];
  if (!is_op(div, "Div") || div.inputs.size() != 2) return false;
  x = div.inputs[0];
  if (!with_constant(div, view, x, std::sqrt(2.f))) return false;
  const int erf = sole_reader_op(g, view, div.outputs[0], "Erf");
  if (erf < 0) return false;
  const std::string& e = g.nodes[size_t(erf)].outputs[0];
  const int add = sole_reader_op(g, view, e, "Add");
  if (add < 0 || !with_constant(g.nodes[size_t(add)], view, e, 1.f)) return false;
  const std::string& a = g.nodes[size_t(add)].outputs[0];
  const int mul = sole_reader_op(g, view, a, "Mul");
  if (mul < 0 || other_input(g.nodes[size_t(mul)], a) != x) return false;
  const std::string& m = g.nodes[size_t(mul)].outputs[0];
  const int half = sole_reader_op(g, view, m, "Mul");
  if (half < 0 || !with_constant(g.nodes[size_t(half)], view, m, 0.5f)) return false;
  chain = {div_index, size_t(erf), size_t(add), size_t(mul), size_t(half)};
  out = g.nodes[size_t(half)].outputs[0];
  return true;
}

// The tanh form around Tanh node `tanh_index`, as GPT-2 writes it:
//   Pow(x, 3) -> Mul(0.044715) -> Add(x) -> Mul(sqrt(2/pi)) -> Tanh -> Add(1) -> Mul(0.5 x)
// with 0.5 x = Mul(x, 0.5), or the last two as Mul(x) -> Mul(0.5).
bool match_gelu_tanh(const ir::Graph& g, const GraphView& view, size_t tanh_index, std::vector<size_t>& chain,
                     std::string& x, std::string& out) {
  const ir::Node& tanh = g.nodes[tanh_index];
  if (!is_op(tanh, "Tanh")) return false;
  auto node = [&](int i) -> const ir::Node& { return g.nodes[size_t(i)]; };
  const int scale = view.producer(tanh.inputs[0]);
  if (scale < 0 || !is_op(node(scale), "Mul") || view.sole_reader(tanh.inputs[0]) != int(tanh_index)) return false;
  const ir::Node& sm = node(scale);
  std::string inner;
  for (const auto& in : sm.inputs)
    if (with_constant(sm, view, in, std::sqrt(2.f / std::numbers::pi_v<float>))) inner = in;
  const int add = inner.empty() ? -1 : view.producer(inner);
  if (add < 0 || !is_op(node(add), "Add") || view.sole_reader(inner) != scale) return false;
  for (const auto& in : node(add).inputs) {  // one side is x, the other 0.044715 * Pow(x, 3)
    const int cube_mul = view.producer(other_input(node(add), in));
    if (cube_mul < 0 || !is_op(node(cube_mul), "Mul") || view.sole_reader(node(cube_mul).outputs[0]) != add) continue;
    for (const auto& c : node(cube_mul).inputs) {
      const int pow = view.producer(c);
      if (pow < 0 || !is_op(node(pow), "Pow") || node(pow).inputs[0] != in || view.sole_reader(c) != cube_mul) continue;
      float e;
      if (!with_constant(node(cube_mul), view, c, 0.044715f) || !scalar_constant(view, node(pow).inputs[1], e) || e != 3.f)
        continue;
      x = in;
      chain = {size_t(pow), size_t(cube_mul), size_t(add), size_t(scale), tanh_index};
    }
  }
  if (x.empty()) return false;
  const int one = sole_reader_op(g, view, tanh.outputs[0], "Add");
  if (one < 0 || !with_constant(node(one), view, tanh.outputs[0], 1.f)) return false;
  const std::string& t1 = node(one).outputs[0];
  const int last = sole_reader_op(g, view, t1, "Mul");
  if (last < 0) return false;
  const std::string other = other_input(node(last), t1);
  chain.push_back(size_t(one));
  chain.push_back(size_t(last));
  if (other == x) {  // Mul(x, 1 + tanh) -> Mul(0.5)
    const int half = sole_reader_op(g, view, node(last).outputs[0], "Mul");
    if (half < 0 || !with_constant(node(half), view, node(last).outputs[0], 0.5f)) return false;
    chain.push_back(size_t(half));
    out = node(half).outputs[0];
    return true;
  }
  const int half = view.producer(other);  // Mul(Mul(x, 0.5), 1 + tanh)
  if (half < 0 || !is_op(node(half), "Mul") || view.sole_reader(other) != last || other_input(node(half), x).empty() ||
      !with_constant(node(half), view, x, 0.5f))
    return false;
  chain.push_back(size_t(half));
  out = node(last).outputs[0];
  return true;
}

// Replaces every chain `match` finds with the one node it builds, placed where the chain's
// result was made: its inputs are ready there and its readers come after.
template <typename Match>
void replace_chains(ir::Graph& g, Match match) {
  GraphView view(g);
  std::set<size_t> dead;
  std::vector<std::pair<size_t, ir::Node>> added;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    std::vector<size_t> chain;
    ir::Node fused;
    if (!match(g, view, i, chain, fused)) continue;
    if (std::any_of(chain.begin(), chain.end(), [&](size_t k) { return dead.count(k) != 0; })) continue;
    dead.insert(chain.begin(), chain.end());
    added.emplace_back(size_t(view.producer(fused.outputs[0])), std::move(fused));
  }
  for (auto& [at, node] : added) g.nodes[at] = std::move(node), dead.erase(at);
  ir::erase_nodes(g, dead);
}

bool match_any_gelu(const ir::Graph& g, const GraphView& view, size_t i, std::vector<size_t>& chain, ir::Node& gelu) {
  std::string x, out;
  const bool erf = match_gelu(g, view, i, chain, x, out);
  if (!erf && !match_gelu_tanh(g, view, i, chain, x, out)) return false;
  gelu.name = g.nodes[i].name + "/Gelu";
  gelu.op_type = "Gelu";
  gelu.opset = 20;
  if (!erf) {
    ir::Attribute a;
    a.kind = ir::Attribute::Kind::String;
    a.s = "tanh";
    gelu.attrs["approximate"] = a;
  }
  gelu.inputs = {x};
  gelu.outputs = {out};
  return true;
}

// Transpose -> Mul/Div by a scalar constant -> MatMul (a scaled query) becomes Mul/Div ->
// Transpose -> MatMul, so the Transpose can fold into the MatMul next.
void scale_before_transpose(ir::Graph& g) {
  GraphView view(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& t = g.nodes[i];
    if (!is_op(t, "Transpose") || t.attr_ints("perm").size() < 3) continue;
    const int r = view.sole_reader(t.outputs[0]);
    if (r < 0) continue;
    ir::Node& op = g.nodes[size_t(r)];
    float c;
    if (!(is_op(op, "Mul") || is_op(op, "Div")) || op.inputs.size() != 2 || op.inputs[0] != t.outputs[0] ||
        !scalar_constant(view, op.inputs[1], c))
      continue;
    const int next = view.sole_reader(op.outputs[0]);
    if (next < 0 || !is_op(g.nodes[size_t(next)], "MatMul")) continue;
    // x -T-> a -op-> b   becomes   x -op-> a -T-> b   (a is a fresh name for the scaled x)
    const std::string x = t.inputs[0], a = t.outputs[0], b = op.outputs[0];
    op.inputs[0] = x;
    op.outputs[0] = a;
    t.inputs[0] = a;
    t.outputs[0] = b;
    std::swap(t, op);  // keep topological order: the scaling now runs first
  }
}

// A batched MatMul whose operands are Transposes read by nothing else, or whose result only a
// Transpose reads, takes them as views (kiln::MatMul's perm_a, perm_b, perm_y).
void fold_transposes_into_matmul(ir::Graph& g) {
  GraphView view(g);
  std::set<size_t> dead;
  auto transpose = [&](int i) -> const ir::Node* {
    if (i < 0 || dead.count(size_t(i))) return nullptr;
    const ir::Node& t = g.nodes[size_t(i)];
    return is_op(t, "Transpose") && t.attr_ints("perm").size() >= 3 ? &t : nullptr;
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& n = g.nodes[i];
    if (!is_op(n, "MatMul") || n.inputs.size() != 2 || n.outputs.size() != 1 || n.inputs[0] == n.inputs[1]) continue;
    ir::Node f = n;
    f.domain = "kiln";
    f.opset = 1;
    std::vector<size_t> folded;
    const char* perm_names[2] = {"perm_a", "perm_b"};
    for (size_t slot = 0; slot < 2; ++slot) {
      const int p = view.producer(n.inputs[slot]);
      const ir::Node* t = transpose(p);
      if (!t || view.sole_reader(n.inputs[slot]) != int(i)) continue;
      f.inputs[slot] = t->inputs[0];
      f.attrs[perm_names[slot]] = *t->attr("perm");
      folded.push_back(size_t(p));
    }
    const int r = view.sole_reader(n.outputs[0]);
    if (const ir::Node* t = transpose(r)) {
      f.outputs = t->outputs;
      f.attrs["perm_y"] = *t->attr("perm");
      folded.push_back(size_t(r));
    }
    if (folded.empty()) continue;
    dead.insert(folded.begin(), folded.end());
    n = std::move(f);
  }
  ir::erase_nodes(g, dead);
}

// A product of two computed operands (attention's Q K^T, or the weights times V) scaled by a
// scalar constant, before (a Mul or Div of an operand read by nothing else) or after (of the
// result): the scale becomes kiln::MatMul's kiln_alpha, applied as oneDNN writes the result,
// instead of a pass of its own over the query or the scores.
void fold_scales_into_matmul(ir::Graph& g) {
  GraphView view(g);
  std::set<size_t> dead;
  // The scale `n` applies to `x` (Mul either way round, Div by the constant), or false. The
  // constant has at most one dimension, so the result keeps x's shape (a product's rank is 1+).
  auto scale_of = [&](int i, const std::string& x, float& s) {
    if (i < 0 || dead.count(size_t(i))) return false;
    const ir::Node& n = g.nodes[size_t(i)];
    if (n.inputs.size() != 2 || n.outputs.size() != 1 || n.inputs[0] == n.inputs[1]) return false;
    const std::string k = other_input(n, x);
    float c;
    if (k.empty() || !scalar_constant(view, k, c) || view.constant(k)->rank() > 1) return false;
    if (is_op(n, "Mul")) return s = c, true;
    if (is_op(n, "Div") && n.inputs[1] == k && c != 0.0f) return s = 1.0f / c, true;
    return false;
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& n = g.nodes[i];
    const bool kiln_mm = n.domain == "kiln" && n.op_type == "MatMul";
    if (!(is_op(n, "MatMul") || kiln_mm) || n.inputs.size() != 2 || n.outputs.size() != 1 ||
        n.inputs[0] == n.inputs[1] || view.constant(n.inputs[0]) || view.constant(n.inputs[1]))
      continue;
    float alpha = n.attr_float("kiln_alpha", 1.0f), s;
    bool changed = false;
    for (size_t slot = 0; slot < 2; ++slot) {
      const int p = view.producer(n.inputs[slot]);
      if (p < 0 || view.sole_reader(n.inputs[slot]) != int(i)) continue;
      const ir::Node& op = g.nodes[size_t(p)];
      // The operand `op` scales: its computed input.
      const std::string x = op.inputs.size() != 2 ? "" : view.constant(op.inputs[0]) ? op.inputs[1] : op.inputs[0];
      if (x.empty() || view.constant(x) || !scale_of(p, x, s)) continue;
      n.inputs[slot] = x;
      alpha *= s;
      dead.insert(size_t(p));
      changed = true;
    }
    for (int r = view.sole_reader(n.outputs[0]); scale_of(r, n.outputs[0], s); r = view.sole_reader(n.outputs[0])) {
      n.outputs = g.nodes[size_t(r)].outputs;
      alpha *= s;
      dead.insert(size_t(r));
      changed = true;
    }
    if (!changed) continue;
    n.domain = "kiln";
    n.opset = 1;
    ir::Attribute a;
    a.kind = ir::Attribute::Kind::Float;
    a.f = alpha;
    n.attrs["kiln_alpha"] = a;
  }
  ir::erase_nodes(g, dead);
}

// Attention: kiln::MatMul(Q, K) [-> Add(mask) | Where(cond, ., fill)] -> Softmax over the last
// axis -> MatMul(., V), each result read by the next alone, becomes one kiln::Attention that
// keeps a block of query rows' scores in cache from the first product to the second. The head
// dimension must be the innermost stored one of Q, K (the first product's perm_b puts it
// there), V and the result.
void fuse_attention(ir::Graph& g) {
  GraphView view(g);
  std::set<size_t> dead;
  // The node reading `name` alone, if it is not a graph output and not already taken.
  auto next = [&](const std::string& name) -> int {
    const int r = view.sole_reader(name);
    return r < 0 || view.is_graph_output(name) || dead.count(size_t(r)) ? -1 : r;
  };
  // Whether view `perm` (of rank `rank`; none: as stored) reads its dimension `at` from the
  // innermost stored one.
  auto innermost = [](const std::vector<int64_t>& perm, size_t rank, size_t at) {
    return perm.empty() ? at + 1 == rank : perm.size() == rank && perm[at] == int64_t(rank) - 1;
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& qk = g.nodes[i];
    if (dead.count(i) || qk.domain != "kiln" || qk.op_type != "MatMul" || qk.inputs.size() != 2 ||
        qk.outputs.size() != 1 || qk.has_attr("perm_y") || view.constant(qk.inputs[0]) || view.constant(qk.inputs[1]))
      continue;
    const std::vector<int64_t> perm_a = qk.attr_ints("perm_a"), perm_k = qk.attr_ints("perm_b");
    const size_t rank = perm_k.size();  // K's head dimension must move innermost: perm_b does that
    if (rank < 3 || !innermost(perm_k, rank, rank - 2) || !innermost(perm_a, rank, rank - 1)) continue;
    std::string scores = qk.outputs[0];
    int at = next(scores);
    if (at < 0) continue;
    std::vector<size_t> chain = {i};
    std::string mask_kind, mask;
    float fill = 0.0f;
    const ir::Node* n = &g.nodes[size_t(at)];
    if (is_op(*n, "Add") && n->inputs.size() == 2 && n->outputs.size() == 1 && n->inputs[0] != n->inputs[1]) {
      mask_kind = "add", mask = other_input(*n, scores);
    } else if (is_op(*n, "Where") && n->inputs.size() == 3 && n->outputs.size() == 1 && n->inputs[1] == scores &&
               n->inputs[0] != scores && n->inputs[2] != scores) {
      const Tensor* c = view.constant(n->inputs[2]);
      if (!c || c->rank() > 1 || !scalar_constant(view, n->inputs[2], fill)) continue;
      mask_kind = "where", mask = n->inputs[0];
    }
    if (!mask_kind.empty()) {
      chain.push_back(size_t(at));
      scores = n->outputs[0];
      if ((at = next(scores)) < 0) continue;
      n = &g.nodes[size_t(at)];
    }
    const int64_t axis = n->attr_int("axis", n->opset >= 13 ? -1 : 1);
    if (!is_op(*n, "Softmax") || n->inputs.size() != 1 || n->outputs.size() != 1 ||
        !(axis == -1 || axis == int64_t(rank) - 1))
      continue;
    chain.push_back(size_t(at));
    const std::string probs = n->outputs[0];
    if ((at = next(probs)) < 0) continue;
    const ir::Node& pv = g.nodes[size_t(at)];
    const bool pv_ok = (is_op(pv, "MatMul") || (pv.domain == "kiln" && pv.op_type == "MatMul")) &&
                       pv.inputs.size() == 2 && pv.outputs.size() == 1 && pv.inputs[0] == probs &&
                       pv.inputs[1] != probs && !pv.has_attr("perm_a") && !pv.has_attr("kiln_alpha");
    const std::vector<int64_t> perm_v = pv.attr_ints("perm_b"), perm_y = pv.attr_ints("perm_y");
    if (!pv_ok || !innermost(perm_v, rank, rank - 1) || !innermost(perm_y, rank, rank - 1)) continue;
    ir::Node f;
    f.name = pv.name;
    f.domain = "kiln";
    f.op_type = "Attention";
    f.opset = 1;
    f.inputs = {qk.inputs[0], qk.inputs[1], pv.inputs[1]};
    if (!mask_kind.empty()) f.inputs.push_back(mask);
    f.outputs = pv.outputs;
    auto ints = [&](const char* key, const std::vector<int64_t>& v) {
      if (v.empty()) return;
      ir::Attribute a;
      a.kind = ir::Attribute::Kind::Ints;
      a.ints = v;
      f.attrs[key] = a;
    };
    ints("perm_q", perm_a);
    ints("perm_k", perm_k);
    ints("perm_v", perm_v);
    ints("perm_y", perm_y);
    if (const ir::Attribute* alpha = qk.attr("kiln_alpha")) f.attrs["kiln_alpha"] = *alpha;
    if (!mask_kind.empty()) {
      ir::Attribute kind;
      kind.kind = ir::Attribute::Kind::String;
      kind.s = mask_kind;
      f.attrs["mask_kind"] = kind;
    }
    if (mask_kind == "where") {
      ir::Attribute value;
      value.kind = ir::Attribute::Kind::Float;
      value.f = fill;
      f.attrs["mask_fill"] = value;
    }
    dead.insert(chain.begin(), chain.end());
    g.nodes[size_t(at)] = std::move(f);
  }
  ir::erase_nodes(g, dead);
}

// Gemm as a matmul: one kernel (and one load-time weight packing) for every projection.
void gemm_as_matmul(ir::Graph& g) {
  GraphView view(g);
  FreshNames names(g);
  for (ir::Node& n : g.nodes) {
    if (!is_op(n, "Gemm") || n.inputs.size() < 2 || n.outputs.size() != 1) continue;
    if (n.attr_float("alpha", 1.f) != 1.f || n.attr_float("beta", 1.f) != 1.f || n.attr_int("transA", 0) != 0) continue;
    const Tensor* w = view.constant(n.inputs[1]);
    // An empty W stays with Gemm: oneDNN's matmul (and so FusedMatMul) takes no empty product.
    if (!w || w->dtype() != DType::Float32 || w->rank() != 2 || w->size() == 0) continue;
    const bool trans = n.attr_int("transB", 0) != 0;
    const int64_t cols = trans ? w->dim(0) : w->dim(1);
    const Tensor* c = n.has_input(2) ? view.constant(n.inputs[2]) : nullptr;
    if (n.has_input(2) && (!c || c->dtype() != DType::Float32 || c->rank() == 0 || c->size() != cols ||
                            c->dim(c->rank() - 1) != cols))
      continue;
    std::string weight = n.inputs[1];
    ir::Node f;
    if (trans && c) {  // FusedMatMul reads W as stored, [N, K], to pack it
      ir::Attribute nk;
      nk.kind = ir::Attribute::Kind::Int;
      nk.i = 1;
      f.attrs["kiln_weight_nk"] = nk;
    } else if (trans) {
      if (view.readers(weight) != 1 || view.is_graph_output(weight)) continue;  // W^T replaces W
      const int64_t k = w->dim(1);
      Tensor wt(DType::Float32, {k, cols});
      tensor_ops::permute(w->data<float>(), w->shape(), {1, 0}, wt.data<float>());
      g.initializers.erase(weight);
      weight = names.make(weight + "/transposed");
      g.initializers[weight] = wt;
    }
    f.name = n.name;
    f.inputs = {n.inputs[0], weight};
    f.outputs = n.outputs;
    if (c) {
      f.domain = "kiln";
      f.op_type = "FusedMatMul";
      f.opset = 1;
      f.inputs.push_back(n.inputs[2]);
    } else {
      f.op_type = "MatMul";
      f.opset = 13;
    }
    n = std::move(f);
  }
}

void fuse_bias_activation(ir::Graph& g) {
  GraphView view(g);
  std::set<size_t> dead;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& mm = g.nodes[i];
    if (!is_op(mm, "MatMul") || mm.inputs.size() != 2) continue;
    const Tensor* w = view.constant(mm.inputs[1]);
    if (!w || w->dtype() != DType::Float32 || w->rank() != 2 || w->size() == 0) continue;
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
    mm = std::move(f);
  }
  ir::erase_nodes(g, dead);
}

// FusedMatMul [-> Reshape] -> Relu | Gelu: the activation becomes the matmul's post-op. An
// elementwise function commutes with a Reshape, which then reshapes the activated product
// (GPT-2's Gemm -> Reshape -> GELU).
void fuse_matmul_activation(ir::Graph& g) {
  GraphView view(g);
  std::set<size_t> dead;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& mm = g.nodes[i];
    if (mm.domain != "kiln" || mm.op_type != "FusedMatMul" || mm.has_attr("activation")) continue;
    int reshape = -1, r = view.sole_reader(mm.outputs[0]);
    if (r >= 0 && is_op(g.nodes[size_t(r)], "Reshape") && g.nodes[size_t(r)].inputs[0] == mm.outputs[0]) {
      reshape = r;
      r = view.sole_reader(g.nodes[size_t(r)].outputs[0]);
    }
    if (r < 0 || dead.count(size_t(r))) continue;
    const ir::Node& n = g.nodes[size_t(r)];
    const std::string& fed = reshape >= 0 ? g.nodes[size_t(reshape)].outputs[0] : mm.outputs[0];
    const bool gelu = is_op(n, "Gelu");
    const char* name = is_op(n, "Relu")                                             ? "Relu"
                       : gelu && n.attr_string("approximate", "none") == "none" ? "Gelu"
                       : gelu                                                     ? "GeluTanh"
                                                                                  : nullptr;
    if (!name || n.inputs.empty() || n.inputs[0] != fed) continue;
    ir::Attribute act;
    act.kind = ir::Attribute::Kind::String;
    act.s = name;
    mm.attrs["activation"] = act;
    (reshape >= 0 ? g.nodes[size_t(reshape)] : mm).outputs = n.outputs;
    dead.insert(size_t(r));
  }
  ir::erase_nodes(g, dead);
}

// FusedMatMul -> Add(Z): the residual Z becomes the matmul's 4th input, added by oneDNN's sum
// post-op (a projection back onto a transformer's residual stream; a Z that broadcasts is added
// after). Z cannot depend on the product: the Add is the product's only reader.
void fuse_matmul_residual(ir::Graph& g) {
  GraphView view(g);
  std::set<size_t> dead;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& mm = g.nodes[i];
    if (mm.domain != "kiln" || mm.op_type != "FusedMatMul" || mm.inputs.size() != 3) continue;
    const int r = view.sole_reader(mm.outputs[0]);
    if (r < 0 || dead.count(size_t(r)) || !is_op(g.nodes[size_t(r)], "Add")) continue;
    const ir::Node& add = g.nodes[size_t(r)];
    const std::string z = other_input(add, mm.outputs[0]);
    if (z.empty() || z == mm.outputs[0] || view.constant(z)) continue;  // a constant is a bias, not a residual
    mm.inputs.push_back(z);
    mm.outputs = add.outputs;
    dead.insert(size_t(r));
  }
  ir::erase_nodes(g, dead);
}

// A one-element int64 constant's value.
bool int_constant(const GraphView& view, const std::string& name, int64_t& value) {
  const Tensor* t = view.constant(name);
  if (!t || t->dtype() != DType::Int64 || t->size() != 1) return false;
  value = t->data<int64_t>()[0];
  return true;
}

// The columns [begin, end) of N that Slice `n` keeps along the last axis, if it is such a Slice.
bool last_axis_slice(const ir::Node& n, const GraphView& view, int64_t cols, int64_t& begin, int64_t& end) {
  if (!is_op(n, "Slice") || n.inputs.size() < 4 || n.opset < 10) return false;
  int64_t axis, step = 1;
  if (!int_constant(view, n.inputs[1], begin) || !int_constant(view, n.inputs[2], end) ||
      !int_constant(view, n.inputs[3], axis) || axis != -1)
    return false;
  if (n.has_input(4) && (!int_constant(view, n.inputs[4], step) || step != 1)) return false;
  auto clamp = [cols](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + cols : v, 0, cols); };
  begin = clamp(begin), end = clamp(end);
  return begin < end;
}

// A projection whose product is only cut apart along its last axis (attention's fused Q, K, V:
// Slices, or a Reshape then a Split) becomes one FusedMatMul per part, each with its columns
// of W and the bias: the parts are written where they are read, with no copies.
void split_projections(ir::Graph& g) {
  GraphView view(g);
  FreshNames names(g);
  std::set<size_t> dead;
  std::map<size_t, std::vector<ir::Node>> inserted;  // placed where the projection was
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& mm = g.nodes[i];
    if (mm.domain != "kiln" || mm.op_type != "FusedMatMul" || mm.inputs.size() != 3 || mm.outputs.size() != 1) continue;
    const Tensor* w = view.constant(mm.inputs[1]);
    const Tensor* b = view.constant(mm.inputs[2]);
    if (!w || !b || w->rank() != 2 || view.is_graph_output(mm.outputs[0])) continue;
    const bool nk = mm.attr_int("kiln_weight_nk", 0) != 0;  // W stored [N, K]: a part is a row range
    const int64_t k = w->dim(nk ? 1 : 0), cols = w->dim(nk ? 0 : 1);
    struct Part {
      int64_t begin, end;
      std::string out;
    };
    std::vector<Part> parts;
    std::vector<size_t> cut;  // the nodes the parts replace
    const Tensor* target = nullptr;
    const ir::Node* reshape = nullptr;
    std::vector<size_t> readers;
    for (size_t r = 0; r < g.nodes.size(); ++r)
      if (std::find(g.nodes[r].inputs.begin(), g.nodes[r].inputs.end(), mm.outputs[0]) != g.nodes[r].inputs.end())
        readers.push_back(r);
    if (int64_t(readers.size()) != view.readers(mm.outputs[0])) continue;  // read inside a subgraph
    bool ok = !readers.empty();
    for (size_t r : readers) {
      int64_t s0, s1;
      ok = ok && g.nodes[r].inputs[0] == mm.outputs[0] && last_axis_slice(g.nodes[r], view, cols, s0, s1);
      if (ok) parts.push_back({s0, s1, g.nodes[r].outputs[0]}), cut.push_back(r);
    }
    if (!ok && readers.size() == 1) {  // [Reshape ->] Split
      parts.clear(), cut.clear();
      int sp = int(readers[0]);
      int64_t rank = -1;  // unknown without a Reshape: only axis -1 is then the last
      if (is_op(g.nodes[readers[0]], "Reshape")) {
        reshape = &g.nodes[readers[0]];
        target = view.constant(reshape->inputs[1]);
        const bool keeps_last = target && target->dtype() == DType::Int64 && target->size() > 0 &&
                                target->data<int64_t>()[target->size() - 1] == cols && reshape->inputs[0] == mm.outputs[0];
        sp = keeps_last ? view.sole_reader(reshape->outputs[0]) : -1;
        rank = keeps_last ? target->size() : -1;
      }
      if (sp >= 0 && is_op(g.nodes[size_t(sp)], "Split") && g.nodes[size_t(sp)].inputs[0] != "" &&
          (reshape || g.nodes[size_t(sp)].inputs[0] == mm.outputs[0])) {
        const ir::Node& split = g.nodes[size_t(sp)];
        const int64_t axis = split.attr_int("axis", 0);
        std::vector<int64_t> sizes = split.attr_ints("split");
        if (split.has_input(1)) {
          const Tensor* t = view.constant(split.inputs[1]);
          sizes = t && t->dtype() == DType::Int64 ? t->to_int64s() : std::vector<int64_t>{};
        }
        const int64_t n = int64_t(split.outputs.size());
        if (sizes.empty() && n > 0 && cols % n == 0 && !split.has_input(1)) sizes.assign(size_t(n), cols / n);
        int64_t at = 0;
        ok = (axis == -1 || (rank > 0 && axis == rank - 1)) && int64_t(sizes.size()) == n;
        for (int64_t q = 0; ok && q < n; ++q) {
          ok = sizes[size_t(q)] > 0 && !split.outputs[size_t(q)].empty();
          if (ok) parts.push_back({at, at + sizes[size_t(q)], split.outputs[size_t(q)]});
          at += ok ? sizes[size_t(q)] : 0;
        }
        ok = ok && at == cols;
        if (ok) cut = reshape ? std::vector<size_t>{readers[0], size_t(sp)} : std::vector<size_t>{size_t(sp)};
      }
    }
    if (!ok || parts.size() < 2) continue;
    std::sort(parts.begin(), parts.end(), [](const Part& x, const Part& y) { return x.begin < y.begin; });
    for (size_t q = 1; q < parts.size(); ++q) ok = ok && parts[q].begin >= parts[q - 1].end;
    if (!ok) continue;
    std::vector<ir::Node>& made = inserted[i];
    for (size_t q = 0; q < parts.size(); ++q) {
      const Part& part = parts[q];
      const int64_t width = part.end - part.begin;
      Tensor wp(DType::Float32, nk ? Shape{width, k} : Shape{k, width}), bp(DType::Float32, {width});
      if (nk)
        std::copy_n(w->data<float>() + part.begin * k, width * k, wp.data<float>());
      else
        for (int64_t row = 0; row < k; ++row)
          std::copy_n(w->data<float>() + row * cols + part.begin, width, wp.data<float>() + row * width);
      std::copy_n(b->data<float>() + part.begin, width, bp.data<float>());
      const std::string tag = "/part" + std::to_string(q);
      ir::Node f = mm;
      f.name = names.make(mm.name + tag);
      f.inputs = {mm.inputs[0], names.make(mm.inputs[1] + tag), names.make(mm.inputs[2] + tag)};
      g.initializers[f.inputs[1]] = wp;
      g.initializers[f.inputs[2]] = bp;
      f.outputs = {part.out};
      if (reshape) {  // the product reshaped as before, with the part's width last
        Tensor t = target->clone();
        t.data<int64_t>()[t.size() - 1] = width;
        ir::Node r = *reshape;
        r.name = names.make(reshape->name + tag);
        f.outputs = {names.make(mm.outputs[0] + tag)};
        r.inputs = {f.outputs[0], names.make(reshape->inputs[1] + tag)};
        g.initializers[r.inputs[1]] = t;
        r.outputs = {part.out};
        made.push_back(f);
        made.push_back(r);
      } else {
        made.push_back(f);
      }
    }
    dead.insert(i);
    for (size_t c : cut) dead.insert(c);
    // The parts replace the whole weight: it goes now, not after the loop, so a model holds
    // one layer's copy at a time (ViT's twelve 7 MB projections raised the load peak 80 MB).
    for (const std::string& whole : {mm.inputs[1], mm.inputs[2]})
      if (view.readers(whole) == 1 && !view.is_graph_output(whole)) g.initializers.erase(whole);
  }
  ir::splice_nodes(g, dead, inserted);
}

// The last axis as a ReduceMean reads it (axes attribute, or input before/after opset 18).
bool reduces_last_axis(const ir::Node& n, const GraphView& view) {
  if (!is_op(n, "ReduceMean") || n.attr_int("keepdims", 1) != 1) return false;
  std::vector<int64_t> axes = n.attr_ints("axes");
  if (n.has_input(1)) {
    const Tensor* t = view.constant(n.inputs[1]);
    if (!t || t->dtype() != DType::Int64) return false;
    axes = t->to_int64s();
  }
  return axes == std::vector<int64_t>{-1};
}

// Around ReduceMean `m`: m = mean(x), d = x - m, v = mean(d^2), y = d / sqrt(v + eps) * gamma + beta.
bool match_layer_norm(const ir::Graph& g, const GraphView& view, size_t m, std::vector<size_t>& chain, ir::Node& ln) {
  auto node = [&](int i) -> const ir::Node& { return g.nodes[size_t(i)]; };
  if (!reduces_last_axis(g.nodes[m], view)) return false;
  const std::string& x = g.nodes[m].inputs[0];
  const int sub = sole_reader_op(g, view, g.nodes[m].outputs[0], "Sub");
  if (sub < 0 || node(sub).inputs[0] != x) return false;
  const std::string& d = node(sub).outputs[0];
  if (view.readers(d) != 2 || view.is_graph_output(d)) return false;
  int pow = -1, div = -1;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const ir::Node& n = g.nodes[k];
    float e;
    if (is_op(n, "Pow") && n.inputs[0] == d && scalar_constant(view, n.inputs[1], e) && e == 2.f) pow = int(k);
    if (is_op(n, "Div") && n.inputs.size() == 2 && n.inputs[0] == d) div = int(k);
  }
  if (pow < 0 || div < 0) return false;
  const int var = view.sole_reader(node(pow).outputs[0]);
  if (var < 0 || !reduces_last_axis(node(var), view)) return false;
  const int add = sole_reader_op(g, view, node(var).outputs[0], "Add");
  float eps;
  if (add < 0 || !scalar_constant(view, other_input(node(add), node(var).outputs[0]), eps)) return false;
  const int sqrt = sole_reader_op(g, view, node(add).outputs[0], "Sqrt");
  if (sqrt < 0 || view.sole_reader(node(sqrt).outputs[0]) != div || node(div).inputs[1] != node(sqrt).outputs[0])
    return false;
  const int mul = sole_reader_op(g, view, node(div).outputs[0], "Mul");
  if (mul < 0) return false;
  const std::string gamma = other_input(node(mul), node(div).outputs[0]);
  const int shift = sole_reader_op(g, view, node(mul).outputs[0], "Add");
  if (shift < 0) return false;
  const std::string beta = other_input(node(shift), node(mul).outputs[0]);
  for (const std::string* p : {&gamma, &beta}) {
    const Tensor* t = view.constant(*p);
    if (!t || t->dtype() != DType::Float32 || t->rank() != 1) return false;
  }
  chain = {m, size_t(sub), size_t(pow), size_t(var), size_t(add), size_t(sqrt), size_t(div), size_t(mul), size_t(shift)};
  ln = ir::Node();
  ln.name = g.nodes[m].name + "/LayerNormalization";
  ln.op_type = "LayerNormalization";
  ln.opset = 17;
  ln.inputs = {x, gamma, beta};
  ln.outputs = node(shift).outputs;
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::Float;
  a.f = eps;
  ln.attrs["epsilon"] = a;
  return true;
}

}  // namespace

void fuse_transformer_ops(ir::Graph& g) {
  replace_chains(g, match_layer_norm);
  replace_chains(g, match_any_gelu);
  gemm_as_matmul(g);
  fuse_bias_activation(g);
  fuse_matmul_activation(g);
  fuse_matmul_residual(g);
  split_projections(g);
  scale_before_transpose(g);
  fold_transposes_into_matmul(g);
  fold_scales_into_matmul(g);
  fuse_attention(g);
}

}  // namespace kiln
