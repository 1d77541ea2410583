// Float32 functions over arrays, for the elementwise ops that dominate some models (Exp, Log,
// Tanh, Sigmoid, Erf, Gelu; also the exact Sqrt, Floor, Ceil). With AVX-512 they run 16 lanes
// at a time, with AVX2 and FMA 8, the transcendental ones on polynomial approximations
// (relative error below 1e-6 over the whole float range, checked against libm in
// tests/cpp/test_elementwise.cc); without either they call libm per element. The polynomials were fitted (near-minimax) to the functions
// named beside them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#if defined(__SSE__)
#include <immintrin.h>
#endif

namespace kiln::fastmath {

// Subnormal floats flushed to zero (results and inputs) on the calling thread for a scope.
// Masked attention scores reach exp as -3.4e38: every exp of the masked half lands in the
// subnormal range, and each operation on a subnormal takes a slow microcode path (GPT-2's
// softmax: 8.9 ms per run, 1.5 ms flushed). Values below 1.2e-38 then read as 0.
class FlushSubnormals {
 public:
#if defined(__SSE__)
  FlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040); }  // FTZ | DAZ
  ~FlushSubnormals() { _mm_setcsr(saved_); }
#endif
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;

 private:
  unsigned saved_ = 0;
};

// The scalar forms: the portable path, and the definitions the vector forms approximate.
inline float sigmoid(float x) {
  // exp of a non-positive argument never overflows, and e/(1+e) keeps the negative tail exact.
  const float e = std::exp(-std::fabs(x));
  const float r = 1.0f / (1.0f + e);
  return x >= 0 ? r : e * r;
}
inline float silu(float x) { return x * sigmoid(x); }
inline float hard_swish(float x) { return x * std::min(std::max(x / 6.0f + 0.5f, 0.0f), 1.0f); }
// 0.5 x (1 + erf(x/sqrt2)) written with erfc, which stays accurate where 1 + erf cancels.
inline float gelu(float x) { return 0.5f * x * std::erfc(-x * 0.70710678118654752f); }
// 0.5 x (1 + tanh(z)) = x sigmoid(2z).
inline float gelu_tanh(float x) { return x * sigmoid(1.5957691216057308f * (x + 0.044715f * x * x * x)); }

#if defined(__AVX512F__)
// GCC 12 flags the unmasked forms of max/min/scalef/roundscale, whose pass-through operand is
// deliberately undefined, as maybe-uninitialized once inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace avx512 {

inline __m512 k(float v) { return _mm512_set1_ps(v); }
// The lanes of the last, partial vector of a loop over 16 at a time: `left` of them, or all 16.
inline __mmask16 tail_mask(int64_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1); }
inline __m512 copy_sign(__m512 magnitude, __m512 sign) {
  const __m512i sbit = _mm512_and_si512(_mm512_castps_si512(sign), _mm512_set1_epi32(int(0x80000000u)));
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(magnitude), sbit));
}

// Exact operations, spelled out because GCC keeps std::sqrt (errno) and std::floor/ceil
// (trapping math) loops scalar.
inline __m512 sqrt(__m512 x) { return _mm512_sqrt_ps(x); }
inline __m512 floor(__m512 x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
inline __m512 ceil(__m512 x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC); }

// x - n ln2 in two steps (Cody-Waite: ln2's leading part times n is exact), for the exponentials.
inline __m512 minus_n_ln2(__m512 x, __m512 n) {
  return _mm512_fnmadd_ps(n, k(-2.12194440e-4f), _mm512_fnmadd_ps(n, k(0.693359375f), x));
}

