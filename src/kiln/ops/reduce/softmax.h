// Softmax, LogSoftmax and Hardmax share one kernel: the same walk over rows along an axis,
// with a different row formula. Before opset 13 the input is flattened to 2-D at `axis`
// (default 1) and each row of the flattened matrix is normalized; from 13 the normalization runs
// along the single dim `axis` (default -1).
//
// Float32 rows run on AVX-512 or AVX2 vector kernels (max, exp with running sum, scale); attention
// softmax is hot enough to matter. exp is the elementwise ops' vector exp (fast_math.h).
#pragma once

#include <cmath>
#include <limits>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "kiln/ops/math/fast_math.h"
#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace vmath {

// GCC 12 flags the intrinsics' internal _mm512_undefined_ps() as maybe-uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#if defined(__AVX512F__)
using fastmath::avx512::tail_mask;
#endif

inline float max_f32(const float* x, int64_t n) {
#if defined(__AVX512F__)
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    m = _mm512_mask_max_ps(m, k, _mm512_maskz_loadu_ps(k, x + i), m);
  }
  return _mm512_reduce_max_ps(m);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(_mm256_loadu_ps(x + i), m);
  float lanes[8];
  _mm256_storeu_ps(lanes, m);
  float r = lanes[0];
  for (int l = 1; l < 8; ++l) r = lanes[l] > r ? lanes[l] : r;
  for (; i < n; ++i) r = x[i] > r ? x[i] : r;
  return r;
#else
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
#endif
}

// y[i] = exp(x[i] - shift) (stored when y is not null); returns the sum of those values.
inline float exp_sum_f32(const float* x, float* y, int64_t n, float shift) {
#if defined(__AVX512F__)
  const __m512 sh = _mm512_set1_ps(shift);
  __m512 s = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 e = fastmath::avx512::exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), sh));
    if (y) _mm512_mask_storeu_ps(y + i, k, e);
    s = _mm512_mask_add_ps(s, k, s, e);
  }
  return _mm512_reduce_add_ps(s);
#elif defined(__AVX2__) && defined(__FMA__)
  const __m256 sh = _mm256_set1_ps(shift);
  __m256 s = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = fastmath::avx2::tail_mask(n - i);
    // Lanes past the row read 0 and give exp(-shift): masked out of the sum.
    const __m256 e = fastmath::avx2::exp(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), sh));
    if (y) {
      if (n - i >= 8) _mm256_storeu_ps(y + i, e);
      else _mm256_maskstore_ps(y + i, k, e);
    }
    s = _mm256_add_ps(s, _mm256_and_ps(e, _mm256_castsi256_ps(k)));
  }
  return fastmath::avx2::reduce_add(s);
#else
  float s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(x[i] - shift);
    if (y) y[i] = e;
    s += e;
  }
  return s;
#endif
}

inline void exp_inplace(float* v, int64_t n) { fastmath::exp(v, v, n); }
inline void exp_inplace(double* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = std::exp(v[i]);
}

template <typename T>
T row_max(const T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    return max_f32(x, n);
  } else {
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
  }
}
template <typename T>
T exp_sum(const T* x, T* y, int64_t n, T shift) {
  if constexpr (std::is_same_v<T, float>) {
    return exp_sum_f32(x, y, n, shift);
  } else {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) {
      const T e = std::exp(x[i] - shift);
      if (y) y[i] = e;
      s += e;
    }
    return s;
  }
}

#pragma GCC diagnostic pop

}  // namespace vmath

enum class SoftmaxKind { Softmax, LogSoftmax, Hardmax };

