// The pointwise convolution of few input channels (channels-last in and out, activation in
// registers) against a direct loop in double: one to 48 input channels, output channels in
// groups of 1 to 4 vectors with a partial last vector, pixel counts that cut the last tile short,
// every activation, one to sixteen threads, and through FusedConv as the layout pass leaves it.
#include "kiln/ops/nn/conv_pointwise.h"

#include "kiln/core/parallel.h"
#include "conv_act_reference.h"
#include "op_tester.h"

namespace kiln::test {
namespace {

using Act = nn::ConvAct;

struct Case {
  int64_t n, c, k, h, w;
  nn::ConvGeometry geometry() const {
    nn::Window win;
    win.kernel = {1, 1};
    win.strides = {1, 1};
    win.dilations = {1, 1};
    win.pads_begin = {0, 0};
    win.pads_end = {0, 0};
    return nn::ConvGeometry{n, c, k, 1, {h, w}, {h, w}, win};
  }
};

// Y = act(X W^T + bias) per pixel, X [N, H, W, C], Y [N, H, W, K], W [K, C, 1, 1].
std::vector<float> direct(const Case& s, const std::vector<float>& x, const std::vector<float>& w,
                          const std::vector<float>& bias, Act act) {
  const int64_t pixels = s.n * s.h * s.w;
  std::vector<float> y(size_t(pixels * s.k));
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t o = 0; o < s.k; ++o) {
      double sum = bias.empty() ? 0.0 : bias[size_t(o)];
      for (int64_t ch = 0; ch < s.c; ++ch) sum += double(x[size_t(p * s.c + ch)]) * double(w[size_t(o * s.c + ch)]);
      y[size_t(p * s.k + o)] = float(reference_activation(sum, act));
    }
  return y;
}

void check(const Case& s, bool with_bias, Act act, int threads) {
  SCOPED_TRACE(testing::Message() << "n " << s.n << " c " << s.c << " k " << s.k << " " << s.h << "x" << s.w
                                  << " act " << int(act) << " threads " << threads);
  const nn::ConvGeometry geo = s.geometry();
  ASSERT_TRUE(nn::PointwiseConv::suits(geo));
  Tensor w(DType::Float32, {s.k, s.c, 1, 1});
  const std::vector<float> wv = uniform_values(w.size(), 7, 2.f);
  std::copy(wv.begin(), wv.end(), w.data<float>());
  const std::vector<float> x = uniform_values(s.n * s.h * s.w * s.c, 11, 2.f);
  const std::vector<float> bias = with_bias ? uniform_values(s.k, 13, 2.f) : std::vector<float>{};

  nn::PointwiseConv conv;
  conv.init(w);
  ThreadLimit limit(threads);
  const std::vector<float> y = written_within(size_t(s.n * s.h * s.w * s.k), [&](float* out) {
    conv.run(geo, x.data(), with_bias ? bias.data() : nullptr, act, kClipLo, kClipHi, out);
  });
  expect_close(direct(s, x, wv, bias, act), y, 1e-5f);
}

}  // namespace

TEST(PointwiseConv, MatchesDirectConvolution) {
  if (!kAvx512Build) GTEST_SKIP() << "this build has no AVX-512 kernel to test";
  check({1, 16, 96, 11, 13}, true, Act::Silu, 1);  // EfficientNet's expansion: two groups of 3 vectors
  check({2, 24, 144, 9, 7}, true, Act::Silu, 2);  // three groups of 3, 126 pixels
  check({1, 48, 64, 5, 5}, false, Act::Relu, 1);  // one group of 4, the widest input taken
  check({1, 1, 16, 7, 9}, true, Act::HardSwish, 2);  // one vector, 24-pixel tiles
  check({1, 5, 72, 4, 31}, true, Act::Clip, 16);  // 4 + 1 vectors, the last half empty
  check({1, 3, 40, 6, 6}, true, Act::None, 1);  // 3 vectors, the last half empty
  check({3, 40, 200, 10, 10}, true, Act::HardSwish, 2);  // 4 + 4 + 4 + 1 vectors over 3 images
  check({1, 32, 32, 1, 1}, true, Act::Relu, 2);  // one pixel
  check({1, 20, 2400, 9, 9}, true, Act::Silu, 2);  // wide outputs: work items of 24 pixels
}

TEST(PointwiseConv, TakesOnlyWhatItComputes) {
  if (!kAvx512Build) GTEST_SKIP() << "this build has no AVX-512 kernel to test";
  const nn::ConvGeometry ok = Case{1, 16, 64, 8, 8}.geometry();
  EXPECT_TRUE(nn::PointwiseConv::suits(ok));
  nn::ConvGeometry g = ok;
  g.in_channels = nn::PointwiseConv::kMaxChannels + 1;
  EXPECT_FALSE(nn::PointwiseConv::suits(g));
  g = ok;
  g.window.strides = {2, 2};
  EXPECT_FALSE(nn::PointwiseConv::suits(g));
  g = ok;
  g.window.pads_begin = {1, 0};
  EXPECT_FALSE(nn::PointwiseConv::suits(g));
  g = ok;
  g.window.kernel = {3, 3};
  EXPECT_FALSE(nn::PointwiseConv::suits(g));
  g = ok;
  g.window.dilations = {1, 2};
  EXPECT_FALSE(nn::PointwiseConv::suits(g));
  g = ok;
  g.group = 2;
  EXPECT_FALSE(nn::PointwiseConv::suits(g));
}

TEST(PointwiseConv, FusedConvOnChannelsLastStorage) {
  // FusedConv as the layout pass leaves an expansion inside a channels-last chain: X stored
  // [N, H, W, C] and Y [N, H, W, K] under the logical NCHW shapes, Y = SiLU(conv(X, W) + B).
  const Case s{2, 24, 40, 6, 5};
  const std::vector<float> x = uniform_values(s.n * s.h * s.w * s.c, 3, 2.f), w = uniform_values(s.k * s.c, 5, 2.f),
                           b = uniform_values(s.k, 9, 2.f);
  OpTester("FusedConv", 17, "kiln")
      .attr("kiln_x_nhwc", 1)
      .attr("kiln_y_nhwc", 1)
      .attr("activation", "Silu")
      .input<float>("X", {s.n, s.c, s.h, s.w}, x)
      .constant<float>("W", {s.k, s.c, 1, 1}, w)
      .constant<float>("B", {s.k}, b)
      .output<float>("Y", {s.n, s.k, s.h, s.w}, direct(s, x, w, b, Act::Silu))
      .tolerance(1e-5, 1e-5)
      .run();
}

}  // namespace kiln::test
