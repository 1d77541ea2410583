// packed_gemm against a loop in double: row counts that leave partial tiles, partial panels and
// one-row products, a depth that runs in blocks, every epilogue (bias, activation, Z before or
// after it, Z in C's own buffer), on one thread and two.
#include <cmath>

#include "kiln/core/parallel.h"
#include "kiln/ops/math/packed_gemm.h"
#include "epilogue_reference.h"
#include "op_tester.h"

namespace kiln::test {
namespace {

// z: 0 none, 1 after the activation, 2 before it, 3 after it and in C's own buffer.
void check(int64_t m, int64_t k, int64_t n, bool bias, GemmEpilogue::Act a, int z, int threads, bool cold = false) {
  SCOPED_TRACE(testing::Message() << m << "x" << k << "x" << n << " bias " << bias << " act " << int(a) << " z " << z
                                  << " threads " << threads << " cold " << cold);
  const std::vector<float> x = uniform_values(m * k, 1), w = uniform_values(k * n, 2), bv = uniform_values(n, 3),
                           zv = uniform_values(m * n, 4);
  Tensor weight = make_tensor<float>({k, n}, w);
  PackedWeights packed;
  const std::optional<PackedPanels> panels =
      PackedPanels::pack(packed, &weight, plain_desc(weight.shape(), DType::Float32));
  if (!panels) GTEST_SKIP() << "this build has neither AVX-512 nor AVX2: no packed_gemm";
  PackedPanels b = *panels;
  b.cold = cold;
  GemmEpilogue ep;
  ep.bias = bias ? bv.data() : nullptr;
  ep.act = a;
  ep.z = z ? zv.data() : nullptr;
  ep.z_first = z == 2;
  ThreadLimit limit(threads);
  const std::vector<float> c = written_within(size_t(m * n), [&](float* out) {
    if (z == 3) {
      std::copy(zv.begin(), zv.end(), out);
      ep.z = out;
    }
    packed_gemm(x.data(), m, b, ep, out);
  });
  int bad = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double v = 0;
      for (int64_t q = 0; q < k; ++q) v += double(x[size_t(i * k + q)]) * double(w[size_t(q * n + j)]);
      if (bias) v += bv[size_t(j)];
      if (z == 2) v += zv[size_t(i * n + j)];
      v = epilogue_act(v, a);
      if (z == 1 || z == 3) v += zv[size_t(i * n + j)];
      const float got = c[size_t(i * n + j)];
      if (!(std::abs(got - v) <= 1e-5 * std::sqrt(double(k)) * (1 + std::abs(v))) && bad++ < 5)
        ADD_FAILURE() << "C[" << i << ", " << j << "]: want " << v << ", got " << got;
    }
  EXPECT_EQ(bad, 0);
}

}  // namespace

TEST(PackedGemm, MatchesLoopForEveryEpilogue) {
  using Act = GemmEpilogue::Act;
  for (const Act a : {Act::None, Act::Relu, Act::Gelu, Act::GeluTanh, Act::HardSwish, Act::Silu})
    for (int z = 0; z < 4; ++z) {
      check(16, 64, 256, true, a, z, 1);  // whole tiles (AVX-512: 48-wide panels and a 16-wide one)
      check(13, 70, 10, z % 2 == 0, a, z, 2);  // a partial tile, a partial panel, a ragged depth
    }
  check(1, 300, 1000, true, Act::Gelu, 3, 2);  // one row against a megabyte weight
  check(49, 512, 520, true, Act::Relu, 2, 2);  // 49 rows: work items of 48 and 1
}

// A cold weight's panels are fetched ahead as a megabyte's are; the results are the same.
TEST(PackedGemm, ColdWeightMatchesLoop) {
  check(49, 192, 1152, true, GemmEpilogue::Act::Silu, 2, 1, true);
  check(49, 960, 160, true, GemmEpilogue::Act::None, 0, 2, true);
}

// A deep product with many rows runs in blocks of depth whose sums wait in C (or in scratch
// when C is Z); the epilogue follows the last block.
TEST(PackedGemm, DepthBlocksMatchLoop) {
  using Act = GemmEpilogue::Act;
  for (int z = 0; z < 4; ++z) check(130, 2304, 100, true, z == 1 ? Act::Gelu : Act::Relu, z, 1 + z % 2);
}

}  // namespace kiln::test
