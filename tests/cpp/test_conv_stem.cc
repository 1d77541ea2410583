// The stem convolution (few input channels, NCHW in, channels-last out) against a direct loop
// in double: one to four input channels, one to four blocks of 16 filters, kernels 3x3 to 7x7
// and non-square, strides 1 and 2 (and 3 down the rows), asymmetric pads, rows cut into partial
// tiles and tiles at both ends, every activation, one to sixteen threads, and through FusedConv
// as the layout pass leaves the first convolution of a channels-last chain; with a max pool
// folded in, against the convolution then the pool.
#include "kiln/ops/nn/conv_stem.h"

#include <cmath>

#include "kiln/core/parallel.h"
#include "conv_act_reference.h"
#include "op_tester.h"

namespace kiln::test {
namespace {

using Act = nn::ConvAct;

struct Case {
  int64_t n, c, k, h, w, kh, kw, sh, sw;
  int64_t top, left, bottom, right;  // pads
  int64_t oh() const { return (h + top + bottom - kh) / sh + 1; }
  int64_t ow() const { return (w + left + right - kw) / sw + 1; }
  nn::ConvGeometry geometry() const {
    nn::Window win;
    win.kernel = {kh, kw};
    win.strides = {sh, sw};
    win.dilations = {1, 1};
    win.pads_begin = {top, left};
    win.pads_end = {bottom, right};
    return nn::ConvGeometry{n, c, k, 1, {h, w}, {oh(), ow()}, win};
  }
};

// Y = act(conv(X, W) + bias), X [N, C, H, W], Y [N, OH, OW, K], W [K, C, kh, kw].
std::vector<float> direct(const Case& s, const std::vector<float>& x, const std::vector<float>& w,
                          const std::vector<float>& bias, Act act) {
  std::vector<float> y(size_t(s.n * s.oh() * s.ow() * s.k));
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t oy = 0; oy < s.oh(); ++oy)
      for (int64_t ox = 0; ox < s.ow(); ++ox)
        for (int64_t o = 0; o < s.k; ++o) {
          double sum = bias.empty() ? 0.0 : bias[size_t(o)];
          for (int64_t ch = 0; ch < s.c; ++ch)
            for (int64_t ky = 0; ky < s.kh; ++ky)
              for (int64_t kx = 0; kx < s.kw; ++kx) {
                const int64_t iy = oy * s.sh + ky - s.top, ix = ox * s.sw + kx - s.left;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                sum += double(x[size_t(((i * s.c + ch) * s.h + iy) * s.w + ix)]) *
                       double(w[size_t(((o * s.c + ch) * s.kh + ky) * s.kw + kx)]);
              }
          y[size_t(((i * s.oh() + oy) * s.ow() + ox) * s.k + o)] = float(reference_activation(sum, act));
        }
  return y;
}

void check(const Case& s, bool with_bias, Act act, int threads) {
  SCOPED_TRACE(testing::Message() << "n " << s.n << " c " << s.c << " k " << s.k << " " << s.h << "x" << s.w
                                  << " kernel " << s.kh << "x" << s.kw << " stride " << s.sh << "x" << s.sw
                                  << " act " << int(act) << " threads " << threads);
  const nn::ConvGeometry geo = s.geometry();
  ASSERT_TRUE(nn::StemConv::suits(geo));
  Tensor w(DType::Float32, {s.k, s.c, s.kh, s.kw});
  const std::vector<float> wv = uniform_values(w.size(), 7, 2.f);
  std::copy(wv.begin(), wv.end(), w.data<float>());
  const std::vector<float> x = uniform_values(s.n * s.c * s.h * s.w, 11, 2.f);
  const std::vector<float> bias = with_bias ? uniform_values(s.k, 13, 2.f) : std::vector<float>{};

  nn::StemConv conv;
  conv.init(w);
  const size_t size = size_t(s.n * s.oh() * s.ow() * s.k);
  ThreadLimit limit(threads);
  const std::vector<float> y = written_within(size, [&](float* out) {
    conv.run(geo, x.data(), with_bias ? bias.data() : nullptr, act, kClipLo, kClipHi, out);
  });
  expect_close(direct(s, x, wv, bias, act), y, 1e-5f);
}

// Max pool of channels-last Y [N, OH, OW, K] over `pool`, windows clipped to the image.
std::vector<float> max_pool(const Case& s, const std::vector<float>& y, const nn::Window& pool, int64_t ph, int64_t pw) {
  std::vector<float> out(size_t(s.n * ph * pw * s.k));
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t py = 0; py < ph; ++py)
      for (int64_t px = 0; px < pw; ++px)
        for (int64_t o = 0; o < s.k; ++o) {
          float m = -INFINITY;
          for (int64_t ky = 0; ky < pool.kernel[0]; ++ky)
            for (int64_t kx = 0; kx < pool.kernel[1]; ++kx) {
              const int64_t yy = py * pool.strides[0] + ky - pool.pads_begin[0];
              const int64_t xx = px * pool.strides[1] + kx - pool.pads_begin[1];
              if (yy < 0 || yy >= s.oh() || xx < 0 || xx >= s.ow()) continue;
              m = std::max(m, y[size_t(((i * s.oh() + yy) * s.ow() + xx) * s.k + o)]);
            }
          out[size_t(((i * ph + py) * pw + px) * s.k + o)] = m;
        }
  return out;
}