inline __m512 exp(__m512 x) {
  // max/min return their second operand for NaN, so NaN passes through the clamp.
  x = _mm512_min_ps(k(88.8f), _mm512_max_ps(k(-104.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, k(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = minus_n_ln2(x, n);
  // e^r = 1 + r + r^2 P(r), P fitted to (e^r - 1 - r) / r^2.
  __m512 p = k(1.985778217e-4f);
  p = _mm512_fmadd_ps(p, r, k(1.393359737e-3f));
  p = _mm512_fmadd_ps(p, r, k(8.333360776e-3f));
  p = _mm512_fmadd_ps(p, r, k(4.166646674e-2f));
  p = _mm512_fmadd_ps(p, r, k(1.666666716e-1f));
  p = _mm512_fmadd_ps(p, r, k(0.5f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
  // scalef multiplies by 2^n with correct overflow to inf and gradual underflow.
  return _mm512_scalef_ps(_mm512_add_ps(p, k(1.0f)), n);
}

// e^t for t in [-87, 87] only (results stay normal floats): the nearest integer n by the
// 1.5 * 2^23 shifter, 2^n added straight into the exponent bits, and a degree-5 minimax
// polynomial (relative error 1.1e-7 before rounding), where exp() above takes degree 7 and
// scalef to cover the whole float range.
inline __m512 exp_bounded(__m512 t) {
  const __m512 shifter = k(12582912.0f);
  const __m512 shifted = _mm512_fmadd_ps(t, k(1.44269504088896341f), shifter);
  const __m512 r = minus_n_ln2(t, _mm512_sub_ps(shifted, shifter));
  __m512 p = k(8.31242e-3f);
  p = _mm512_fmadd_ps(p, r, k(4.189011e-2f));
  p = _mm512_fmadd_ps(p, r, k(1.6667115e-1f));
  p = _mm512_fmadd_ps(p, r, k(4.9999232e-1f));
  p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), k(1.0f));
  // n sits in the low mantissa bits of the shifted sum; 23 places up it is the exponent.
  const __m512i scale = _mm512_slli_epi32(_mm512_castps_si512(shifted), 23);
  return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(p), scale));
}

inline __m512 log(__m512 x) {
  // x = m 2^e with m in [sqrt(1/2), sqrt(2)); getexp/getmant also normalize subnormals.
  __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
  __m512 e = _mm512_getexp_ps(x);
  const __mmask16 big = _mm512_cmp_ps_mask(m, k(1.41421356f), _CMP_GT_OQ);
  m = _mm512_mask_mul_ps(m, big, m, k(0.5f));
  e = _mm512_mask_add_ps(e, big, e, k(1.0f));
  // log m = 2 atanh(s) = 2s + s^3 P(s^2) with s = (m-1)/(m+1), |s| <= 0.1716.
  const __m512 s = _mm512_div_ps(_mm512_sub_ps(m, k(1.0f)), _mm512_add_ps(m, k(1.0f)));
  const __m512 q = _mm512_mul_ps(s, s);
  __m512 p = k(0.2334247828f);
  p = _mm512_fmadd_ps(p, q, k(0.2855037451f));
  p = _mm512_fmadd_ps(p, q, k(0.4000012577f));
  p = _mm512_fmadd_ps(p, q, k(0.6666666865f));
  const __m512 lm = _mm512_fmadd_ps(_mm512_mul_ps(s, q), p, _mm512_add_ps(s, s));
  __m512 res = _mm512_fmadd_ps(e, k(0.693359375f), _mm512_fmadd_ps(e, k(-2.12194440e-4f), lm));
  const __m512 zero = _mm512_setzero_ps();
  res = _mm512_mask_mov_ps(res, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), k(NAN));
  res = _mm512_mask_mov_ps(res, _mm512_cmp_ps_mask(x, zero, _CMP_EQ_OQ), k(-INFINITY));
  return _mm512_mask_mov_ps(res, _mm512_cmp_ps_mask(x, k(INFINITY), _CMP_EQ_OQ), k(INFINITY));
}

inline __m512 tanh(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  // |x| < 0.625: x + x^3 P(x^2), P fitted to (tanh x - x) / x^3.
  const __m512 q = _mm512_mul_ps(x, x);
  __m512 p = k(-6.096923724e-3f);
  p = _mm512_fmadd_ps(p, q, k(2.099734358e-2f));
  p = _mm512_fmadd_ps(p, q, k(-5.385094881e-2f));
  p = _mm512_fmadd_ps(p, q, k(1.333277076e-1f));
  p = _mm512_fmadd_ps(p, q, k(-3.333332837e-1f));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(x, q), p, x);
  // Otherwise 1 - 2 / (e^{2|x|} + 1), which reaches 1 when the exponential overflows.
  const __m512 e = exp(_mm512_add_ps(ax, ax));
  const __m512 large = _mm512_sub_ps(k(1.0f), _mm512_div_ps(k(2.0f), _mm512_add_ps(e, k(1.0f))));
  return _mm512_mask_mov_ps(copy_sign(large, x), _mm512_cmp_ps_mask(ax, k(0.625f), _CMP_LT_OQ), small);
}

inline __m512 sigmoid(__m512 x) {
  const __m512 e = exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));
  // 1 / d for d = 1 + e in (1, 2]: the 14-bit reciprocal and one Newton step (error ~2^-28)
  // cost a third of a division here, which would be most of the function's time.
  const __m512 d = _mm512_add_ps(k(1.0f), e);
  __m512 r = _mm512_rcp14_ps(d);
  r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, k(1.0f)), r);
  return _mm512_mask_mul_ps(r, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), e, r);
}

// x / (1 + e^-x) in 20 operations where x * sigmoid(x) takes 25: EfficientNet-B0 spends a
// quarter of its run in SiLU. Below x = -87 the result is 0 (the true value is under 1.5e-36
// in magnitude), so -inf gives -inf * 0 = NaN as x * sigmoid(x) does; NaN stays NaN.
inline __m512 silu(__m512 x) {
  // max/min return their second operand for NaN: t = -87 then, and the product keeps the NaN.
  const __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), x), k(-87.0f)), k(87.0f));
  const __m512 d = _mm512_add_ps(exp_bounded(t), k(1.0f));
  const __m512 r = _mm512_rcp14_ps(d);  // 1 / d as in sigmoid(), zero below x = -87
  const __m512 s = _mm512_maskz_fmadd_ps(_mm512_cmp_ps_mask(t, k(87.0f), _CMP_LT_OQ), r, _mm512_fnmadd_ps(d, r, k(1.0f)), r);
  return _mm512_mul_ps(x, s);
}

