// The activations Kiln's own convolution kernels (depthwise, stem, pointwise) apply to their
// sums in registers, before the store, and what those kernels' tiles share.
#pragma once

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>

#include "kiln/ops/math/fast_math.h"
#endif

namespace kiln::nn {

enum class ConvAct { None, Relu, Clip, HardSwish, Silu };  // Clip's bounds come with each call

// fn.template operator()<A>() for the activation `a`: a kernel picks its tiles per activation.
template <typename Fn>
void with_act(ConvAct a, Fn&& fn) {
  switch (a) {
    case ConvAct::None: return fn.template operator()<ConvAct::None>();
    case ConvAct::Relu: return fn.template operator()<ConvAct::Relu>();
    case ConvAct::Clip: return fn.template operator()<ConvAct::Clip>();
    case ConvAct::HardSwish: return fn.template operator()<ConvAct::HardSwish>();
    case ConvAct::Silu: return fn.template operator()<ConvAct::Silu>();
  }
}

// Pixels per tile of the kernels that broadcast one input value against G vectors of 16 output
// channels (stem, pointwise): 24 sums beside the G filter vectors and the broadcast input.
constexpr int broadcast_tile_width(int g) { return g == 1 ? 24 : g == 2 ? 12 : g == 3 ? 8 : 6; }

#if defined(__AVX512F__)
template <ConvAct A>
inline __m512 activate(__m512 v, __m512 lo, __m512 hi) {
  if constexpr (A == ConvAct::Relu) return _mm512_max_ps(v, _mm512_setzero_ps());
  if constexpr (A == ConvAct::Clip) return _mm512_min_ps(_mm512_max_ps(v, lo), hi);
  if constexpr (A == ConvAct::HardSwish) return fastmath::avx512::hard_swish(v);
  if constexpr (A == ConvAct::Silu) return fastmath::avx512::silu(v);
  return v;
}
#elif defined(__AVX2__) && defined(__FMA__)
template <ConvAct A>
inline __m256 activate(__m256 v, __m256 lo, __m256 hi) {
  if constexpr (A == ConvAct::Relu) return _mm256_max_ps(v, _mm256_setzero_ps());
  if constexpr (A == ConvAct::Clip) return _mm256_min_ps(_mm256_max_ps(v, lo), hi);
  if constexpr (A == ConvAct::HardSwish) return fastmath::avx2::hard_swish(v);
  if constexpr (A == ConvAct::Silu) return fastmath::avx2::silu(v);
  return v;
}
#endif

}  // namespace kiln::nn
