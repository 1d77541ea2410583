// Depthwise convolution on channels-last data against a direct loop in double: kernel widths
// 3, 5 and 7, strides 1 and 2, asymmetric pads, rows cut into partial tiles, channel counts
// that leave a partial block of 16 or a partial group of blocks, every activation, one to
// sixteen threads, each also with the channel sums of its output, and through FusedConv on
// channels-last storage as the layout pass leaves it.
#include "kiln/ops/nn/conv_depthwise.h"

#include <cmath>

#include "kiln/core/parallel.h"
#include "conv_act_reference.h"
#include "op_tester.h"

namespace kiln::test {
namespace {

using Act = nn::ConvAct;

struct Case {
  int64_t n, c, h, w, kh, kw, stride;
  int64_t top, left, bottom, right;  // pads
  int64_t oh() const { return (h + top + bottom - kh) / stride + 1; }
  int64_t ow() const { return (w + left + right - kw) / stride + 1; }
  nn::ConvGeometry geometry() const {
    nn::Window win;
    win.kernel = {kh, kw};
    win.strides = {stride, stride};
    win.dilations = {1, 1};
    win.pads_begin = {top, left};
    win.pads_end = {bottom, right};
    return nn::ConvGeometry{n, c, c, c, {h, w}, {oh(), ow()}, win};
  }
};

// Y = act(conv(X, W) + bias), X and Y channels-last, W [C, 1, kh, kw].
std::vector<float> direct(const Case& s, const std::vector<float>& x, const std::vector<float>& w,
                          const std::vector<float>& bias, Act act) {
  std::vector<float> y(size_t(s.n * s.oh() * s.ow() * s.c));
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t oy = 0; oy < s.oh(); ++oy)
      for (int64_t ox = 0; ox < s.ow(); ++ox)
        for (int64_t ch = 0; ch < s.c; ++ch) {
          double sum = bias.empty() ? 0.0 : bias[size_t(ch)];
          for (int64_t ky = 0; ky < s.kh; ++ky)
            for (int64_t kx = 0; kx < s.kw; ++kx) {
              const int64_t iy = oy * s.stride + ky - s.top, ix = ox * s.stride + kx - s.left;
              if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
              sum += double(x[size_t(((i * s.h + iy) * s.w + ix) * s.c + ch)]) *
                     double(w[size_t((ch * s.kh + ky) * s.kw + kx)]);
            }
          y[size_t(((i * s.oh() + oy) * s.ow() + ox) * s.c + ch)] = float(reference_activation(sum, act));
        }
  return y;
}

void check(const Case& s, bool with_bias, Act act, int threads) {
  SCOPED_TRACE(testing::Message() << "n " << s.n << " c " << s.c << " " << s.h << "x" << s.w << " kernel " << s.kh
                                  << "x" << s.kw << " stride " << s.stride << " act " << int(act) << " threads "
                                  << threads);
  const nn::ConvGeometry geo = s.geometry();
  ASSERT_TRUE(nn::DepthwiseConv::suits(geo));
  Tensor w(DType::Float32, {s.c, 1, s.kh, s.kw});
  const std::vector<float> wv = uniform_values(w.size(), 7, 2.f);
  std::copy(wv.begin(), wv.end(), w.data<float>());
  const std::vector<float> x = uniform_values(s.n * s.h * s.w * s.c, 11, 2.f);
  const std::vector<float> bias = with_bias ? uniform_values(s.c, 13, 2.f) : std::vector<float>{};

  nn::DepthwiseConv conv;
  conv.init(w);
  const size_t size = size_t(s.n * s.oh() * s.ow() * s.c);
  ThreadLimit limit(threads);
  const std::vector<float> want = direct(s, x, wv, bias, act);
  const std::vector<float> y = written_within(size, [&](float* out) {
    conv.run(geo, x.data(), with_bias ? bias.data() : nullptr, act, kClipLo, kClipHi, out);
  });
  expect_close(want, y, 1e-5f);
  // With the squeeze: each image's channel sums of Y, taken as the tiles store it and added to
  // what the buffer held (-1 here); as means, against Y's in double.
  std::vector<float> sums(size_t(s.n * s.c), -1.f), want_means(size_t(s.n * s.c));
  const int64_t plane = s.oh() * s.ow();
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t ch = 0; ch < s.c; ++ch) {
      double sum = 0;
      for (int64_t p = 0; p < plane; ++p) sum += want[size_t((i * plane + p) * s.c + ch)];
      want_means[size_t(i * s.c + ch)] = float(sum / double(plane));
    }
  const std::vector<float> y2 = written_within(size, [&](float* out) {
    conv.run(geo, x.data(), with_bias ? bias.data() : nullptr, act, kClipLo, kClipHi, out, sums.data());
  });
  expect_close(want, y2, 1e-5f);
  std::vector<float> means(sums.size());
  for (size_t i = 0; i < sums.size(); ++i) means[i] = float((double(sums[i]) + 1.0) / double(plane));
  expect_close(want_means, means, 1e-5f);
}

}  // namespace