// x min(max(x/6 + 1/2, 0), 1).
inline __m512 hard_swish(__m512 x) {
  const __m512 g = _mm512_fmadd_ps(x, k(1.0f / 6), k(0.5f));
  return _mm512_mul_ps(x, _mm512_min_ps(_mm512_max_ps(g, _mm512_setzero_ps()), k(1.0f)));
}

// erf(x) for |x| < 0.7: x P(x^2), P fitted to erf(x)/x.
inline __m512 erf_small(__m512 x) {
  const __m512 q = _mm512_mul_ps(x, x);
  __m512 p = k(-6.956785219e-4f);
  p = _mm512_fmadd_ps(p, q, k(5.139057524e-3f));
  p = _mm512_fmadd_ps(p, q, k(-2.684484422e-2f));
  p = _mm512_fmadd_ps(p, q, k(1.128354743e-1f));
  p = _mm512_fmadd_ps(p, q, k(-3.761262894e-1f));
  p = _mm512_fmadd_ps(p, q, k(1.128379226f));
  return _mm512_mul_ps(x, p);
}

// erfc(t) for t >= 0.7, given t^2 = t2_hi + t2_lo exactly: e^{-t^2} Q(1/t) / t, Q fitted to
// t e^{t^2} erfc(t) for 1/t in [0.1, 1/0.7] (mapped onto [-1, 1]). The split square keeps
// e^{-t^2} accurate where t^2 is large. Callers clamp t to 10.5, past which erfc is 0 in float.
inline __m512 erfc_large(__m512 t, __m512 t2_hi, __m512 t2_lo) {
  // 1/t from the 14-bit estimate and one Newton step (28 bits): cheaper than a division.
  __m512 u = _mm512_rcp14_ps(t);
  u = _mm512_mul_ps(u, _mm512_fnmadd_ps(t, u, k(2.0f)));
  const __m512 v = _mm512_fmadd_ps(u, k(1.505376344f), k(-1.150537634f));
  __m512 p = k(-1.004283404e-4f);
  p = _mm512_fmadd_ps(p, v, k(2.566990224e-5f));
  p = _mm512_fmadd_ps(p, v, k(4.793642438e-4f));
  p = _mm512_fmadd_ps(p, v, k(-6.079314626e-4f));
  p = _mm512_fmadd_ps(p, v, k(1.622340205e-4f));
  p = _mm512_fmadd_ps(p, v, k(2.730086853e-4f));
  p = _mm512_fmadd_ps(p, v, k(-1.476637903e-3f));
  p = _mm512_fmadd_ps(p, v, k(4.619563930e-3f));
  p = _mm512_fmadd_ps(p, v, k(-9.325955994e-3f));
  p = _mm512_fmadd_ps(p, v, k(1.099545229e-2f));
  p = _mm512_fmadd_ps(p, v, k(9.273806587e-3f));
  p = _mm512_fmadd_ps(p, v, k(-1.119351313e-1f));
  p = _mm512_fmadd_ps(p, v, k(4.657682180e-1f));
  // e^{-(hi + lo)} = e^{-hi} (1 - lo) for the tiny lo.
  __m512 ex = exp(_mm512_sub_ps(_mm512_setzero_ps(), t2_hi));
  ex = _mm512_fnmadd_ps(ex, t2_lo, ex);
  return _mm512_mul_ps(_mm512_mul_ps(ex, p), u);
}

// erfc(t) for t >= 0, t^2 split as above.
inline __m512 erfc_nonneg(__m512 t, __m512 t2_hi, __m512 t2_lo) {
  const __m512 small = _mm512_sub_ps(k(1.0f), erf_small(t));
  return _mm512_mask_mov_ps(erfc_large(t, t2_hi, t2_lo), _mm512_cmp_ps_mask(t, k(0.7f), _CMP_LT_OQ), small);
}

inline __m512 erf(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 t = _mm512_min_ps(k(10.5f), ax);  // keeps t^2 finite
  const __m512 t2 = _mm512_mul_ps(t, t);
  const __m512 large = copy_sign(_mm512_sub_ps(k(1.0f), erfc_large(t, t2, _mm512_fmsub_ps(t, t, t2))), x);
  return _mm512_mask_mov_ps(large, _mm512_cmp_ps_mask(ax, k(0.7f), _CMP_LT_OQ), erf_small(x));
}

