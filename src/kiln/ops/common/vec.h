// The machine's float vector registers, for Kiln's own kernels (packed_gemm, Winograd's
// transforms, the convolutions' activations): AVX-512 (16 lanes, lane masks) or AVX2 with FMA
// (8 lanes, masks as integer vectors). KILN_VEC is defined where the build has either; the
// matching fast-math functions are fastmath::native.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kiln/ops/math/fast_math.h"

namespace kiln {

#if defined(__AVX512F__)
#define KILN_VEC 1
namespace fastmath {
namespace native = avx512;
}
struct Vec {
  using V = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V relu(V v) { return _mm512_max_ps(v, _mm512_setzero_ps()); }
  static float sum(V v) { return _mm512_reduce_add_ps(v); }
  static Mask mask(int64_t left) { return fastmath::avx512::tail_mask(left); }
  static V load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static V select(Mask m, V v) { return _mm512_maskz_mov_ps(m, v); }  // v where m, else 0
  static void store(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
};
#elif defined(__AVX2__) && defined(__FMA__)
#define KILN_VEC 1
namespace fastmath {
namespace native = avx2;
}
struct Vec {
  using V = __m256;
  using Mask = __m256i;
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V relu(V v) { return _mm256_max_ps(v, _mm256_setzero_ps()); }
  static float sum(V v) { return fastmath::avx2::reduce_add(v); }
  static Mask mask(int64_t left) { return fastmath::avx2::tail_mask(left); }
  static V load(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static V select(Mask m, V v) { return _mm256_and_ps(_mm256_castsi256_ps(m), v); }  // v where m, else 0
  static void store(float* p, Mask m, V v) { _mm256_maskstore_ps(p, m, v); }
};
#endif

}  // namespace kiln
