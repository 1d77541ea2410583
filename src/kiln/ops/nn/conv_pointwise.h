// A 1x1 convolution with few input channels over channels-last data, its activation applied in
// registers before the store.
//
// Such a layer (an inverted residual block's expansion: 16 -> 96 channels at 112x112) does
// little arithmetic per output value and is bound by writing its output. oneDNN computes it
// well, but an activation oneDNN applies slowly (SiLU, whose swish post-op divides) then ran
// as a second pass over an output larger than L2. Here each tile of a few pixels keeps its sums
// in registers over all input channels and stores them activated. Nothing is made per shape.
#pragma once

#include <memory>

#include "kiln/ops/common/dnnl.h"
#include "kiln/ops/nn/conv_act.h"
#include "kiln/ops/nn/conv_reference.h"

namespace kiln::nn {

class PointwiseConv {
 public:
  // Whether a float convolution of this geometry runs here: 2-D, one group, a 1x1 kernel with
  // stride 1 and no padding, at most kMaxChannels input channels.
  static bool suits(const ConvGeometry& geo);
  static constexpr int64_t kMaxChannels = 48;
  // Packs W [K, C, 1, 1] (shared between kernels of the same constant W).
  void init(const Tensor& w);
  explicit operator bool() const { return bool(f_); }
  // Y = act(conv(X, W) + bias) with X and Y channels-last; bias may be null; Clip's bounds in
  // lo and hi. Splits the pixels over the calling thread's OpenMP team.
  void run(const ConvGeometry& geo, const float* x, const float* bias, ConvAct act, float lo, float hi, float* y) const;

 private:
  std::shared_ptr<const dnnl::memory> f_;  // [C][K padded to 16]: each channel's K filters side by side
  int64_t c_ = 0, k_ = 0;
};

}  // namespace kiln::nn