// GELU from erfc: c = erfc(|x|/sqrt2), x >= 0 gives 0.5 x (2 - c), x < 0 gives 0.5 x c. (x/sqrt2)^2
// is x^2/2 split exactly, rather than the square of a rounded x/sqrt2. Accurate in the far
// negative tail, where 1 + erf(x/sqrt2) cancels; gelu() below takes it for x < -5.625.
inline __m512 gelu_erfc(__m512 x) {
  const __m512 ax = _mm512_min_ps(k(15.0f), _mm512_abs_ps(x));  // erfc is 0 past 15/sqrt2
  const __m512 x2 = _mm512_mul_ps(ax, ax);
  const __m512 x2_lo = _mm512_fmsub_ps(ax, ax, x2);
  const __m512 c = erfc_nonneg(_mm512_mul_ps(ax, k(0.70710678118654752f)), _mm512_mul_ps(x2, k(0.5f)),
                               _mm512_mul_ps(x2_lo, k(0.5f)));
  const __m512 half_x = _mm512_mul_ps(x, k(0.5f));
  const __m512 pos = _mm512_mul_ps(half_x, _mm512_sub_ps(k(2.0f), c));
  return _mm512_mask_mul_ps(pos, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), half_x, c);
}

// Phi(x) = (1 + erf(x/sqrt2)) / 2 on [-5.625, 6.375]: a degree-6 polynomial in x's offset from
// the centre of each of 32 intervals of 3/8, fitted (Chebyshev nodes, relative error weighted) to
// Phi; relative error 1.3e-7 in float from -3 up, 2.1e-6 at the bottom (Phi ~ 1e-8 there).
// Rows: the coefficients of u^0 .. u^6, by interval.
alignas(64) inline constexpr float kPhi[7][32] = {
  {2.70167195e-08f, 2.06897212e-07f, 1.38281405e-06f, 8.07094511e-06f, 4.11674700e-05f, 1.83669952e-04f, 7.17542309e-04f, 2.45790114e-03f, 7.39460718e-03f, 1.95800792e-02f, 4.57536243e-02f, 9.46757421e-02f, 1.74250707e-01f, 2.86887705e-01f, 4.25634325e-01f, 5.74365675e-01f, 7.13112295e-01f, 8.25749278e-01f, 9.05324280e-01f, 9.54246402e-01f, 9.80419934e-01f, 9.92605388e-01f, 9.97542083e-01f, 9.99282479e-01f, 9.99816358e-01f, 9.99958813e-01f, 9.99991953e-01f, 9.99998629e-01f, 9.99999821e-01f, 1.00000000e+00f, 1.00000000e+00f, 1.00000000e+00f},
  {1.51582924e-07f, 1.08559061e-06f, 6.75475621e-06f, 3.65158121e-05f, 1.71506210e-04f, 6.99852128e-04f, 2.48119072e-03f, 7.64260534e-03f, 2.04526726e-02f, 4.75538895e-02f, 9.60615054e-02f, 1.68593183e-01f, 2.57073909e-01f, 3.40567589e-01f, 3.91990900e-01f, 3.91990900e-01f, 3.40567589e-01f, 2.57073909e-01f, 1.68593183e-01f, 9.60615054e-02f, 4.75538895e-02f, 2.04526726e-02f, 7.64260488e-03f, 2.48119072e-03f, 6.99852128e-04f, 1.71506239e-04f, 3.65158303e-05f, 6.75476394e-06f, 1.08559323e-06f, 1.51583649e-07f, 1.83893398e-08f, 1.93824579e-09f},
  {4.12088326e-07f, 2.74779131e-06f, 1.58311104e-05f, 7.87363679e-05f, 3.37651378e-04f, 1.24661019e-03f, 3.95439891e-03f, 1.07474197e-02f, 2.49267053e-02f, 4.90399562e-02f, 8.10518861e-02f, 1.10639259e-01f, 1.20503381e-01f, 9.57846344e-02f, 3.67491581e-02f, -3.67491357e-02f, -9.57846344e-02f, -1.20503396e-01f, -1.10639282e-01f, -8.10518935e-02f, -4.90399525e-02f, -2.49266960e-02f, -1.07474141e-02f, -3.95439751e-03f, -1.24661135e-03f, -3.37652687e-04f, -7.87371464e-05f, -1.58314360e-05f, -2.74789522e-06f, -4.12114872e-07f, -5.34434008e-08f, -5.99636696e-09f},
  {7.21313484e-07f, 4.45453134e-06f, 2.36053675e-05f, 1.07084394e-04f, 4.14558337e-04f, 1.36368407e-03f, 3.78804491e-03f, 8.80209263e-03f, 1.68444421e-02f, 2.57894918e-02f, 2.95811445e-02f, 2.03050021e-02f, -5.18907933e-03f, -3.88014838e-02f, -6.30338714e-02f, -6.30338714e-02f, -3.88014838e-02f, -5.18908817e-03f, 2.03049872e-02f, 2.95811370e-02f, 2.57894993e-02f, 1.68444570e-02f, 8.80210195e-03f, 3.78804700e-03f, 1.36368175e-03f, 4.14555252e-04f, 1.07082407e-04f, 2.36044671e-05f, 4.45421938e-06f, 7.21227593e-07f, 1.00388910e-07f, 1.20291679e-08f},
  {9.14143527e-07f, 5.18883508e-06f, 2.50526282e-05f, 1.02397848e-04f, 3.51929455e-04f, 1.00688415e-03f, 2.35946779e-03f, 4.39725909e-03f, 6.10929355e-03f, 5.12376707e-03f, -1.02873438e-03f, -1.17759258e-02f, -2.12987103e-02f, -2.14202106e-02f, -9.08022467e-03f, 9.07868147e-03f, 2.14199796e-02f, 2.12998558e-02f, 1.17773227e-02f, 1.02929468e-03f, -5.12415404e-03f, -6.10999065e-03f, -4.39770147e-03f, -2.35955650e-03f, -1.00679544e-03f, -3.51826282e-04f, -1.02336737e-04f, -2.50270823e-05f, -5.18061324e-06f, -9.12027758e-07f, -1.37025836e-07f, -1.76154877e-08f},
  {9.08194465e-07f, 4.67929340e-06f, 2.02629271e-05f, 7.30824904e-05f, 2.16488406e-04f, 5.14282205e-04f, 9.34272248e-04f, 1.14401360e-03f, 4.35516238e-04f, -1.76484615e-03f, -4.76752222e-03f, -6.09025918e-03f, -3.17309820e-03f, 3.40115605e-03f, 9.05082189e-03f, 9.05076787e-03f, 3.40113253e-03f, -3.17289727e-03f, -6.08992064e-03f, -4.76735085e-03f, -1.76499074e-03f, 4.35213587e-04f, 1.14379462e-03f, 9.34223237e-04f, 5.14337560e-04f, 2.16559041e-04f, 7.31281616e-05f, 2.02836491e-05f, 4.68648705e-06f, 9.10182507e-07f, 1.49518456e-07f, 2.08686899e-08f},
  {6.53289419e-07f, 3.06614743e-06f, 1.18810358e-05f, 3.73503681e-05f, 9.23518382e-05f, 1.68036189e-04f, 1.82171556e-04f, -4.07616390e-05f, -6.18931197e-04f, -1.27255917e-03f, -1.20541977e-03f, 2.10865997e-04f, 2.30777264e-03f, 3.15430714e-03f, 1.49930303e-03f, -1.47004274e-03f, -3.14994273e-03f, -2.32949713e-03f, -2.37408880e-04f, 1.19476311e-03f, 1.27993117e-03f, 6.32227166e-04f, 4.92164763e-05f, -1.80472096e-04f, -1.69738531e-04f, -9.43390187e-05f, -3.85310595e-05f, -1.23762147e-05f, -3.22608707e-06f, -6.94608332e-07f, -1.24991573e-07f, -1.89576621e-08f},
};

