// GlobalLpPool: (sum |x|^p)^(1/p) of each (n, c) plane; p is a float in opset 1, an int after.
#include <cmath>

#include "kiln/ops/nn/global_pool.h"

namespace kiln::nn {
namespace {
struct LpNorm {
  explicit LpNorm(const ir::Node& node) {
    if (const ir::Attribute* a = node.attr("p")) p = a->kind == ir::Attribute::Kind::Float ? double(a->f) : double(a->i);
    if (!(p > 0)) fail(ErrorCode::InvalidGraph, "p must be positive, got ", p);
  }
  template <typename T>
  T operator()(const T* x, int64_t n) const {
    T sum = T(0);
    if (p == 2) {
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
      return std::sqrt(sum);
    }
    if (p == 1) {
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < n; ++i) sum += std::abs(x[i]);
      return sum;
    }
    for (int64_t i = 0; i < n; ++i) sum += std::pow(std::abs(x[i]), T(p));
    return std::pow(sum, T(1 / p));
  }
  double p = 2;
};
const OpRegistration kGlobalLpPool{"GlobalLpPool", make_kernel<GlobalPool<LpNorm>>};
}  // namespace
}  // namespace kiln::nn
