// Depthwise 2-D convolutions (one filter per channel) on channels-last data, with bias and the
// activation applied before the store.
//
// Each output row goes in tiles of a few pixels over one to four blocks of 16 channels: the
// tile's sums stay in registers, a filter row's taps are loaded once per tile, and each input
// vector the tile reads is loaded once and multiplied into every sum it feeds. Over several
// blocks a tile reads each pixel's channels as one run of cache lines, which the prefetchers
// follow; one block of a 64-channel pixel is every fourth line, and such tiles ran 1.3-2x slower
// at stride 2 (64 channels 3x3 stride 2 over 112x112, batch 8: 3.4 ms -> 2.0). Nothing is created
// per shape.
#pragma once

#include <memory>

#include "kiln/ops/common/dnnl.h"
#include "kiln/ops/nn/conv_act.h"
#include "kiln/ops/nn/conv_reference.h"

namespace kiln::nn {

class DepthwiseConv {
 public:
  // Whether a float convolution of this geometry runs here: 2-D, one group per channel and one
  // filter per group, kernel width 3, 5 or 7, stride 1 or 2 along the width, dilation 1.
  static bool suits(const ConvGeometry& geo);
  // Packs W [C, 1, kh, kw] (shared between kernels of the same constant W).
  void init(const Tensor& w);
  explicit operator bool() const { return bool(f_); }
  // Y = act(conv(X, W) + bias) with X and Y channels-last; bias may be null; Clip's bounds in
  // lo and hi. With `sums` ([N, C]), also adds each image's per-channel sum of Y to it, taken
  // from the tiles' registers. Splits the rows over the calling thread's OpenMP team.
  void run(const ConvGeometry& geo, const float* x, const float* bias, ConvAct act, float lo, float hi, float* y,
           float* sums = nullptr) const;

 private:
  std::shared_ptr<const dnnl::memory> f_;  // [C/16 blocks][kh][kw][16], zero past C
  int64_t c_ = 0, kh_ = 0, kw_ = 0;
};

}  // namespace kiln::nn