// x Phi(x), Phi from kPhi (each lane's coefficients picked by permutes: 24 operations where
// gelu_erfc takes 58); vectors with a lane below -5.625 take gelu_erfc for those lanes. The
// table reached down to -3 only, and a transformer's up-projection with a tenth of its lanes
// below -3 (its GELU epilogue then 8% of a 197x768x3072 product) took the long form for most
// vectors.
inline __m512 gelu(__m512 x) {
  // Phi(6.375) is 1 in float; NaN becomes 6.375, x keeps it.
  const __m512 xc = _mm512_min_ps(x, k(6.375f));
  const __m512i idx =
      _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_fmadd_ps(xc, k(8.0f / 3), k(15.0f))), _mm512_set1_epi32(31));
  const __m512 u = _mm512_sub_ps(xc, _mm512_fmadd_ps(_mm512_cvtepi32_ps(idx), k(0.375f), k(-5.4375f)));
  auto coef = [&](int j) { return _mm512_permutex2var_ps(_mm512_load_ps(kPhi[j]), idx, _mm512_load_ps(kPhi[j] + 16)); };
  __m512 p = coef(6);
  for (int j = 5; j >= 0; --j) p = _mm512_fmadd_ps(p, u, coef(j));
  const __m512 y = _mm512_mul_ps(x, p);
  const __mmask16 tail = _mm512_cmp_ps_mask(x, k(-5.625f), _CMP_LT_OQ);
  return tail ? _mm512_mask_mov_ps(y, tail, gelu_erfc(x)) : y;
}

inline __m512 gelu_tanh(__m512 x) {
  // 2z = x (c + 0.044715 c x^2) with c = 2 sqrt(2/pi): three roundings.
  const __m512 z2 = _mm512_mul_ps(x, _mm512_fmadd_ps(k(0.0713548162726f), _mm512_mul_ps(x, x), k(1.5957691216057308f)));
  return _mm512_mul_ps(x, sigmoid(z2));
}

