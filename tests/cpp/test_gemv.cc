// One-row products on plain weights against a loop in double: both orientations of the weight,
// lengths that leave partial vectors and partial groups of four rows, every epilogue (bias,
// activation, Z before or after it, Z in the output's own buffer), and one to sixteen threads.
#include <cmath>

#include "kiln/core/parallel.h"
#include "kiln/ops/math/packed_gemm.h"
#include "epilogue_reference.h"
#include "op_tester.h"

namespace kiln::test {
namespace {

void check(int64_t k, int64_t n, bool nk, bool bias, GemmEpilogue::Act a, int z, int threads) {
  SCOPED_TRACE(testing::Message() << "k " << k << " n " << n << (nk ? " [N, K]" : " [K, N]") << " act " << int(a)
                                  << " z " << z << " threads " << threads);
  const std::vector<float> x = uniform_values(k, 1), b = uniform_values(k * n, 2), bv = uniform_values(n, 3),
                           zv = uniform_values(n, 4);
  GemmEpilogue ep;
  ep.bias = bias ? bv.data() : nullptr;
  ep.act = a;
  ep.z = z ? zv.data() : nullptr;  // z: 0 none, 1 after the activation, 2 before, 3 after and in y
  ep.z_first = z == 2;
  ThreadLimit limit(threads);
  const std::vector<float> y = written_within(size_t(n), [&](float* out) {
    if (z == 3) {  // Z in y's own buffer, as when the output takes a dying residual's
      std::copy(zv.begin(), zv.end(), out);
      ep.z = out;
    }
    gemv(x.data(), b.data(), k, n, nk, ep, out);
  });
  int bad = 0;
  for (int64_t j = 0; j < n; ++j) {
    double v = 0;
    for (int64_t q = 0; q < k; ++q) v += double(x[size_t(q)]) * double(b[size_t(nk ? j * k + q : q * n + j)]);
    if (bias) v += bv[size_t(j)];
    if (z == 2) v += zv[size_t(j)];
    v = epilogue_act(v, a);
    if (z == 1 || z == 3) v += zv[size_t(j)];
    if (!(std::abs(y[size_t(j)] - v) <= 1e-5 * std::sqrt(double(k)) * (1 + std::abs(v))) && bad++ < 5)
      ADD_FAILURE() << "y[" << j << "]: want " << v << ", got " << y[size_t(j)];
  }
  EXPECT_EQ(bad, 0);
}

}  // namespace

TEST(Gemv, MatchesLoopBothOrientations) {
  for (bool nk : {false, true}) {
    check(1280, 1000, nk, true, GemmEpilogue::Act::None, 0, 1);  // a classifier
    check(1280, 1000, nk, true, GemmEpilogue::Act::Relu, 1, 2);
    check(1031, 37, nk, false, GemmEpilogue::Act::Gelu, 2, 16);  // partial vectors and row groups
    check(37, 1031, nk, true, GemmEpilogue::Act::GeluTanh, 1, 2);
    check(3, 1, nk, true, GemmEpilogue::Act::None, 0, 1);  // fewer than four rows and one vector
    check(1280, 1000, nk, true, GemmEpilogue::Act::Relu, 3, 2);
    check(200, 37, nk, true, GemmEpilogue::Act::HardSwish, 2, 2);
    check(200, 37, nk, false, GemmEpilogue::Act::Silu, 3, 1);
  }
}

}  // namespace kiln::test
