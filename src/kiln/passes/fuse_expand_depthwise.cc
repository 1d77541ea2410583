// An inverted residual block's expansion and depthwise layers as one kiln::ExpandDepthwise node
// (level all, after the layout pass and the squeeze-excite folds): a 1x1 convolution of few
// input channels whose output, read by nothing else, feeds a depthwise convolution, both on
// channels-last data with activations Kiln applies in registers. The expanded tensor then never
// leaves the cache (ops/nn/expand_depthwise.cc).
#include <set>

#include "kiln/ir/graph_view.h"
#include "kiln/ops/nn/conv_common.h"
#include "kiln/passes/passes.h"

namespace kiln {

namespace {

// A convolution of constant float W [M, C/group, kh, kw] on channels-last X and Y, with no
// residual, channel scale or folded pool, and an activation Kiln's kernels apply in registers;
// its geometry (spatial sizes left out) in `geo`.
const Tensor* plain_conv(const ir::Node& n, const GraphView& view, nn::ConvGeometry& geo) {
  if (!is_conv(n) || n.inputs.size() < 2 || n.has_input(3) || n.has_input(4) || n.has_attr("kiln_pool_kernel") ||
      n.attr_int("kiln_x_nhwc", 0) != 1 || n.attr_int("kiln_y_nhwc", 0) != 1 || n.attr_int("kiln_bf16", 0) != 0 ||
      n.attr_string("auto_pad", "NOTSET") != "NOTSET")
    return nullptr;
  try {
    if (!nn::Activation::from_node(n).in_registers()) return nullptr;
  } catch (const Error&) {  // malformed: its own kernel names the problem
    return nullptr;
  }
  const Tensor* w = view.constant(n.inputs[1]);
  if (!w || w->dtype() != DType::Float32 || w->rank() != 4) return nullptr;
  if (n.has_input(2)) {
    const Tensor* b = view.constant(n.inputs[2]);
    if (!b || b->dtype() != DType::Float32 || b->size() != w->dim(0)) return nullptr;
  }
  geo.group = n.attr_int("group", 1);
  geo.in_channels = w->dim(1) * geo.group;
  geo.out_channels = w->dim(0);
  geo.window.kernel = {w->dim(2), w->dim(3)};
  geo.window.strides = n.attr_ints("strides", {1, 1});
  geo.window.dilations = n.attr_ints("dilations", {1, 1});
  const std::vector<int64_t> pads = n.attr_ints("pads", {0, 0, 0, 0});
  if (geo.window.strides.size() != 2 || geo.window.dilations.size() != 2 || pads.size() != 4) return nullptr;
  geo.window.pads_begin = {pads[0], pads[1]};
  geo.window.pads_end = {pads[2], pads[3]};
  return w;
}

void copy_activation(const ir::Node& from, const std::string& prefix, ir::Node& to) {
  for (const char* key : {"activation", "activation_params"})
    if (const ir::Attribute* a = from.attr(key)) to.attrs[prefix + key] = *a;
}

}  // namespace

void fuse_expand_depthwise(ir::Graph& g) {
  GraphView view(g);
  std::set<size_t> dead;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& expand = g.nodes[i];
    nn::ConvGeometry eg, dg;
    if (dead.count(i) || !plain_conv(expand, view, eg) || expand.outputs.size() != 1 ||
        !nn::PointwiseConv::suits(eg))
      continue;
    const int r = view.sole_reader(expand.outputs[0]);
    if (r < 0) continue;
    ir::Node& dw = g.nodes[size_t(r)];
    if (!plain_conv(dw, view, dg) || dw.inputs[0] != expand.outputs[0] || dg.in_channels != eg.out_channels ||
        !nn::DepthwiseConv::suits(dg))
      continue;
    ir::Node fused;
    fused.name = dw.name;
    fused.domain = "kiln";
    fused.op_type = "ExpandDepthwise";
    fused.opset = 1;
    fused.inputs = {expand.inputs[0], expand.inputs[1], expand.has_input(2) ? expand.inputs[2] : "", dw.inputs[1],
                    dw.has_input(2) ? dw.inputs[2] : ""};
    fused.outputs = dw.outputs;  // Y, and the folded pool's means when there are
    copy_activation(expand, "expand_", fused);
    copy_activation(dw, "", fused);
    for (const char* key : {"strides", "pads", "dilations"})
      if (const ir::Attribute* a = dw.attr(key)) fused.attrs[key] = *a;
    dw = std::move(fused);
    dead.insert(i);
  }
  ir::erase_nodes(g, dead);
}

}  // namespace kiln
