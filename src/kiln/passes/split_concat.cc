// A channel Concat read only by a 1x1 convolution is never built (level extended and up):
//
//   Concat(a, b) -> Conv1x1(W, B)   becomes   Conv(a, W[:, :Ca], B) -> p
//                                             Conv(b, W[:, Ca:]) -> Add(p)
//
// and a MaxPool between them moves onto the parts first (pooling is per channel). The Add then
// fuses into the second convolution as its residual, so the parts' sum costs nothing, and the
// Concat's copy of every channel goes away: SqueezeNet's fire modules, 4-6% of its run. Not
// for a weight of a megabyte and more, whose product is long enough that one pass over the
// output beats one per part, the copy included (SqueezeNet's 512 -> 1000 classifier: level at
// one image, 2% of the run faster at eight).
#include <algorithm>
#include <map>
#include <set>

#include "kiln/ir/fresh_names.h"
#include "kiln/ir/graph_view.h"
#include "kiln/ops/math/packed_gemm.h"
#include "kiln/passes/passes.h"

namespace kiln {

namespace {

using ir::is_op;

// A 4-D Concat along channels.
bool is_channel_concat(const ir::Node& n) {
  return is_op(n, "Concat") && n.inputs.size() >= 2 && n.outputs.size() == 1 && n.attr_int("axis", 0) == 1;
}

// Channels of an NCHW value, when a float convolution's weight tells them (through
// channel-preserving ops); -1 if unknown.
int64_t channels(const std::string& value, const ir::Graph& g, const GraphView& view, int depth = 0) {
  const int p = view.producer(value);
  if (p < 0 || depth > 8) return -1;
  const ir::Node& n = g.nodes[size_t(p)];
  if (ir::is_conv(n) && n.inputs.size() > 1) {
    const Tensor* w = view.constant(n.inputs[1]);
    return w && w->rank() == 4 ? w->dim(0) : -1;
  }
  for (const char* op : {"Relu", "MaxPool", "Clip", "LeakyRelu", "Sigmoid", "HardSwish", "Identity"})
    if (is_op(n, op) && !n.inputs.empty() && n.outputs[0] == value) return channels(n.inputs[0], g, view, depth + 1);
  return -1;
}

// A float Conv with a constant 1x1 weight and one group: what split_concat_convs takes apart.
bool is_pointwise_conv(const ir::Node& conv, const GraphView& view) {
  if (!is_op(conv, "Conv") || conv.inputs.size() < 2 || conv.outputs.size() != 1 || conv.attr_int("group", 1) != 1 ||
      conv.attr_string("auto_pad", "NOTSET") != "NOTSET")
    return false;
  const Tensor* w = view.constant(conv.inputs[1]);
  return w && w->dtype() == DType::Float32 && w->rank() == 4 && w->dim(2) == 1 && w->dim(3) == 1;
}

// Concat -> MaxPool -> 1x1 Conv as MaxPool per part -> Concat -> Conv.
void pools_before_concats(ir::Graph& g) {
  GraphView view(g);
  FreshNames names(g);
  std::set<size_t> dead;
  std::map<size_t, std::vector<ir::Node>> replaced;  // concat index -> the nodes in its place
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& cat = g.nodes[i];
    if (!is_channel_concat(cat)) continue;
    const int r = view.sole_reader(cat.outputs[0]);
    if (r < 0) continue;
    const ir::Node& pool = g.nodes[size_t(r)];
    if (!is_op(pool, "MaxPool") || pool.inputs.size() != 1 || pool.outputs.size() != 1) continue;
    const int next = view.sole_reader(pool.outputs[0]);
    if (next < 0 || !is_pointwise_conv(g.nodes[size_t(next)], view)) continue;  // nothing would take it apart
    std::vector<ir::Node>& made = replaced[i];
    ir::Node joined = cat;
    joined.inputs.clear();
    for (size_t k = 0; k < cat.inputs.size(); ++k) {
      ir::Node part = pool;
      part.name = names.make(pool.name + "/part" + std::to_string(k));
      part.inputs = {cat.inputs[k]};
      part.outputs = {names.make(pool.outputs[0] + "/part" + std::to_string(k))};
      joined.inputs.push_back(part.outputs[0]);
      made.push_back(std::move(part));
    }
    joined.outputs = pool.outputs;
    made.push_back(std::move(joined));
    dead.insert(i);
    dead.insert(size_t(r));
  }
  ir::splice_nodes(g, dead, replaced);
}

void split_concat_convs(ir::Graph& g) {
  GraphView view(g);
  FreshNames names(g);
  std::set<size_t> dead;
  std::map<size_t, std::vector<ir::Node>> replaced;  // conv index -> the nodes in its place
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& cat = g.nodes[i];
    if (!is_channel_concat(cat)) continue;
    const int r = view.sole_reader(cat.outputs[0]);
    if (r < 0) continue;
    const ir::Node& conv = g.nodes[size_t(r)];
    if (!is_pointwise_conv(conv, view) || conv.inputs[0] != cat.outputs[0]) continue;
    const Tensor* w = view.constant(conv.inputs[1]);
    if (streams_on_packed_gemm(w->dim(1), w->dim(0))) continue;  // a megabyte: one deep product
    std::vector<int64_t> parts;
    int64_t total = 0;
    for (const std::string& x : cat.inputs) {
      parts.push_back(channels(x, g, view));
      total += parts.back();
      if (parts.back() <= 0) break;
    }
    if (parts.back() <= 0 || total != w->dim(1)) continue;
    const int64_t m = w->dim(0), c = w->dim(1);
    std::vector<ir::Node>& made = replaced[size_t(r)];
    std::string sum;
    int64_t at = 0;
    for (size_t k = 0; k < parts.size(); ++k) {
      const std::string tag = "/part" + std::to_string(k);
      Tensor wk(DType::Float32, {m, parts[k], 1, 1});
      for (int64_t o = 0; o < m; ++o)
        std::copy_n(w->data<float>() + o * c + at, parts[k], wk.data<float>() + o * parts[k]);
      at += parts[k];
      ir::Node part = conv;
      part.name = names.make(conv.name + tag);
      part.inputs = {cat.inputs[k], names.make(conv.inputs[1] + tag)};
      if (k == 0 && conv.has_input(2)) part.inputs.push_back(conv.inputs[2]);  // the bias, once
      g.initializers[part.inputs[1]] = std::move(wk);
      part.outputs = {names.make(conv.outputs[0] + tag)};
      made.push_back(part);
      if (k == 0) {
        sum = part.outputs[0];
        continue;
      }
      ir::Node add;
      add.op_type = "Add";
      add.opset = 14;
      add.name = names.make(conv.name + "/sum" + std::to_string(k));
      add.inputs = {part.outputs[0], sum};
      add.outputs = {k + 1 == parts.size() ? conv.outputs[0] : names.make(conv.outputs[0] + "/sum" + std::to_string(k))};
      sum = add.outputs[0];
      made.push_back(std::move(add));
    }
    if (view.readers(conv.inputs[1]) == 1 && !view.is_graph_output(conv.inputs[1])) g.initializers.erase(conv.inputs[1]);
    dead.insert(i);
    dead.insert(size_t(r));
  }
  ir::splice_nodes(g, dead, replaced);
}

}  // namespace

void split_concat_convolutions(ir::Graph& g) {
  pools_before_concats(g);
  split_concat_convs(g);
}

}  // namespace kiln
