// kiln::MatMul reads A and B through Transpose views (perm_a, perm_b) and writes its result
// transposed (perm_y): the same numbers as the three Transposes around a MatMul would give;
// kiln_alpha scales the product.
#include <numeric>

#include "op_tester.h"

namespace kiln::test {

namespace {
template <typename T>
std::vector<T> iota_n(int n) {
  std::vector<T> v(static_cast<size_t>(n), T(0));
  std::iota(v.begin(), v.end(), T(0));
  return v;
}

// Y = Transpose(MatMul(Transpose(X, pa), Transpose(W, pb)), py), against plain loops.
template <typename T>
void check(float alpha = 1.0f) {
  // X stored [1, M=2, B=3, K=2]; A = Transpose(X, {0, 2, 1, 3}) is [1, 3, 2, 2].
  // W stored [1, B=3, N=2, K=2]; B = Transpose(W, {0, 1, 3, 2}) is [1, 3, 2, 2] (K x N).
  // C [1, 3, 2, 2] written as Transpose(C, {0, 2, 1, 3}): Y [1, 2, 3, 2].
  const std::vector<T> x = iota_n<T>(12), w = iota_n<T>(12);
  std::vector<T> y(12);
  for (int b = 0; b < 3; ++b)
    for (int m = 0; m < 2; ++m)
      for (int n = 0; n < 2; ++n) {
        T acc = T(0);
        for (int k = 0; k < 2; ++k) acc += x[size_t((m * 3 + b) * 2 + k)] * w[size_t((b * 2 + n) * 2 + k)];
        y[size_t((m * 3 + b) * 2 + n)] = T(acc * alpha);
      }
  OpTester t("MatMul", 1, "kiln");
  if (alpha != 1.0f) t.attr("kiln_alpha", alpha);
  t.attr("perm_a", std::vector<int64_t>{0, 2, 1, 3})
      .attr("perm_b", std::vector<int64_t>{0, 1, 3, 2})
      .attr("perm_y", std::vector<int64_t>{0, 2, 1, 3})
      .template input<T>("A", {1, 2, 3, 2}, x)
      .template input<T>("B", {1, 3, 2, 2}, w)
      .template output<T>("Y", {1, 2, 3, 2}, y)
      .run();
}
}  // namespace

TEST(KilnMatMul, TransposedViewsOnOneDnnAndTheReferenceLoop) {
  check<float>();
  check<int32_t>();
}

TEST(KilnMatMul, ScaledByAlphaOnOneDnnAndTheReferenceLoop) {
  check<float>(0.125f);
  check<double>(-1.5f);
  // A 2-D product of two computed operands, without views.
  OpTester("MatMul", 1, "kiln")
      .attr("kiln_alpha", 0.5f)
      .input<float>("A", {2, 3}, {1, 2, 3, 4, 5, 6})
      .input<float>("B", {3, 1}, {1, 0, -1})
      .output<float>("Y", {2, 1}, {-1, -1})
      .run();
  OpTester("MatMul", 13)
      .attr("kiln_alpha", 0.5f)
      .input<float>("A", {1, 1}, {1})
      .input<float>("B", {1, 1}, {1})
      .output<float>("Y", {1, 1}, {0.5f})
      .expect_failure("kiln_alpha belongs to kiln::MatMul");
}

TEST(KilnMatMul, RefusesAPermThatIsNotOne) {
  OpTester("MatMul", 1, "kiln").attr("perm_a", std::vector<int64_t>{0, 1, 1, 3})
      .input<float>("A", {1, 2, 3, 2}, std::vector<float>(12)).input<float>("B", {1, 2, 2, 2}, std::vector<float>(8))
      .output<float>("Y", {1, 2, 3, 2}, std::vector<float>(12))
      .expect_failure("perm_a [0,1,1,3] does not reorder the axes of [1,2,3,2]");
}

}  // namespace kiln::test
