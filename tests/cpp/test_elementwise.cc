// Elementwise ops: the vectorized float math against libm in double precision over the whole
// float range, and hand-derived cases for the integer, string and opset-specific semantics.
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "kiln/ops/math/fast_math.h"
#include "op_tester.h"

namespace kiln::test {
namespace {

using ArrayFn = void (*)(const float*, float*, int64_t);

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

double tol_1e6(double) { return 1e-6; }

// Runs `fn` over every 1021st float bit pattern (both signs, subnormals to inf and NaN) plus
// special values, and checks each result against `ref` evaluated in double: relative error
// below rtol(x), or absolute error below 1e-37 where the true value is (nearly) subnormal.
void check_accuracy(const char* name, ArrayFn fn, double (*ref)(double), double (*rtol)(double) = tol_1e6) {
  std::vector<float> x;
  for (uint64_t u = 0; u <= 0xffffffffu; u += 1021) x.push_back(from_bits(uint32_t(u)));
  for (float v : {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 0.625f, 0.7f, -0.7f, 1e-30f, 88.7f, -87.3f, -103.9f, 10.0f, -10.0f,
                  std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()})
    x.push_back(v);
  std::vector<float> y(x.size());
  fn(x.data(), y.data(), int64_t(x.size()));
  int bad = 0;
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = ref(double(x[i]));
    const double got = y[i];
    if (std::isnan(want) || std::isnan(got)) {
      if (std::isnan(want) != std::isnan(got) && ++bad <= 5)
        ADD_FAILURE() << name << "(" << x[i] << "): expected " << want << ", got " << got;
      continue;
    }
    // The float nearest the true value is the best possible answer.
    const double want_f = double(float(want));
    if (got == want_f) continue;
    if (std::isinf(want_f) || std::isinf(got)) {
      if (++bad <= 5) ADD_FAILURE() << name << "(" << x[i] << "): expected " << want << ", got " << got;
      continue;
    }
    const double err = std::fabs(got - want);
    if (err <= 1e-37) continue;
    worst = std::max(worst, err / std::fabs(want));
    if (err > rtol(double(x[i])) * std::fabs(want) && ++bad <= 5)
      ADD_FAILURE() << name << "(" << x[i] << " = 0x" << std::hex << std::bit_cast<uint32_t>(x[i]) << std::dec
                    << "): expected " << want << ", got " << got << ", relative error " << err / std::fabs(want);
  }
  EXPECT_EQ(bad, 0) << name << ": " << bad << " results out of tolerance";
  char worst_str[32];
  std::snprintf(worst_str, sizeof(worst_str), "%.3g", worst);
  ::testing::Test::RecordProperty(std::string(name) + "_max_rel_err", worst_str);
}

double sigmoid_ref(double x) { return 1 / (1 + std::exp(-x)); }
double gelu_ref(double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }
double gelu_tanh_ref(double x) {
  const double z = std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x);
  return x / (1 + std::exp(-2 * z));
}

TEST(FastMath, ExpWholeRange) { check_accuracy("exp", fastmath::exp, [](double x) { return std::exp(x); }); }
TEST(FastMath, LogWholeRange) { check_accuracy("log", fastmath::log, [](double x) { return std::log(x); }); }
TEST(FastMath, TanhWholeRange) { check_accuracy("tanh", fastmath::tanh, [](double x) { return std::tanh(x); }); }
TEST(FastMath, SigmoidWholeRange) { check_accuracy("sigmoid", fastmath::sigmoid, sigmoid_ref); }
// Below x = -87 SiLU returns 0 for values under 1.5e-36 in magnitude.
TEST(FastMath, SiluWholeRange) {
  check_accuracy("silu", fastmath::silu, [](double x) { return x / (1 + std::exp(-x)); },
                 [](double x) { return x < -87 ? 1.0 : 1e-6; });
}
TEST(FastMath, ErfWholeRange) { check_accuracy("erf", fastmath::erf, [](double x) { return std::erf(x); }); }
TEST(FastMath, SqrtIsExact) {
  check_accuracy("sqrt", fastmath::sqrt, [](double x) { return std::sqrt(x); }, [](double) { return 0.0; });
}
// Gelu's negative tail is ill-conditioned: there gelu ~ e^{-g(x)} with g ~ x^2/2 (exact) or
// 2|z| = 1.6 (|x| + 0.045 |x|^3) (tanh form), so a 1-ulp rounding inside g moves the result by
// |g| ulps. The bounds grow accordingly; near zero they are 1e-6.
TEST(FastMath, GeluWholeRange) {
  check_accuracy("gelu", fastmath::gelu, gelu_ref, [](double x) { return 1e-6 + 1e-7 * x * x; });
}
TEST(FastMath, GeluTanhWholeRange) {
  check_accuracy("gelu_tanh", fastmath::gelu_tanh, gelu_tanh_ref,
                 [](double x) { return 1e-6 + 3e-7 * (std::fabs(x) + 0.045 * std::fabs(x * x * x)); });
}

