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
  // Channels-last: adds the first `channels` columns of a [pixels, stride] matrix to `sums`,
  // and turns sums over `pixels` rows into means.
  template <typename T>
  void add_rows(const T* x, int64_t pixels, int64_t stride, int64_t channels, T* sums) const {
    for (int64_t p = 0; p < pixels; ++p) {
      const T* row = x + p * stride;
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) sums[c] += row[c];
    }
  }
  template <typename T>
  void finish(const T* sums, int64_t pixels, int64_t channels, T* y) const {
    const T scale = pixels > 0 ? T(1) / T(pixels) : std::numeric_limits<T>::quiet_NaN();
    for (int64_t c = 0; c < channels; ++c) y[c] = sums[c] * scale;
  }
};
const OpRegistration kGlobalAveragePool{"GlobalAveragePool", make_kernel<GlobalPool<Mean>>};
}  // namespace
}  // namespace kiln::nn