void check_pooled(const Case& s, Act act, std::vector<int64_t> kernel, std::vector<int64_t> strides,
                  std::vector<int64_t> pads, bool ceil, int threads) {
  SCOPED_TRACE(testing::Message() << "n " << s.n << " k " << s.k << " " << s.h << "x" << s.w << " pool "
                                  << kernel[0] << "x" << kernel[1] << " stride " << strides[0] << " pads "
                                  << pads[0] << pads[1] << pads[2] << pads[3] << " ceil " << ceil << " threads "
                                  << threads);
  nn::Window pool;
  pool.kernel = kernel;
  pool.strides = strides;
  pool.dilations = {1, 1};
  pool.pads_begin = {pads[0], pads[1]};
  pool.pads_end = {pads[2], pads[3]};
  const Shape pooled = nn::window_output({s.oh(), s.ow()}, pool, ceil);
  Tensor w(DType::Float32, {s.k, s.c, s.kh, s.kw});
  const std::vector<float> wv = uniform_values(w.size(), 7, 2.f);
  std::copy(wv.begin(), wv.end(), w.data<float>());
  const std::vector<float> x = uniform_values(s.n * s.c * s.h * s.w, 11, 2.f), bias = uniform_values(s.k, 13, 2.f);
  nn::StemConv conv;
  conv.init(w);
  const size_t size = size_t(s.n * pooled[0] * pooled[1] * s.k);
  ThreadLimit limit(threads);
  const std::vector<float> y = written_within(size, [&](float* out) {
    conv.run_pooled(s.geometry(), x.data(), bias.data(), act, kClipLo, kClipHi, pool, pooled, out);
  });
  expect_close(max_pool(s, direct(s, x, wv, bias, act), pool, pooled[0], pooled[1]), y, 1e-5f);
}

}  // namespace

TEST(StemConv, PooledMatchesConvolutionThenMaxPool) {
  if (!kAvx512Build) GTEST_SKIP() << "this build has no AVX-512 kernel to test";
  // SqueezeNet's stem and pool (ceil mode, a last window cut short), ResNet's (padded).
  check_pooled({1, 3, 64, 45, 45, 3, 3, 2, 2, 0, 0, 0, 0}, Act::Relu, {3, 3}, {2, 2}, {0, 0, 0, 0}, true, 1);
  check_pooled({2, 3, 64, 30, 26, 7, 7, 2, 2, 3, 3, 3, 3}, Act::Relu, {3, 3}, {2, 2}, {1, 1, 1, 1}, false, 2);
  // Windows that do not overlap, asymmetric pads, rows shared by three windows, many threads.
  check_pooled({1, 3, 32, 21, 33, 3, 3, 2, 2, 1, 1, 1, 1}, Act::HardSwish, {2, 2}, {2, 2}, {0, 0, 0, 0}, false, 2);
  check_pooled({2, 1, 16, 19, 23, 5, 3, 1, 2, 2, 1, 2, 1}, Act::None, {4, 3}, {1, 2}, {1, 0, 2, 1}, true, 16);
  check_pooled({1, 4, 48, 12, 40, 3, 3, 1, 1, 1, 1, 1, 1}, Act::Silu, {3, 5}, {3, 1}, {1, 2, 1, 2}, false, 1);
}

