// GlobalMaxPool: the maximum of each (n, c) plane.
#include "kiln/ops/nn/global_pool.h"

namespace kiln::nn {
namespace {
struct Max {
  template <typename T>
  T operator()(const T* x, int64_t n) const {
    T best = std::numeric_limits<T>::lowest();
#pragma omp simd reduction(max : best)
    for (int64_t i = 0; i < n; ++i) best = x[i] > best ? x[i] : best;
    return best;
  }
};
const OpRegistration kGlobalMaxPool{"GlobalMaxPool", make_kernel<GlobalPool<Max>>};
}  // namespace
}  // namespace kiln::nn