TEST(FastMath, EveryTailLengthMatchesFullVectors) {
  std::vector<float> x(40), full(40);
  for (int i = 0; i < 40; ++i) x[size_t(i)] = float(i) * 0.37f - 7.0f;
  fastmath::tanh(x.data(), full.data(), 40);
  for (int n = 0; n <= 40; ++n) {
    std::vector<float> y(41, 123.0f);
    fastmath::tanh(x.data(), y.data(), n);
    for (int i = 0; i < n; ++i) EXPECT_EQ(y[size_t(i)], full[size_t(i)]) << "n=" << n << " i=" << i;
    EXPECT_EQ(y[size_t(n)], 123.0f) << "wrote past n=" << n;
  }
}

TEST(BFloat16, ArithmeticAndMathComputeThroughFloat) {
  auto bf = [](float f) { return BFloat16{float_to_bfloat16(f)}; };
  OpTester("Add").input<BFloat16>("A", {3}, {bf(1.5f), bf(-2.0f), bf(256.0f)}).input<BFloat16>("B", {1}, {bf(1.0f)})
      .output<BFloat16>("C", {3}, {bf(2.5f), bf(-1.0f), bf(257.0f)}).run();  // 257 rounds to 256 in bfloat16
  OpTester("Tanh").input<BFloat16>("X", {2}, {bf(0.0f), bf(1.0f)})
      .output<BFloat16>("Y", {2}, {bf(0.0f), bf(std::tanh(1.0f))}).run();
  OpTester("Where").input<bool>("C", {2}, {true, false}).input<BFloat16>("X", {2}, {bf(1), bf(2)})
      .input<BFloat16>("Y", {1}, {bf(-3)}).output<BFloat16>("Z", {2}, {bf(1), bf(-3)}).run();
}

TEST(BFloat16, CastRoundsToNearestEvenAndPrintsShortest) {
  // 1 + 2^-8 is halfway between bfloat16 neighbours 1 and 1 + 2^-7: ties go to even (1).
  OpTester("Cast").attr("to", int64_t(DType::BFloat16)).input<float>("X", {3}, {1.00390625f, 1.01171875f, -3.0f})
      .output<BFloat16>("Y", {3}, {BFloat16{0x3f80}, BFloat16{0x3f82}, BFloat16{0xc040}}).tolerance(0, 0).run();
  // 0x4780 is 65536; "65500.0" is the shortest text that reads back to it (as numpy prints
  // float16 65504).
  OpTester("Cast").attr("to", int64_t(DType::String))
      .input<BFloat16>("X", {3}, {BFloat16{0x3dcd}, BFloat16{0x4780}, BFloat16{0x7fc0}})
      .output<std::string>("Y", {3}, {"0.1", "65500.0", "NaN"}).run();
}

TEST(Variadic, OneInputIsCopiedAndMeanDivides) {
  OpTester("Mean").input<float>("A", {2}, {1, 3}).output<float>("Y", {2}, {1, 3}).run();
  OpTester("Mean").input<float>("A", {2}, {1, 3}).input<float>("B", {1}, {5}).input<float>("C", {2, 1}, {0, 3})
      .output<float>("Y", {2, 2}, {2, 8.0f / 3, 3, 11.0f / 3}).run();
  OpTester("Sum").input<int64_t>("A", {2}, {1, 3}).input<int64_t>("B", {2}, {10, 20}).input<int64_t>("C", {1}, {100})
      .output<int64_t>("Y", {2}, {111, 123}).run();
}

TEST(Div, IntegersTruncateTowardZero) {
  OpTester("Div").input<int32_t>("A", {6}, {7, -7, 7, -7, std::numeric_limits<int32_t>::min(), 0})
      .input<int32_t>("B", {6}, {2, 2, -2, -2, -1, 5})
      .output<int32_t>("C", {6}, {3, -3, -3, 3, std::numeric_limits<int32_t>::min(), 0}).run();
}