TEST(DepthwiseConv, MatchesDirectConvolution) {
  check({1, 32, 112, 112, 3, 3, 1, 1, 1, 1, 1}, true, Act::Silu, 1);  // tiles of 8 over 2 blocks
  check({2, 24, 7, 30, 3, 3, 1, 1, 1, 1, 1}, true, Act::HardSwish, 2);  // 2 blocks, the second masked
  check({1, 96, 56, 56, 3, 3, 2, 1, 1, 1, 1}, true, Act::Relu, 2);  // stride 2: groups of 4 blocks and of 2
  check({1, 80, 8, 14, 3, 3, 2, 1, 1, 1, 1}, false, Act::None, 1);  // a group of 4 and one block alone
  check({1, 56, 11, 17, 3, 3, 2, 1, 0, 1, 1}, true, Act::Silu, 1);  // 56 = 3.5 blocks: the group's last masked
  check({2, 88, 9, 9, 7, 7, 2, 3, 3, 3, 3}, true, Act::Clip, 2);  // 7x7 stride 2: groups of 2, the last masked
  check({2, 144, 14, 14, 5, 5, 1, 2, 2, 2, 2}, false, Act::None, 2);  // 5x5 over a row of one tile
  check({1, 72, 15, 13, 5, 5, 2, 2, 1, 0, 2}, true, Act::HardSwish, 1);  // odd, asymmetric pads, 72 = 4.5 blocks
  check({1, 20, 9, 31, 7, 7, 1, 3, 3, 3, 3}, true, Act::Clip, 16);  // 7x7, 31 = 16 + 15: a partial tile
  check({1, 8, 6, 3, 3, 3, 1, 1, 1, 1, 1}, true, Act::Silu, 1);  // fewer channels and pixels than a tile
  check({1, 40, 10, 10, 1, 3, 1, 0, 1, 0, 1}, true, Act::None, 1);  // a 1x3 kernel
  check({1, 16, 5, 5, 3, 3, 1, 3, 3, 3, 3}, true, Act::Relu, 1);  // pads past the kernel: rows of bias alone
}

TEST(DepthwiseConv, TakesOnlyWhatItComputes) {
  const nn::ConvGeometry ok = Case{1, 32, 28, 28, 3, 3, 1, 1, 1, 1, 1}.geometry();
  EXPECT_TRUE(nn::DepthwiseConv::suits(ok));
  nn::ConvGeometry g = ok;
  g.window.strides = {3, 3};
  EXPECT_FALSE(nn::DepthwiseConv::suits(g));
  g = ok;
  g.window.dilations = {2, 2};
  EXPECT_FALSE(nn::DepthwiseConv::suits(g));
  g = ok;
  g.window.kernel = {4, 4};
  EXPECT_FALSE(nn::DepthwiseConv::suits(g));
  g = ok;
  g.group = 16;  // two channels per group
  EXPECT_FALSE(nn::DepthwiseConv::suits(g));
  g = ok;
  g.out_channels = 64;  // two filters per channel
  EXPECT_FALSE(nn::DepthwiseConv::suits(g));
}

TEST(DepthwiseConv, FusedConvOnChannelsLastStorage) {
  // FusedConv as the layout pass marks it: X and Y stored [N, H, W, C] under the logical
  // [N, C, H, W] shapes, Y = Silu(conv(X, W) + B).
  const Case s{1, 48, 20, 20, 5, 5, 2, 2, 2, 2, 2};
  const std::vector<float> x = uniform_values(s.n * s.h * s.w * s.c, 3, 2.f), w = uniform_values(s.c * 25, 5, 2.f),
                           b = uniform_values(s.c, 9, 2.f);
  OpTester("FusedConv", 17, "kiln")
      .attr("kiln_x_nhwc", 1)
      .attr("kiln_y_nhwc", 1)
      .attr("activation", "Silu")
      .attr("group", s.c)
      .attr("strides", std::vector<int64_t>{2, 2})
      .attr("pads", std::vector<int64_t>{2, 2, 2, 2})
      .input<float>("X", {s.n, s.c, s.h, s.w}, x)
      .constant<float>("W", {s.c, 1, 5, 5}, w)
      .constant<float>("B", {s.c}, b)
      .output<float>("Y", {s.n, s.c, s.oh(), s.ow()}, direct(s, x, w, b, Act::Silu))
      .tolerance(1e-5, 1e-5)
      .run();
}

}  // namespace kiln::test
