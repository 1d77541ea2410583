// 3x3 stride-1 convolutions by Winograd's F(2x2, 3x3) on channels-last data.
//
// Each 4x4 input tile and each 3x3 filter go to a 4x4 transformed domain where the convolution
// becomes 16 independent products [tiles x C] x [C x K]: 16 multiplies per 2x2 outputs instead
// of 36. The products run on packed_gemm's kernel over filters transformed once at load; the
// tile transforms take a vector of channels at a time (16 with AVX-512, 8 with AVX2). Work goes
// in blocks of tiles small enough that a block's transformed input and products stay in L2.
//
// F(2x2, 3x3) rather than F(4x4, 3x3) (4x fewer multiplies): the larger tiles' transforms
// multiply rounding error by their 2..8 coefficients, and with the best interpolation points
// ResNet-50 came out 2.5x as far from the float64 answer as PyTorch's direct convolution
// (2.2x even with only the first stage on it). F(2x2, 3x3) adds and subtracts only, and rounds
// no worse than the direct method. The transformed filters are 16/9 the size of the plain ones.
#pragma once

#include <memory>

#include "kiln/ops/common/dnnl.h"
#include "kiln/ops/nn/conv_reference.h"

namespace kiln::nn {

class WinogradConv {
 public:
  // Whether a float convolution of this geometry, with channels-last X and Y, runs here:
  // 2-D, 3x3, stride and dilation 1, one group, channels in multiples of 16, and enough
  // channels and tiles for the fewer multiplies to pay for the transforms.
  static bool suits(const ConvGeometry& geo);
  // Transforms W [K, C, 3, 3] (shared between kernels of the same constant W).
  void init(const Tensor& w);
  explicit operator bool() const { return bool(u_); }
  // Y = max(conv(X, W) + bias + Z, 0 if relu) with X, Y and Z channels-last; bias and Z may be
  // null. Splits the tiles over the calling thread's OpenMP team.
  void run(const ConvGeometry& geo, const float* x, const float* bias, const float* z, bool relu, float* y) const;

 private:
  // [16 points][K/P panels][C][P]: P filters per row (packed_gemm's panels: 64 with AVX-512,
  // 16 with AVX2), zero past K
  std::shared_ptr<const dnnl::memory> u_;
  int64_t c_ = 0, k_ = 0;
};

}  // namespace kiln::nn