TEST(Div, IntegerDivisionByZeroFails) {
  OpTester("Div").input<int64_t>("A", {2}, {1, 2}).input<int64_t>("B", {2}, {1, 0})
      .output<int64_t>("C", {2}, {0, 0}).expect_failure("integer division by zero");
}

TEST(Mod, SignFollowsDivisorUnlessFmod) {
  OpTester("Mod").input<int32_t>("A", {4}, {7, -7, 7, -7}).input<int32_t>("B", {4}, {3, 3, -3, -3})
      .output<int32_t>("C", {4}, {1, 2, -2, -1}).run();
  OpTester("Mod").attr("fmod", 1).input<int32_t>("A", {4}, {7, -7, 7, -7}).input<int32_t>("B", {4}, {3, 3, -3, -3})
      .output<int32_t>("C", {4}, {1, -1, 1, -1}).run();
  OpTester("Mod").input<int8_t>("A", {2}, {-128, 5}).input<int8_t>("B", {2}, {-1, -1})
      .output<int8_t>("C", {2}, {0, 0}).run();
}

TEST(Mod, FloatNeedsFmod) {
  OpTester("Mod").input<float>("A", {1}, {1.5f}).input<float>("B", {1}, {1.0f}).output<float>("C", {1}, {0.5f})
      .expect_failure("fmod=0 needs integer inputs");
}

TEST(Pow, IntegerPowersAreExact) {
  OpTester("Pow").input<int64_t>("X", {4}, {3, -2, 2, 5}).input<int64_t>("Y", {4}, {39, 3, -1, 0})
      .output<int64_t>("Z", {4}, {4052555153018976267LL, -8, 0, 1}).tolerance(0, 0).run();
}

TEST(Pow, FloatBaseIntegerExponent) {
  OpTester("Pow").input<float>("X", {3}, {2.0f, -2.0f, 0.5f}).input<int32_t>("Y", {1}, {3})
      .output<float>("Z", {3}, {8.0f, -8.0f, 0.125f}).run();
}

TEST(BitShift, ShiftsAndWidth) {
  OpTester("BitShift").attr("direction", "LEFT")
      .input<uint8_t>("X", {3}, {1, 3, 255}).input<uint8_t>("Y", {3}, {7, 2, 8})
      .output<uint8_t>("Z", {3}, {128, 12, 0}).run();
  OpTester("BitShift").attr("direction", "RIGHT").input<uint32_t>("X", {2}, {256, 7}).input<uint32_t>("Y", {1}, {4})
      .output<uint32_t>("Z", {2}, {16, 0}).run();
  OpTester("BitShift").attr("direction", "UP").input<uint8_t>("X", {1}, {1}).input<uint8_t>("Y", {1}, {1})
      .output<uint8_t>("Z", {1}, {0}).expect_failure("direction must be LEFT or RIGHT");
}

TEST(Where, StringsBroadcast) {
  OpTester("Where").input<bool>("C", {2, 1}, {true, false})
      .input<std::string>("X", {2}, {"a", "b"}).input<std::string>("Y", {1}, {"z"})
      .output<std::string>("Z", {2, 2}, {"a", "b", "z", "z"}).run();
}

TEST(Equal, Strings) {
  OpTester("Equal", 19).input<std::string>("A", {3}, {"x", "y", ""}).input<std::string>("B", {3}, {"x", "Y", ""})
      .output<bool>("C", {3}, {true, false, true}).run();
}

TEST(Clip, AttributesBeforeOpset11) {
  OpTester("Clip", 6).attr("min", -1.0f).attr("max", 2.0f).input<float>("X", {4}, {-5, 0.5f, 3, NAN})
      .output<float>("Y", {4}, {-1, 0.5f, 2, NAN}).run();
}

TEST(Clip, InputsFromOpset11AndDefaults) {
  OpTester("Clip", 13).input<int32_t>("X", {3}, {-5, 1, 9}).omitted_input().input<int32_t>("max", {}, {4})
      .output<int32_t>("Y", {3}, {-5, 1, 4}).run();
  OpTester("Clip", 13).input<float>("X", {2}, {1, 2}).input<float>("min", {2}, {0, 0})
      .output<float>("Y", {2}, {1, 2}).expect_failure("min must be a scalar");
}