template <SoftmaxKind kKind>
class SoftmaxFamily : public Kernel {
 public:
  explicit SoftmaxFamily(const ir::Node& node)
      : flatten_(node.opset < 13), axis_(node.attr_int("axis", node.opset < 13 ? 1 : -1)) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t a = normalize_axis(axis_, x.rank());
    outer_ = 1, n_ = 1, inner_ = 1;
    for (int64_t d = 0; d < x.rank(); ++d) {
      if (d < a) outer_ *= x.dim(d);
      else if (d == a || flatten_) n_ *= x.dim(d);
      else inner_ *= x.dim(d);
    }
    ctx.set_output(0, x.dtype(), x.shape());
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    if (x.size() == 0) return;
    dispatch(TypeList<float, double>{}, x.dtype(), ctx.node().op_type.c_str(), [&]<typename T>() {
      if (inner_ == 1) rows(x.data<T>(), y.data<T>());
      else strided(x.data<T>(), y.data<T>());
    });
  }

 private:
  // Contiguous rows of n.
  template <typename T>
  void rows(const T* x, T* y) const {
    const int64_t n = n_;
    parallel_for(outer_, std::max<int64_t>(1, 8192 / n), [&](int64_t s, int64_t e) {
      fastmath::FlushSubnormals flush;  // per thread: MXCSR is each thread's own
      for (int64_t o = s; o < e; ++o) {
        const T* xr = x + o * n;
        T* yr = y + o * n;
        if constexpr (kKind == SoftmaxKind::Hardmax) {
          int64_t best = 0;
          for (int64_t i = 1; i < n; ++i)
            if (xr[i] > xr[best]) best = i;
          std::fill(yr, yr + n, T(0));
          yr[best] = T(1);
        } else {
          const T m = vmath::row_max(xr, n);
          if constexpr (kKind == SoftmaxKind::Softmax) {
            const T inv = T(1) / vmath::exp_sum(xr, yr, n, m);
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) yr[i] *= inv;
          } else {
            const T shift = m + std::log(vmath::exp_sum<T>(xr, nullptr, n, m));
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] - shift;
          }
        }
      }
    });
  }

  // Along a strided axis: blocks of adjacent columns, each pass vectorized across the block.
  template <typename T>
  void strided(const T* x, T* y) const {
    constexpr int64_t kBlock = 256;
    const int64_t n = n_, inner = inner_;
    const int64_t blocks = (inner + kBlock - 1) / kBlock;
    parallel_for(outer_ * blocks, std::max<int64_t>(1, 8192 / (n * std::min(inner, kBlock))), [&](int64_t s, int64_t e) {
      fastmath::FlushSubnormals flush;
      T m[kBlock], acc[kBlock], tmp[kBlock];
      for (int64_t w = s; w < e; ++w) {
        const int64_t c0 = (w % blocks) * kBlock, len = std::min(kBlock, inner - c0);
        const T* xb = x + (w / blocks) * n * inner + c0;
        T* yb = y + (w / blocks) * n * inner + c0;
        std::fill(m, m + len, -std::numeric_limits<T>::infinity());
        std::fill(acc, acc + len, T(0));
        if constexpr (kKind == SoftmaxKind::Hardmax) {
          int64_t idx[kBlock] = {};
          for (int64_t i = 0; i < n; ++i) {
            const T* xr = xb + i * inner;
            for (int64_t t = 0; t < len; ++t)
              if (i == 0 || xr[t] > m[t]) m[t] = xr[t], idx[t] = i;
          }
          for (int64_t i = 0; i < n; ++i) {
            T* yr = yb + i * inner;
            for (int64_t t = 0; t < len; ++t) yr[t] = idx[t] == i ? T(1) : T(0);
          }
          continue;
        }
        for (int64_t i = 0; i < n; ++i) {
          const T* xr = xb + i * inner;
#pragma omp simd
          for (int64_t t = 0; t < len; ++t) m[t] = xr[t] > m[t] ? xr[t] : m[t];
        }
        for (int64_t i = 0; i < n; ++i) {
          const T* xr = xb + i * inner;
          T* dst = kKind == SoftmaxKind::Softmax ? yb + i * inner : tmp;
#pragma omp simd
          for (int64_t t = 0; t < len; ++t) dst[t] = xr[t] - m[t];
          vmath::exp_inplace(dst, len);
#pragma omp simd
          for (int64_t t = 0; t < len; ++t) acc[t] += dst[t];
        }
        if constexpr (kKind == SoftmaxKind::Softmax) {
          for (int64_t t = 0; t < len; ++t) acc[t] = T(1) / acc[t];
          for (int64_t i = 0; i < n; ++i) {
            T* yr = yb + i * inner;
#pragma omp simd
            for (int64_t t = 0; t < len; ++t) yr[t] *= acc[t];
          }
        } else {
          for (int64_t t = 0; t < len; ++t) acc[t] = m[t] + std::log(acc[t]);
          for (int64_t i = 0; i < n; ++i) {
            const T* xr = xb + i * inner;
            T* yr = yb + i * inner;
#pragma omp simd
            for (int64_t t = 0; t < len; ++t) yr[t] = xr[t] - acc[t];
          }
        }
      }
    });
  }

  bool flatten_;
  int64_t axis_;
  int64_t outer_ = 1, n_ = 1, inner_ = 1;
};

}  // namespace kiln