// y[i] = f(x[i]); the tail runs masked, so any n is one pass.
template <typename F>
inline void map(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

}  // namespace avx512
#pragma GCC diagnostic pop
#define KILN_FASTMATH_MAP(vec, scalar)                       \
  avx512::map(x, y, n, [](__m512 v) { return avx512::vec(v); })
#elif defined(__AVX2__) && defined(__FMA__)
namespace avx2 {

// The AVX-512 forms above on 8 lanes, for machines without AVX-512 (AMD's Zen 3): the same
// polynomials; rcp's 12-bit estimate and a Newton step where those take rcp14's (error
// ~1.3e-7 after the step), two exponent factors where those take scalef, and GELU from erfc
// everywhere (no two-register permute for the interval table).
inline __m256 k(float v) { return _mm256_set1_ps(v); }
// The lanes of the last, partial vector of a loop over 8 at a time: `left` of them, or all 8.
inline __m256i tail_mask(int64_t left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(std::min<int64_t>(left, 8))), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline __m256 abs(__m256 x) { return _mm256_andnot_ps(k(-0.0f), x); }
// The sum of the 8 lanes (halves, then pairs), as _mm512_reduce_add_ps for 16.
inline float reduce_add(__m256 v) {
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}
inline __m256 copy_sign(__m256 magnitude, __m256 sign) {
  return _mm256_or_ps(magnitude, _mm256_and_ps(sign, k(-0.0f)));
}
// b where `mask` (a comparison's result) is set, else a.
inline __m256 select(__m256 a, __m256 mask, __m256 b) { return _mm256_blendv_ps(a, b, mask); }
inline __m256 less(__m256 a, __m256 b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
// 1 / d for normal d: a division costs several times as much on 8 lanes.
inline __m256 recip(__m256 d) {
  const __m256 r = _mm256_rcp_ps(d);
  return _mm256_fmadd_ps(r, _mm256_fnmadd_ps(d, r, k(1.0f)), r);
}

inline __m256 sqrt(__m256 x) { return _mm256_sqrt_ps(x); }
inline __m256 floor(__m256 x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
inline __m256 ceil(__m256 x) { return _mm256_round_ps(x, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC); }

inline __m256 minus_n_ln2(__m256 x, __m256 n) {
  return _mm256_fnmadd_ps(n, k(-2.12194440e-4f), _mm256_fnmadd_ps(n, k(0.693359375f), x));
}

// 2^n for integral n in [-150, 128] as two factors, each a normal float: the product rounds
// once, with gradual underflow and overflow to inf.
inline __m256 times_pow2(__m256 v, __m256 n) {
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  auto pow2 = [](__m256i e) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23)); };
  return _mm256_mul_ps(_mm256_mul_ps(v, pow2(n1)), pow2(n2));
}

inline __m256 exp(__m256 x) {
  // max/min return their second operand for NaN, so NaN passes through the clamp.
  x = _mm256_min_ps(k(88.8f), _mm256_max_ps(k(-104.0f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, k(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 r = minus_n_ln2(x, n);
  __m256 p = k(1.985778217e-4f);
  p = _mm256_fmadd_ps(p, r, k(1.393359737e-3f));
  p = _mm256_fmadd_ps(p, r, k(8.333360776e-3f));
  p = _mm256_fmadd_ps(p, r, k(4.166646674e-2f));
  p = _mm256_fmadd_ps(p, r, k(1.666666716e-1f));
  p = _mm256_fmadd_ps(p, r, k(0.5f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
  return times_pow2(_mm256_add_ps(p, k(1.0f)), n);
}

// e^t for t in [-87, 87] only, as avx512::exp_bounded.
inline __m256 exp_bounded(__m256 t) {
  const __m256 shifter = k(12582912.0f);
  const __m256 shifted = _mm256_fmadd_ps(t, k(1.44269504088896341f), shifter);
  const __m256 r = minus_n_ln2(t, _mm256_sub_ps(shifted, shifter));
  __m256 p = k(8.31242e-3f);
  p = _mm256_fmadd_ps(p, r, k(4.189011e-2f));
  p = _mm256_fmadd_ps(p, r, k(1.6667115e-1f));
  p = _mm256_fmadd_ps(p, r, k(4.9999232e-1f));
  p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), k(1.0f));
  const __m256i scale = _mm256_slli_epi32(_mm256_castps_si256(shifted), 23);
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), scale));
}

inline __m256 log(__m256 x) {
  // x = m 2^e with m in [sqrt(1/2), sqrt(2)); subnormals scaled by 2^23 first.
  const __m256 tiny = less(x, k(1.17549435e-38f));
  const __m256 xs = select(x, tiny, _mm256_mul_ps(x, k(8388608.0f)));
  const __m256i bits = _mm256_castps_si256(xs);
  __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127)));
  e = select(e, tiny, _mm256_sub_ps(e, k(23.0f)));
  __m256 m = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffff)), _mm256_set1_epi32(0x3f800000)));
  const __m256 big = _mm256_cmp_ps(m, k(1.41421356f), _CMP_GT_OQ);
  m = select(m, big, _mm256_mul_ps(m, k(0.5f)));
  e = select(e, big, _mm256_add_ps(e, k(1.0f)));
  const __m256 s = _mm256_div_ps(_mm256_sub_ps(m, k(1.0f)), _mm256_add_ps(m, k(1.0f)));
  const __m256 q = _mm256_mul_ps(s, s);
  __m256 p = k(0.2334247828f);
  p = _mm256_fmadd_ps(p, q, k(0.2855037451f));
  p = _mm256_fmadd_ps(p, q, k(0.4000012577f));
  p = _mm256_fmadd_ps(p, q, k(0.6666666865f));
  const __m256 lm = _mm256_fmadd_ps(_mm256_mul_ps(s, q), p, _mm256_add_ps(s, s));
  __m256 res = _mm256_fmadd_ps(e, k(0.693359375f), _mm256_fmadd_ps(e, k(-2.12194440e-4f), lm));
  const __m256 zero = _mm256_setzero_ps();
  res = select(res, less(x, zero), k(NAN));
  res = select(res, _mm256_cmp_ps(x, zero, _CMP_EQ_OQ), k(-INFINITY));
  res = select(res, _mm256_cmp_ps(x, k(INFINITY), _CMP_EQ_OQ), k(INFINITY));
  return select(res, _mm256_cmp_ps(x, x, _CMP_UNORD_Q), x);
}

