// FusedConv (domain "kiln", made by the graph optimizer), after ONNX Runtime's com.microsoft
// FusedConv: Y = activation(Conv(X, W) + B + Z), with the optional residual Z as 4th input and
// `activation` / `activation_params` naming the activation. Both ride on the convolution as
// oneDNN post-ops.
#include "kiln/ops/nn/conv_common.h"

namespace kiln::nn {
namespace {
std::unique_ptr<Kernel> make_fused_conv(const KernelInit& init) {
  PostOps post;
  post.act = Activation::from_node(init.node);
  post.sum = init.node.has_input(3);
  return std::make_unique<ConvKernel>(init, post);
}
const OpRegistration kFusedConv{"kiln", "FusedConv", 1, make_fused_conv};
}  // namespace
}  // namespace kiln::nn
