// Conv: 1-D to 3-D float convolution on oneDNN (groups, depthwise, dilations, strides, pads,
// auto_pad), float64 and higher ranks through a reference loop. The kernel is ConvKernel.
#include "kiln/ops/nn/conv_common.h"

namespace kiln::nn {
namespace {
std::unique_ptr<Kernel> make_conv(const KernelInit& init) { return std::make_unique<ConvKernel>(init, PostOps{}); }
const OpRegistration kConv{"Conv", make_conv};
}  // namespace
}  // namespace kiln::nn