inline __m256 tanh(__m256 x) {
  const __m256 ax = abs(x);
  const __m256 q = _mm256_mul_ps(x, x);
  __m256 p = k(-6.096923724e-3f);
  p = _mm256_fmadd_ps(p, q, k(2.099734358e-2f));
  p = _mm256_fmadd_ps(p, q, k(-5.385094881e-2f));
  p = _mm256_fmadd_ps(p, q, k(1.333277076e-1f));
  p = _mm256_fmadd_ps(p, q, k(-3.333332837e-1f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(x, q), p, x);
  const __m256 e = exp(_mm256_add_ps(ax, ax));
  const __m256 large = _mm256_sub_ps(k(1.0f), _mm256_div_ps(k(2.0f), _mm256_add_ps(e, k(1.0f))));
  return select(copy_sign(large, x), less(ax, k(0.625f)), small);
}

inline __m256 sigmoid(__m256 x) {
  const __m256 e = exp(_mm256_sub_ps(_mm256_setzero_ps(), abs(x)));
  // A division: rcp and a Newton step moved the ONNX suite's GRU outputs near 0 by 1.3e-7.
  const __m256 r = _mm256_div_ps(k(1.0f), _mm256_add_ps(k(1.0f), e));
  return select(r, less(x, _mm256_setzero_ps()), _mm256_mul_ps(e, r));
}

inline __m256 silu(__m256 x) {
  const __m256 t = _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), x), k(-87.0f)), k(87.0f));
  const __m256 s = recip(_mm256_add_ps(exp_bounded(t), k(1.0f)));
  return _mm256_mul_ps(x, _mm256_and_ps(s, less(t, k(87.0f))));
}

inline __m256 hard_swish(__m256 x) {
  const __m256 g = _mm256_fmadd_ps(x, k(1.0f / 6), k(0.5f));
  return _mm256_mul_ps(x, _mm256_min_ps(_mm256_max_ps(g, _mm256_setzero_ps()), k(1.0f)));
}

inline __m256 erf_small(__m256 x) {
  const __m256 q = _mm256_mul_ps(x, x);
  __m256 p = k(-6.956785219e-4f);
  p = _mm256_fmadd_ps(p, q, k(5.139057524e-3f));
  p = _mm256_fmadd_ps(p, q, k(-2.684484422e-2f));
  p = _mm256_fmadd_ps(p, q, k(1.128354743e-1f));
  p = _mm256_fmadd_ps(p, q, k(-3.761262894e-1f));
  p = _mm256_fmadd_ps(p, q, k(1.128379226f));
  return _mm256_mul_ps(x, p);
}

