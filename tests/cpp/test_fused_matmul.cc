// kiln::FusedMatMul against a loop in double.
#include <algorithm>

#include "op_tester.h"

namespace kiln::test {
namespace {

TEST(FusedMatMul, OneRowOnAMegabyteWeight) {
  // A weight of a megabyte streams on packed_gemm at every row count, here one row of A, with
  // the bias, Relu and a residual Z; K = 1100 and N = 250 leave partial panels.
  const int64_t k = 1100, n = 250;
  const std::vector<float> a = uniform_values(k, 5), w = uniform_values(k * n, 6), b = uniform_values(n, 7),
                           z = uniform_values(n, 8);
  std::vector<float> want(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    double v = b[size_t(j)];
    for (int64_t q = 0; q < k; ++q) v += double(a[size_t(q)]) * double(w[size_t(q * n + j)]);
    want[size_t(j)] = float(std::max(v, 0.0) + z[size_t(j)]);
  }
  OpTester("FusedMatMul", 1, "kiln")
      .attr("activation", "Relu")
      .input<float>("A", {1, k}, a)
      .constant<float>("B", {k, n}, w)
      .constant<float>("Bias", {n}, b)
      .input<float>("Z", {1, n}, z)
      .output<float>("Y", {1, n}, want)
      .tolerance(1e-4, 1e-4)
      .run();
}

}  // namespace
}  // namespace kiln::test
