// A convolution whose windows tile the image (a patch embedding: kernel = stride, no padding)
// with a weight of a megabyte and more runs as one product over the gathered patches. Against
// a direct loop in double: NCHW output (the product transposed into place) with bias and Relu,
// an image the patches do not cover to its edges, batch 2 on two threads; and channels-last
// output with a residual, as the layout pass leaves a patch embedding that feeds convolutions.
#include <cmath>

#include "kiln/core/parallel.h"
#include "op_tester.h"

namespace kiln::test {
namespace {

struct Case {
  int64_t n, c, k, h, w, p;  // p x p patches
  int64_t oh() const { return h / p; }
  int64_t ow() const { return w / p; }
};

// Y [N, K, OH, OW] (or [N, OH, OW, K] when nhwc) = conv(X, W) + bias (+ Z), then Relu if asked.
std::vector<float> direct(const Case& s, const std::vector<float>& x, const std::vector<float>& w,
                          const std::vector<float>& bias, const std::vector<float>& z, bool relu, bool nhwc) {
  std::vector<float> y(size_t(s.n * s.k * s.oh() * s.ow()));
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t o = 0; o < s.k; ++o)
      for (int64_t oy = 0; oy < s.oh(); ++oy)
        for (int64_t ox = 0; ox < s.ow(); ++ox) {
          double sum = bias[size_t(o)];
          for (int64_t ch = 0; ch < s.c; ++ch)
            for (int64_t ky = 0; ky < s.p; ++ky)
              for (int64_t kx = 0; kx < s.p; ++kx)
                sum += double(x[size_t(((i * s.c + ch) * s.h + oy * s.p + ky) * s.w + ox * s.p + kx)]) *
                       double(w[size_t(((o * s.c + ch) * s.p + ky) * s.p + kx)]);
          const size_t at = nhwc ? size_t(((i * s.oh() + oy) * s.ow() + ox) * s.k + o)
                                 : size_t(((i * s.k + o) * s.oh() + oy) * s.ow() + ox);
          if (!z.empty()) sum += z[at];
          y[at] = float(relu ? std::max(sum, 0.0) : sum);
        }
  return y;
}

}  // namespace

TEST(ConvPatches, PatchEmbeddingIntoPlainOutput) {
  // 4 channels of 8x8 patches into 1040 filters: a 1.1 MB weight. 20x27 leaves a 4-row and a
  // 3-column margin no patch covers.
  for (const auto& [s, threads] :
       {std::pair{Case{1, 4, 1040, 16, 24, 8}, 1}, std::pair{Case{2, 4, 1040, 20, 27, 8}, 2}}) {
    SCOPED_TRACE(testing::Message() << "batch " << s.n << " threads " << threads);
    const std::vector<float> x = uniform_values(s.n * s.c * s.h * s.w, 3, 2.f),
                             w = uniform_values(s.k * s.c * s.p * s.p, 5, 0.2f), b = uniform_values(s.k, 9, 1.f);
    ThreadLimit limit(threads);
    OpTester("FusedConv", 17, "kiln")
        .attr("activation", "Relu")
        .attr("strides", std::vector<int64_t>{s.p, s.p})
        .input<float>("X", {s.n, s.c, s.h, s.w}, x)
        .constant<float>("W", {s.k, s.c, s.p, s.p}, w)
        .constant<float>("B", {s.k}, b)
        .output<float>("Y", {s.n, s.k, s.oh(), s.ow()}, direct(s, x, w, b, {}, true, false))
        .tolerance(1e-5, 1e-5)
        .run();
  }
}

TEST(ConvPatches, PatchEmbeddingIntoChannelsLastWithResidual) {
  const Case s{2, 3, 1024, 32, 32, 10};  // 3 x 10 x 10 = 300 values a patch, 1024 filters
  const std::vector<float> x = uniform_values(s.n * s.c * s.h * s.w, 3, 2.f),
                           w = uniform_values(s.k * s.c * s.p * s.p, 5, 0.2f), b = uniform_values(s.k, 9, 1.f),
                           z = uniform_values(s.n * s.k * s.oh() * s.ow(), 13, 1.f);
  OpTester("FusedConv", 17, "kiln")
      .attr("kiln_x_nhwc", 0)
      .attr("kiln_y_nhwc", 1)
      .attr("strides", std::vector<int64_t>{s.p, s.p})
      .input<float>("X", {s.n, s.c, s.h, s.w}, x)
      .constant<float>("W", {s.k, s.c, s.p, s.p}, w)
      .constant<float>("B", {s.k}, b)
      .input<float>("Z", {s.n, s.k, s.oh(), s.ow()}, z)
      .output<float>("Y", {s.n, s.k, s.oh(), s.ow()}, direct(s, x, w, b, z, false, true))
      .tolerance(1e-5, 1e-5)
      .run();
}

}  // namespace kiln::test