TEST(StemConv, MatchesDirectConvolution) {
  if (!kAvx512Build) GTEST_SKIP() << "this build has no AVX-512 kernel to test";
  check({1, 3, 64, 32, 30, 3, 3, 2, 2, 0, 0, 0, 0}, true, Act::Relu, 1);  // SqueezeNet's: 4 blocks, no pads
  check({2, 3, 16, 21, 50, 3, 3, 2, 2, 1, 1, 1, 1}, true, Act::HardSwish, 2);  // one block, tiles of 24 cut short
  check({1, 3, 32, 17, 40, 3, 3, 2, 2, 1, 1, 1, 1}, true, Act::Silu, 1);  // two blocks
  check({1, 3, 64, 23, 45, 7, 7, 2, 2, 3, 3, 3, 3}, true, Act::None, 2);  // ResNet's 7x7
  check({1, 1, 48, 13, 29, 5, 5, 1, 1, 2, 1, 0, 2}, false, Act::Clip, 1);  // three blocks, stride 1, odd pads
  check({2, 4, 32, 15, 19, 3, 5, 3, 2, 1, 2, 1, 2}, true, Act::Relu, 16);  // 3x5, stride 3 down the rows
  check({1, 2, 16, 9, 7, 7, 3, 1, 1, 3, 1, 3, 1}, true, Act::Silu, 1);  // 7x3 over a row narrower than a tile
  check({1, 3, 64, 6, 6, 3, 3, 2, 2, 4, 4, 4, 4}, true, Act::Relu, 2);  // pads past the kernel: bias alone
  check({1, 3, 16, 8, 100, 11, 11, 2, 2, 5, 5, 5, 5}, false, Act::None, 1);  // the widest kernel it takes
}

TEST(StemConv, TakesOnlyWhatItComputes) {
  if (!kAvx512Build) GTEST_SKIP() << "this build has no AVX-512 kernel to test";
  const nn::ConvGeometry ok = Case{1, 3, 32, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1}.geometry();
  EXPECT_TRUE(nn::StemConv::suits(ok));
  nn::ConvGeometry g = ok;
  g.window.strides = {2, 3};
  EXPECT_FALSE(nn::StemConv::suits(g));
  g = ok;
  g.window.dilations = {2, 2};
  EXPECT_FALSE(nn::StemConv::suits(g));
  g = ok;
  g.window.kernel = {12, 3};
  EXPECT_FALSE(nn::StemConv::suits(g));
  g = ok;
  g.in_channels = 5;
  EXPECT_FALSE(nn::StemConv::suits(g));
  g = ok;
  g.out_channels = 24;  // not whole blocks of 16
  EXPECT_FALSE(nn::StemConv::suits(g));
  g = ok;
  g.out_channels = 80;  // more sums than the registers hold
  EXPECT_FALSE(nn::StemConv::suits(g));
  g = ok;
  g.group = 3;
  EXPECT_FALSE(nn::StemConv::suits(g));
}

