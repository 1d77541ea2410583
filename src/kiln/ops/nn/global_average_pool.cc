// GlobalAveragePool: the mean of each (n, c) plane.
#include "kiln/ops/nn/global_pool.h"

namespace kiln::nn {
namespace {
struct Mean {
  template <typename T>
  T operator()(const T* x, int64_t n) const {
    T sum = T(0);
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; ++i) sum += x[i];
    return n > 0 ? T(sum / T(n)) : std::numeric_limits<T>::quiet_NaN();
  }
};
const OpRegistration kGlobalAveragePool{"GlobalAveragePool", make_kernel<GlobalPool<Mean>>};
}  // namespace
}  // namespace kiln::nn
