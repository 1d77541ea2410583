// A CNN's first convolution: few input channels (an image's three), read as the caller stored
// them (NCHW), into channels-last output, with bias and the activation applied before the store.
//
// oneDNN wants such an input channels-last too, so the image went through a reorder first
// (40-70 us for 1x3x224x224), and its brgconv on three channels ran at a third to two thirds of
// the machine's peak. Here each tile of a few output pixels over all output channels keeps its
// sums in registers; each filter tap is one to four vectors of 16 output channels, multiplied by
// each pixel's input value, broadcast. Nothing is created per shape.
#pragma once

#include <memory>

#include "kiln/ops/common/dnnl.h"
#include "kiln/ops/nn/conv_act.h"
#include "kiln/ops/nn/conv_reference.h"

namespace kiln::nn {

class StemConv {
 public:
  // Whether a float convolution of this geometry runs here: 2-D, one group, at most 4 input
  // channels, 16 to 64 output channels in multiples of 16, stride 1 or 2, dilation 1.
  static bool suits(const ConvGeometry& geo);
  // Packs W [K, C, kh, kw] (shared between kernels of the same constant W).
  void init(const Tensor& w);
  explicit operator bool() const { return bool(f_); }
  // Y = act(conv(X, W) + bias) with X NCHW and Y channels-last; bias may be null; Clip's bounds
  // in lo and hi. Splits the output rows over the calling thread's OpenMP team.
  void run(const ConvGeometry& geo, const float* x, const float* bias, ConvAct act, float lo, float hi, float* y) const;
  // The same followed by a max pool over `pool` (2-D, dilation 1) of the convolution's output,
  // whose result [N, pooled..., K] alone is written: the rows the pool reads stay in cache.
  void run_pooled(const ConvGeometry& geo, const float* x, const float* bias, ConvAct act, float lo, float hi,
                  const Window& pool, const Shape& pooled, float* y) const;

  // The packed taps and their dimensions.
  struct Packed {
    const float* f;
    int64_t c, k, kh, kw;
  };

 private:
  Packed packed() const;

  std::shared_ptr<const dnnl::memory> f_;  // [C][kh][kw][K]: each tap's K filters side by side
  int64_t c_ = 0, k_ = 0, kh_ = 0, kw_ = 0;
};

}  // namespace kiln::nn