TEST(PRelu, SlopeMustBroadcastToX) {
  OpTester("PRelu").input<float>("X", {2, 2}, {-1, 2, -3, 4}).input<float>("S", {2}, {0.5f, 0.25f})
      .output<float>("Y", {2, 2}, {-0.5f, 2, -1.5f, 4}).run();
  OpTester("PRelu").input<float>("X", {2}, {-1, 2}).input<float>("S", {2, 2}, {1, 1, 1, 1})
      .output<float>("Y", {2}, {0, 0}).expect_failure("does not broadcast to X's shape");
}

TEST(Cast, FloatToStringLikeNumpy) {
  OpTester("Cast").attr("to", int64_t(DType::String))
      .input<float>("X", {8}, {0.1f, 1.0f, -0.0f, 1e16f, 1e-5f, 123456789.0f, NAN, -INFINITY})
      .output<std::string>("Y", {8}, {"0.1", "1.0", "-0.0", "1e+16", "1e-05", "123456790.0", "NaN", "-INF"}).run();
}

TEST(Cast, StringToNumbers) {
  OpTester("Cast").attr("to", int64_t(DType::Float32))
      .input<std::string>("X", {5}, {"3.5", " -INF", "+inf", "nan", "1E3"})
      .output<float>("Y", {5}, {3.5f, -INFINITY, INFINITY, NAN, 1000.0f}).run();
  OpTester("Cast").attr("to", int64_t(DType::Int32)).input<std::string>("X", {3}, {"100.5", "-7", "2e3"})
      .output<int32_t>("Y", {3}, {100, -7, 2000}).run();
  OpTester("Cast").attr("to", int64_t(DType::Int8)).input<std::string>("X", {1}, {"300"})
      .output<int8_t>("Y", {1}, {0}).expect_failure("cannot cast string '300' to int8: out of range");
  OpTester("Cast").attr("to", int64_t(DType::Float64)).input<std::string>("X", {1}, {"hello"})
      .output<double>("Y", {1}, {0}).expect_failure("cannot cast string 'hello' to double: not a number");
}

TEST(Cast, UnsupportedTargetIsNamed) {
  OpTester("Cast").attr("to", int64_t(14)).input<float>("X", {1}, {1}).output<float>("Y", {1}, {1})
      .expect_failure("casting to element type 14 is not supported");
}

}  // namespace
}  // namespace kiln::test

namespace kiln::test {

// Rows against one repeated row take a flat loop (per-channel operands of channels-last data);
// the result must be what the broadcast says, for either operand order, with the row shared
// or one per block, and over as many rows as split across threads.
TEST(Broadcast, RowsAgainstARepeatedRow) {
  auto seq = [](int64_t n, float scale) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[size_t(i)] = scale * float(i % 97) - 3.f;
    return v;
  };
  const int64_t rows = 700, c = 37;
  const std::vector<float> x = seq(rows * c, 0.5f), r = seq(c, 0.25f);
  std::vector<float> sum(x.size()), diff(x.size());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < c; ++j) {
      sum[size_t(i * c + j)] = x[size_t(i * c + j)] + r[size_t(j)];
      diff[size_t(i * c + j)] = r[size_t(j)] - x[size_t(i * c + j)];
    }
  OpTester("Add").input<float>("A", {rows, c}, x).input<float>("B", {c}, r).output<float>("C", {rows, c}, sum).run();
  OpTester("Sub").input<float>("A", {c}, r).input<float>("B", {rows, c}, x).output<float>("C", {rows, c}, diff).run();

  // [3, 250, 37] * [3, 1, 37]: a row per block
  const int64_t blocks = 3, reps = 250;
  const std::vector<float> y = seq(blocks * reps * c, 0.125f), s = seq(blocks * c, 0.5f);
  std::vector<float> prod(y.size());
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t i = 0; i < reps; ++i)
      for (int64_t j = 0; j < c; ++j)
        prod[size_t((b * reps + i) * c + j)] = s[size_t(b * c + j)] * y[size_t((b * reps + i) * c + j)];
  OpTester("Mul").input<float>("A", {blocks, 1, c}, s).input<float>("B", {blocks, reps, c}, y)
      .output<float>("C", {blocks, reps, c}, prod).run();
}

}  // namespace kiln::test
