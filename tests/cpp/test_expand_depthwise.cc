// kiln::ExpandDepthwise (an inverted residual block's 1x1 expansion and depthwise layer as one
// node, on channels-last data) against the two layers as direct loops in double: strides 1 and
// 2, kernels 3, 5 and 7, symmetric and one-sided pads, a partial block of 16 channels, images
// long enough for several bands of rows, one to sixteen threads, each activation in either
// place, with and without the channel means of Y (a folded squeeze-excite pool).
#include <cmath>

#include "kiln/core/parallel.h"
#include "conv_act_reference.h"
#include "op_tester.h"

namespace kiln::test {
namespace {

using Act = nn::ConvAct;

struct Case {
  int64_t n, c, e, h, w, k, stride;
  std::vector<int64_t> pads;  // top, left, bottom, right
  int64_t oh() const { return (h + pads[0] + pads[2] - k) / stride + 1; }
  int64_t ow() const { return (w + pads[1] + pads[3] - k) / stride + 1; }
};

const char* act_name(Act a) {
  switch (a) {
    case Act::None: return "";
    case Act::Relu: return "Relu";
    case Act::Clip: return "Clip";
    case Act::HardSwish: return "HardSwish";
    case Act::Silu: return "Silu";
  }
  return "";
}

void check(const Case& s, Act expand_act, Act act, bool means, int threads) {
  SCOPED_TRACE(testing::Message() << "n " << s.n << " c " << s.c << " -> " << s.e << " " << s.h << "x" << s.w
                                  << " kernel " << s.k << " stride " << s.stride << " acts " << int(expand_act) << ", "
                                  << int(act) << " means " << means << " threads " << threads);
  const std::vector<float> x = uniform_values(s.n * s.h * s.w * s.c, 3, 2.f);  // [N, H, W, C]
  const std::vector<float> we = uniform_values(s.e * s.c, 5, 0.5f), be = uniform_values(s.e, 7, 0.5f);
  const std::vector<float> wd = uniform_values(s.e * s.k * s.k, 9, 0.5f), bd = uniform_values(s.e, 11, 0.5f);
  // The expansion in double, then the depthwise layer over it.
  std::vector<double> mid(size_t(s.n * s.h * s.w * s.e));
  for (int64_t p = 0; p < s.n * s.h * s.w; ++p)
    for (int64_t o = 0; o < s.e; ++o) {
      double sum = be[size_t(o)];
      for (int64_t ch = 0; ch < s.c; ++ch) sum += double(x[size_t(p * s.c + ch)]) * double(we[size_t(o * s.c + ch)]);
      mid[size_t(p * s.e + o)] = reference_activation(sum, expand_act);
    }
  const int64_t oh = s.oh(), ow = s.ow();
  std::vector<float> y(size_t(s.n * oh * ow * s.e)), mean(size_t(s.n * s.e));
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t ch = 0; ch < s.e; ++ch) {
      double total = 0;
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double sum = bd[size_t(ch)];
          for (int64_t ky = 0; ky < s.k; ++ky)
            for (int64_t kx = 0; kx < s.k; ++kx) {
              const int64_t iy = oy * s.stride + ky - s.pads[0], ix = ox * s.stride + kx - s.pads[1];
              if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
              sum += mid[size_t(((i * s.h + iy) * s.w + ix) * s.e + ch)] * double(wd[size_t((ch * s.k + ky) * s.k + kx)]);
            }
          const double v = reference_activation(sum, act);
          y[size_t(((i * oh + oy) * ow + ox) * s.e + ch)] = float(v);
          total += v;
        }
      mean[size_t(i * s.e + ch)] = float(total / double(oh * ow));
    }
  ThreadLimit limit(threads);
  OpTester t("ExpandDepthwise", 1, "kiln");
  t.attr("strides", std::vector<int64_t>{s.stride, s.stride}).attr("pads", s.pads);
  if (expand_act != Act::None) t.attr("expand_activation", act_name(expand_act));
  if (expand_act == Act::Clip) t.attr("expand_activation_params", std::vector<float>{kClipLo, kClipHi});
  if (act != Act::None) t.attr("activation", act_name(act));
  if (act == Act::Clip) t.attr("activation_params", std::vector<float>{kClipLo, kClipHi});
  t.input<float>("X", {s.n, s.c, s.h, s.w}, x)
      .constant<float>("We", {s.e, s.c, 1, 1}, we)
      .constant<float>("Be", {s.e}, be)
      .constant<float>("Wd", {s.e, 1, s.k, s.k}, wd)
      .constant<float>("Bd", {s.e}, bd)
      .output<float>("Y", {s.n, s.e, oh, ow}, y);
  if (means) t.output<float>("M", {s.n, s.e, 1, 1}, mean);
  t.tolerance(1e-5, 2e-5).run();
}

}  // namespace

TEST(ExpandDepthwise, MatchesTheTwoLayers) {
  if (!kAvx512Build) GTEST_SKIP() << "this build has no AVX-512 kernel to test";
  check({2, 16, 40, 30, 22, 3, 1, {1, 1, 1, 1}}, Act::Silu, Act::Silu, true, 2);  // 40 = 2.5 blocks
  check({1, 24, 144, 56, 56, 5, 2, {2, 2, 2, 2}}, Act::HardSwish, Act::Clip, true, 1);  // several bands
  check({1, 16, 96, 112, 40, 3, 2, {0, 1, 1, 0}}, Act::Relu, Act::None, false, 2);  // one-sided pads, bands
  check({1, 8, 16, 7, 9, 7, 1, {3, 3, 3, 3}}, Act::None, Act::HardSwish, true, 16);  // more threads than rows
  check({3, 48, 32, 9, 11, 3, 1, {1, 1, 1, 1}}, Act::Clip, Act::Relu, false, 2);  // images split among threads
}

TEST(ExpandDepthwise, RefusesWhatItCannotRun) {
  const std::vector<float> x(2 * 4 * 4, 1.f), we(8 * 2, 1.f), wd(8 * 9, 1.f);
  // two filters per channel in the second layer's W
  EXPECT_THROW(OpTester("ExpandDepthwise", 1, "kiln")
                   .input<float>("X", {1, 2, 4, 4}, x)
                   .constant<float>("We", {8, 2, 1, 1}, we)
                   .omitted_input()
                   .constant<float>("Wd", {8, 2, 3, 3}, std::vector<float>(8 * 18, 1.f))
                   .output<float>("Y", {1, 8, 2, 2}, std::vector<float>(32))
                   .run(),
               Error);
  // X with other channels than We takes
  EXPECT_THROW(OpTester("ExpandDepthwise", 1, "kiln")
                   .input<float>("X", {1, 3, 4, 4}, std::vector<float>(48, 1.f))
                   .constant<float>("We", {8, 2, 1, 1}, we)
                   .omitted_input()
                   .constant<float>("Wd", {8, 1, 3, 3}, wd)
                   .output<float>("Y", {1, 8, 2, 2}, std::vector<float>(32))
                   .run(),
               Error);
}

}  // namespace kiln::test
