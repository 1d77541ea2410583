// A network's first convolution and the max pool after it as one node (level all, after the
// layout pass): ResNet's and SqueezeNet's stems write a 3 MB image that the pool reads back
// only to keep a quarter of it. When the convolution runs on the stem kernel (NCHW X, a
// constant W of at most 4 input and 16-64 output channels, channels-last Y, no residual) and
// its sole reader is a 2-D MaxPool without Indices, the pool's window rides on the
// convolution as kiln_pool_* attributes and the kernel writes only the pooled rows, computing
// each convolution row once into a small ring that stays in cache.
#include <set>

#include "kiln/ir/graph_view.h"
#include "kiln/ops/nn/conv_common.h"
#include "kiln/passes/passes.h"

namespace kiln {

namespace {

ir::Attribute ints(std::vector<int64_t> v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::Ints;
  a.ints = std::move(v);
  return a;
}

ir::Attribute int_attr(int64_t v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::Int;
  a.i = v;
  return a;
}

// Whether `conv` runs on the stem kernel whatever its input's size: its W and attributes.
bool runs_on_stem(const ir::Node& conv, const GraphView& view) {
  if (!ir::is_conv(conv) || conv.inputs.size() < 2 || conv.has_input(3) || conv.outputs.size() != 1) return false;
  if (conv.attr_int("kiln_x_nhwc", 0) != 0 || conv.attr_int("kiln_y_nhwc", 0) != 1 || conv.attr_int("kiln_bf16", 0) != 0)
    return false;
  const std::optional<nn::ConvGeometry> geo = nn::own_kernel_geometry(conv, view.constant(conv.inputs[1]));
  return geo && nn::StemConv::suits(*geo);
}

}  // namespace

void fuse_stem_pools(ir::Graph& g) {
  GraphView view(g);
  std::set<size_t> dead;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& conv = g.nodes[i];
    if (!runs_on_stem(conv, view)) continue;
    const int r = view.sole_reader(conv.outputs[0]);
    if (r < 0) continue;
    const ir::Node& pool = g.nodes[size_t(r)];
    if (!pool.domain.empty() || pool.op_type != "MaxPool" || pool.outputs.size() != 1 ||
        pool.attr_int("kiln_nhwc", 0) != 1 || pool.attr_int("storage_order", 0) != 0)
      continue;
    const std::vector<int64_t> kernel = pool.attr_ints("kernel_shape");
    const std::vector<int64_t> strides = pool.attr_ints("strides", {1, 1});
    const std::vector<int64_t> pads = pool.attr_ints("pads", {0, 0, 0, 0});
    const std::vector<int64_t> dilations = pool.attr_ints("dilations", {1, 1});
    const std::string auto_pad = pool.attr_string("auto_pad", "NOTSET");
    if (kernel.size() != 2 || strides.size() != 2 || pads.size() != 4 || dilations != std::vector<int64_t>{1, 1} ||
        (auto_pad != "NOTSET" && auto_pad != "VALID"))
      continue;
    ir::as_fused_conv(conv);
    conv.attrs["kiln_pool_kernel"] = ints(kernel);
    conv.attrs["kiln_pool_strides"] = ints(strides);
    conv.attrs["kiln_pool_pads"] = ints(auto_pad == "VALID" ? std::vector<int64_t>{0, 0, 0, 0} : pads);
    conv.attrs["kiln_pool_ceil"] = int_attr(pool.attr_int("ceil_mode", 0));
    conv.outputs = pool.outputs;
    dead.insert(size_t(r));
  }
  ir::erase_nodes(g, dead);
}

}  // namespace kiln
