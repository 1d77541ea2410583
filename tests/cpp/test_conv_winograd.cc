// Winograd F(2x2, 3x3) convolution against a direct loop in double: odd sizes (tiles cut by
// the image edge), asymmetric pads, filter counts that leave a partial 64-wide panel, bias,
// residual and Relu, one to sixteen threads (sixteen splits the filters), and through FusedConv
// on channels-last storage as the layout pass leaves it.
#include "kiln/ops/nn/conv_winograd.h"

#include "kiln/core/parallel.h"
#include "op_tester.h"

namespace kiln::test {
namespace {

struct Case {
  int64_t n, c, k, h, w;
  int64_t top, left, bottom, right;  // pads
  int64_t oh() const { return h + top + bottom - 2; }
  int64_t ow() const { return w + left + right - 2; }
  nn::ConvGeometry geometry() const {
    nn::Window win;
    win.kernel = {3, 3};
    win.strides = {1, 1};
    win.dilations = {1, 1};
    win.pads_begin = {top, left};
    win.pads_end = {bottom, right};
    return nn::ConvGeometry{n, c, k, 1, {h, w}, {oh(), ow()}, win};
  }
};

// Y = max(conv(X, W) + bias + Z, 0 if relu), X, Z and Y channels-last, W [K, C, 3, 3].
std::vector<float> direct(const Case& s, const std::vector<float>& x, const std::vector<float>& w,
                          const std::vector<float>& bias, const std::vector<float>& z, bool relu) {
  std::vector<float> y(size_t(s.n * s.oh() * s.ow() * s.k));
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t oy = 0; oy < s.oh(); ++oy)
      for (int64_t ox = 0; ox < s.ow(); ++ox)
        for (int64_t f = 0; f < s.k; ++f) {
          double sum = bias.empty() ? 0.0 : bias[size_t(f)];
          for (int64_t ky = 0; ky < 3; ++ky)
            for (int64_t kx = 0; kx < 3; ++kx) {
              const int64_t iy = oy + ky - s.top, ix = ox + kx - s.left;
              if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
              for (int64_t ch = 0; ch < s.c; ++ch)
                sum += double(x[size_t(((i * s.h + iy) * s.w + ix) * s.c + ch)]) *
                       double(w[size_t(((f * s.c + ch) * 3 + ky) * 3 + kx)]);
            }
          const size_t at = size_t(((i * s.oh() + oy) * s.ow() + ox) * s.k + f);
          if (!z.empty()) sum += z[at];
          y[at] = float(relu ? std::max(sum, 0.0) : sum);
        }
  return y;
}

void check(const Case& s, bool with_bias, bool with_z, bool relu, int threads) {
  SCOPED_TRACE(testing::Message() << "n " << s.n << " c " << s.c << " k " << s.k << " " << s.h << "x" << s.w
                                  << " threads " << threads);
  const nn::ConvGeometry geo = s.geometry();
  ASSERT_TRUE(nn::WinogradConv::suits(geo));
  Tensor w(DType::Float32, {s.k, s.c, 3, 3});
  const std::vector<float> wv = uniform_values(w.size(), 7);
  std::copy(wv.begin(), wv.end(), w.data<float>());
  const std::vector<float> x = uniform_values(s.n * s.h * s.w * s.c, 11);
  const std::vector<float> bias = with_bias ? uniform_values(s.k, 13) : std::vector<float>{};
  const std::vector<float> z = with_z ? uniform_values(s.n * s.oh() * s.ow() * s.k, 17) : std::vector<float>{};

  nn::WinogradConv conv;
  conv.init(w);
  std::vector<float> y(size_t(s.n * s.oh() * s.ow() * s.k), -99.f);
  ThreadLimit limit(threads);
  conv.run(geo, x.data(), with_bias ? bias.data() : nullptr, with_z ? z.data() : nullptr, relu, y.data());
  expect_close(direct(s, x, wv, bias, z, relu), y, 1e-4f);
}

}  // namespace