inline __m256 erfc_large(__m256 t, __m256 t2_hi, __m256 t2_lo) {
  const __m256 u = recip(t);
  const __m256 v = _mm256_fmadd_ps(u, k(1.505376344f), k(-1.150537634f));
  __m256 p = k(-1.004283404e-4f);
  p = _mm256_fmadd_ps(p, v, k(2.566990224e-5f));
  p = _mm256_fmadd_ps(p, v, k(4.793642438e-4f));
  p = _mm256_fmadd_ps(p, v, k(-6.079314626e-4f));
  p = _mm256_fmadd_ps(p, v, k(1.622340205e-4f));
  p = _mm256_fmadd_ps(p, v, k(2.730086853e-4f));
  p = _mm256_fmadd_ps(p, v, k(-1.476637903e-3f));
  p = _mm256_fmadd_ps(p, v, k(4.619563930e-3f));
  p = _mm256_fmadd_ps(p, v, k(-9.325955994e-3f));
  p = _mm256_fmadd_ps(p, v, k(1.099545229e-2f));
  p = _mm256_fmadd_ps(p, v, k(9.273806587e-3f));
  p = _mm256_fmadd_ps(p, v, k(-1.119351313e-1f));
  p = _mm256_fmadd_ps(p, v, k(4.657682180e-1f));
  __m256 ex = exp(_mm256_sub_ps(_mm256_setzero_ps(), t2_hi));
  ex = _mm256_fnmadd_ps(ex, t2_lo, ex);
  return _mm256_mul_ps(_mm256_mul_ps(ex, p), u);
}

inline __m256 erfc_nonneg(__m256 t, __m256 t2_hi, __m256 t2_lo) {
  const __m256 small = _mm256_sub_ps(k(1.0f), erf_small(t));
  return select(erfc_large(t, t2_hi, t2_lo), less(t, k(0.7f)), small);
}

inline __m256 erf(__m256 x) {
  const __m256 ax = abs(x);
  const __m256 t = _mm256_min_ps(k(10.5f), ax);
  const __m256 t2 = _mm256_mul_ps(t, t);
  const __m256 large = copy_sign(_mm256_sub_ps(k(1.0f), erfc_large(t, t2, _mm256_fmsub_ps(t, t, t2))), x);
  return select(large, less(ax, k(0.7f)), erf_small(x));
}

inline __m256 gelu(__m256 x) {
  const __m256 ax = _mm256_min_ps(k(15.0f), abs(x));
  const __m256 x2 = _mm256_mul_ps(ax, ax);
  const __m256 x2_lo = _mm256_fmsub_ps(ax, ax, x2);
  const __m256 c = erfc_nonneg(_mm256_mul_ps(ax, k(0.70710678118654752f)), _mm256_mul_ps(x2, k(0.5f)),
                               _mm256_mul_ps(x2_lo, k(0.5f)));
  const __m256 half_x = _mm256_mul_ps(x, k(0.5f));
  const __m256 pos = _mm256_mul_ps(half_x, _mm256_sub_ps(k(2.0f), c));
  return select(pos, less(x, _mm256_setzero_ps()), _mm256_mul_ps(half_x, c));
}

inline __m256 gelu_tanh(__m256 x) {
  const __m256 z2 = _mm256_mul_ps(x, _mm256_fmadd_ps(k(0.0713548162726f), _mm256_mul_ps(x, x), k(1.5957691216057308f)));
  return _mm256_mul_ps(x, sigmoid(z2));
}

template <typename F>
inline void map(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, f(_mm256_maskload_ps(x + i, m)));
  }
}

}  // namespace avx2
#define KILN_FASTMATH_MAP(vec, scalar) \
  avx2::map(x, y, n, [](__m256 v) { return avx2::vec(v); })
#else
#define KILN_FASTMATH_MAP(vec, scalar) \
  for (int64_t i = 0; i < n; ++i) y[i] = scalar(x[i])
#endif

inline void sqrt(const float* x, float* y, int64_t n) { KILN_FASTMATH_MAP(sqrt, std::sqrt); }
inline void floor(const float* x, float* y, int64_t n) { KILN_FASTMATH_MAP(floor, std::floor); }
inline void ceil(const float* x, float* y, int64_t n) { KILN_FASTMATH_MAP(ceil, std::ceil); }
inline void exp(const float* x, float* y, int64_t n) { KILN_FASTMATH_MAP(exp, std::exp); }
inline void log(const float* x, float* y, int64_t n) { KILN_FASTMATH_MAP(log, std::log); }
inline void tanh(const float* x, float* y, int64_t n) { KILN_FASTMATH_MAP(tanh, std::tanh); }
inline void sigmoid(const float* x, float* y, int64_t n) { KILN_FASTMATH_MAP(sigmoid, sigmoid); }
inline void silu(const float* x, float* y, int64_t n) { KILN_FASTMATH_MAP(silu, silu); }
inline void erf(const float* x, float* y, int64_t n) { KILN_FASTMATH_MAP(erf, std::erf); }
inline void gelu(const float* x, float* y, int64_t n) { KILN_FASTMATH_MAP(gelu, gelu); }
inline void gelu_tanh(const float* x, float* y, int64_t n) { KILN_FASTMATH_MAP(gelu_tanh, gelu_tanh); }

#undef KILN_FASTMATH_MAP

}  // namespace kiln::fastmath
