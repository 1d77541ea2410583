// An inverted residual block's expansion and depthwise layers as one kiln::ExpandDepthwise node
// (level all, after the layout pass and the squeeze-excite folds): a 1x1 convolution of few
// input channels whose output, read by nothing else, feeds a depthwise convolution, both on
// channels-last data with activations Kiln applies in registers. The expanded tensor then never
// leaves the cache (ops/nn/expand_depthwise.cc).
#include <optional>
#include <set>

#include "kiln/ir/graph_view.h"
#include "kiln/ops/nn/conv_common.h"
#include "kiln/passes/passes.h"

namespace kiln {

namespace {

// A convolution on Kiln's own kernels (own_kernel_geometry) on channels-last X and Y, with no
// residual, channel scale or folded pool, and a constant float bias if any; its geometry.
std::optional<nn::ConvGeometry> plain_conv(const ir::Node& n, const GraphView& view) {
  if (!is_conv(n) || n.inputs.size() < 2 || n.has_input(3) || n.has_input(4) || n.has_attr("kiln_pool_kernel") ||
      n.attr_int("kiln_x_nhwc", 0) != 1 || n.attr_int("kiln_y_nhwc", 0) != 1 || n.attr_int("kiln_bf16", 0) != 0 ||
      n.attr_string("auto_pad", "NOTSET") != "NOTSET")
    return std::nullopt;
  std::optional<nn::ConvGeometry> geo = nn::own_kernel_geometry(n, view.constant(n.inputs[1]));
  if (geo && n.has_input(2)) {
    const Tensor* b = view.constant(n.inputs[2]);
    if (!b || b->dtype() != DType::Float32 || b->size() != geo->out_channels) return std::nullopt;
  }
  return geo;
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
    if (dead.count(i) || expand.outputs.size() != 1) continue;
    const std::optional<nn::ConvGeometry> eg = plain_conv(expand, view);
    if (!eg || !nn::PointwiseConv::suits(*eg)) continue;
    const int r = view.sole_reader(expand.outputs[0]);
    if (r < 0) continue;
    ir::Node& dw = g.nodes[size_t(r)];
    const std::optional<nn::ConvGeometry> dg = plain_conv(dw, view);
    if (!dg || dw.inputs[0] != expand.outputs[0] || dg->in_channels != eg->out_channels ||
        !nn::DepthwiseConv::suits(*dg))
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
