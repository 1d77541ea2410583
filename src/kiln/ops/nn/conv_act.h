// The activations Kiln's own convolution kernels (depthwise, stem) apply to their sums in
// registers, before the store.
#pragma once

#if defined(__AVX512F__)
#include <immintrin.h>

#include "kiln/ops/math/fast_math.h"
#endif

namespace kiln::nn {

enum class ConvAct { None, Relu, Clip, HardSwish, Silu };  // Clip's bounds come with each call

#if defined(__AVX512F__)
template <ConvAct A>
inline __m512 activate(__m512 v, __m512 lo, __m512 hi) {
  if constexpr (A == ConvAct::Relu) return _mm512_max_ps(v, _mm512_setzero_ps());
  if constexpr (A == ConvAct::Clip) return _mm512_min_ps(_mm512_max_ps(v, lo), hi);
  if constexpr (A == ConvAct::HardSwish) {
    const __m512 g = _mm512_fmadd_ps(v, _mm512_set1_ps(1.0f / 6), _mm512_set1_ps(0.5f));
    return _mm512_mul_ps(v, _mm512_min_ps(_mm512_max_ps(g, _mm512_setzero_ps()), _mm512_set1_ps(1.0f)));
  }
  if constexpr (A == ConvAct::Silu) return fastmath::avx512::silu(v);
  return v;
}
#endif

}  // namespace kiln::nn