TEST(WinogradConv, MatchesDirectConvolution) {
  if (!kVectorBuild) GTEST_SKIP() << "this build has neither AVX-512 nor AVX2";
  check({1, 32, 64, 28, 28, 1, 1, 1, 1}, true, false, true, 1);
  check({1, 32, 48, 27, 27, 1, 1, 1, 1}, false, false, false, 1);  // odd: the last tiles are cut
  check({2, 48, 80, 20, 21, 2, 0, 0, 1}, true, true, false, 2);  // asymmetric pads, a panel of 16
  check({1, 64, 128, 28, 28, 1, 1, 1, 1}, true, true, true, 2);
  check({1, 32, 144, 30, 30, 0, 0, 0, 0}, false, true, true, 16);  // threads split the filter panels
  check({1, 256, 256, 14, 14, 1, 1, 1, 1}, true, true, true, 1);  // 49 tiles in one block past a quarter of L2
  check({1, 256, 256, 14, 14, 1, 1, 1, 1}, true, false, true, 2);  // a block per thread
}

TEST(WinogradConv, TakesOnlyWhatItComputes) {
  if (!kVectorBuild) GTEST_SKIP() << "this build has neither AVX-512 nor AVX2";
  const nn::ConvGeometry ok = Case{1, 32, 64, 28, 28, 1, 1, 1, 1}.geometry();
  EXPECT_TRUE(nn::WinogradConv::suits(ok));
  nn::ConvGeometry g = ok;
  g.window.strides = {2, 2};
  EXPECT_FALSE(nn::WinogradConv::suits(g));
  g = ok;
  g.window.dilations = {2, 2};
  EXPECT_FALSE(nn::WinogradConv::suits(g));
  g = ok;
  g.window.kernel = {5, 5};
  EXPECT_FALSE(nn::WinogradConv::suits(g));
  g = ok;
  g.group = 2;
  EXPECT_FALSE(nn::WinogradConv::suits(g));
  g = ok;
  g.out_channels = 40;  // not whole vectors of 16
  EXPECT_FALSE(nn::WinogradConv::suits(g));
  g = Case{1, 256, 256, 14, 14, 1, 1, 1, 1}.geometry();  // 49 tiles, in L2 whole
  EXPECT_TRUE(nn::WinogradConv::suits(g));
  g = Case{1, 512, 512, 7, 7, 1, 1, 1, 1}.geometry();  // 16 tiles: only AVX2's direct kernel is slower
  EXPECT_EQ(nn::WinogradConv::suits(g), !kAvx512Build);
  g = Case{1, 16, 64, 55, 55, 1, 1, 1, 1}.geometry();  // 16 channels: likewise
  EXPECT_EQ(nn::WinogradConv::suits(g), !kAvx512Build);
  g = Case{8, 512, 512, 7, 7, 1, 1, 1, 1}.geometry();  // 128 tiles, but blocks of 8 rows
  EXPECT_FALSE(nn::WinogradConv::suits(g));
  g = Case{8, 256, 256, 14, 14, 1, 1, 1, 1}.geometry();  // 392 tiles in blocks of 16 rows
  EXPECT_TRUE(nn::WinogradConv::suits(g));
}

TEST(WinogradConv, FusedConvOnChannelsLastStorage) {
  // FusedConv as the layout pass marks it: X, Z and Y stored [N, H, W, C] under the logical
  // [N, C, H, W] shapes, Y = Relu(conv(X, W) + B + Z).
  const Case s{1, 32, 64, 28, 28, 1, 1, 1, 1};
  ASSERT_EQ(nn::WinogradConv::suits(s.geometry()), kVectorBuild);  // else on oneDNN
  const std::vector<float> x = uniform_values(s.n * s.h * s.w * s.c, 3), w = uniform_values(s.k * s.c * 9, 5),
                           b = uniform_values(s.k, 9), z = uniform_values(s.n * s.oh() * s.ow() * s.k, 21);
  OpTester("FusedConv", 17, "kiln")
      .attr("kiln_x_nhwc", 1)
      .attr("kiln_y_nhwc", 1)
      .attr("activation", "Relu")
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .input<float>("X", {s.n, s.c, s.h, s.w}, x)
      .constant<float>("W", {s.k, s.c, 3, 3}, w)
      .constant<float>("B", {s.k}, b)
      .input<float>("Z", {s.n, s.k, s.oh(), s.ow()}, z)
      .output<float>("Y", {s.n, s.k, s.oh(), s.ow()}, direct(s, x, w, b, z, true))
      .tolerance(1e-4, 1e-4)
      .run();
}

}  // namespace kiln::test