TEST(StemConv, FusedConvFromPlainInputToChannelsLast) {
  // FusedConv as the layout pass marks a chain's first convolution: X as fed, [N, C, H, W];
  // Y stored [N, H, W, K] under the logical [N, K, H, W] shape, Y = HardSwish(conv(X, W) + B).
  const Case s{2, 3, 16, 20, 26, 3, 3, 2, 2, 1, 1, 1, 1};
  const std::vector<float> x = uniform_values(s.n * s.c * s.h * s.w, 3, 2.f),
                           w = uniform_values(s.k * s.c * 9, 5, 2.f), b = uniform_values(s.k, 9, 2.f);
  OpTester("FusedConv", 17, "kiln")
      .attr("kiln_x_nhwc", 0)
      .attr("kiln_y_nhwc", 1)
      .attr("activation", "HardSwish")
      .attr("strides", std::vector<int64_t>{2, 2})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .input<float>("X", {s.n, s.c, s.h, s.w}, x)
      .constant<float>("W", {s.k, s.c, 3, 3}, w)
      .constant<float>("B", {s.k}, b)
      .output<float>("Y", {s.n, s.k, s.oh(), s.ow()}, direct(s, x, w, b, Act::HardSwish))
      .tolerance(1e-5, 1e-5)
      .run();
}

}  // namespace kiln::test

namespace kiln::test {

TEST(StemConv, FusedConvWithFoldedMaxPool) {
  if (!kAvx512Build) GTEST_SKIP() << "this build has no AVX-512 kernel to test";
  // As fuse_stem_pools leaves a stem and its pool: Y = MaxPool(Relu(conv(X, W) + B)) stored
  // channels-last under the logical pooled shape.
  const Case s{1, 3, 16, 21, 18, 3, 3, 2, 2, 1, 1, 1, 1};
  const std::vector<float> x = uniform_values(s.n * s.c * s.h * s.w, 3, 2.f),
                           w = uniform_values(s.k * s.c * 9, 5, 2.f), b = uniform_values(s.k, 9, 2.f);
  nn::Window pool;
  pool.kernel = {3, 3};
  pool.strides = {2, 2};
  pool.dilations = {1, 1};
  pool.pads_begin = {0, 0};
  pool.pads_end = {0, 0};
  const Shape pooled = nn::window_output({s.oh(), s.ow()}, pool, true);
  auto tester = [&] {
    OpTester t("FusedConv", 17, "kiln");
    t.attr("kiln_x_nhwc", 0)
        .attr("kiln_y_nhwc", 1)
        .attr("activation", "Relu")
        .attr("strides", std::vector<int64_t>{2, 2})
        .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
        .attr("kiln_pool_kernel", std::vector<int64_t>{3, 3})
        .attr("kiln_pool_strides", std::vector<int64_t>{2, 2})
        .attr("kiln_pool_ceil", 1)
        .input<float>("X", {s.n, s.c, s.h, s.w}, x)
        .constant<float>("W", {s.k, s.c, 3, 3}, w)
        .constant<float>("B", {s.k}, b);
    return t;
  };
  tester()
      .attr("kiln_pool_pads", std::vector<int64_t>{0, 0, 0, 0})
      .output<float>("Y", {s.n, s.k, pooled[0], pooled[1]},
                     max_pool(s, direct(s, x, w, b, Act::Relu), pool, pooled[0], pooled[1]))
      .tolerance(1e-5, 1e-5)
      .run();
  tester()
      .attr("kiln_pool_pads", std::vector<int64_t>{0, 0, 0})
      .output<float>("Y", {s.n, s.k, pooled[0], pooled[1]}, std::vector<float>(size_t(s.k * pooled[0] * pooled[1])))
      .expect_failure("kiln_pool_pads 4");
  // 24 filters are not whole blocks of 16: no stem kernel, so no folded pool.
  OpTester("FusedConv", 17, "kiln")
      .attr("kiln_y_nhwc", 1)
      .attr("kiln_pool_kernel", std::vector<int64_t>{2, 2})
      .attr("kiln_pool_strides", std::vector<int64_t>{2, 2})
      .attr("kiln_pool_pads", std::vector<int64_t>{0, 0, 0, 0})
      .input<float>("X", {1, 3, 8, 8}, uniform_values(192, 3))
      .constant<float>("W", {24, 3, 3, 3}, uniform_values(24 * 27, 5))
      .output<float>("Y", {1, 24, 3, 3}, std::vector<float>(24 * 9))
      .expect_failure("a folded pool runs on the stem kernel only");
}

}  // namespace kiln::test
