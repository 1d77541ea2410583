#include "kiln/ops/nn/conv_stem.h"

#include <algorithm>
#include <cstring>

#include "kiln/core/parallel.h"

// GCC 12 flags the undefined pass-through operand of unmasked AVX-512 max/min (and the tiles' sums
// array, each element set before use) as uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// Neighbouring taps of a row read overlapping inputs; GCC's predictive commoning carried them
// from one tap to the next through the stack (spilling the sums) and ran the tiles at a third
// of the speed.
#pragma GCC optimize("no-predictive-commoning")

namespace kiln::nn {
namespace {

#if defined(__AVX512F__)

// Where one tile reads and writes: output pixels [ow0, ow0 + count) of one row, all K channels.
struct Tile {
  const float* x;  // the image's first channel plane
  const float* f;  // the packed taps [C][kh][kw][K]
  float* y;  // output pixel ow0, channel 0
  int64_t c, h, w, k, kh, kw;
  int64_t ih0, kh0, kh1;  // input row of tap row 0; the tap rows inside the image
  int64_t iw0;  // input column of pixel ow0's first tap (negative in the left padding)
  int count;
  __m512 bias[4];
};

// One tile of T pixels over G blocks of 16 output channels, stride S along the row. Partial:
// only the first `count` pixels exist.
template <int S, int T, int G, bool Partial, ConvAct A>
void tile(const Tile& t, __m512 lo, __m512 hi) {
  __m512 acc[T][G];
#pragma GCC unroll 24
  for (int p = 0; p < T; ++p)
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) acc[p][g] = t.bias[g];
  for (int64_t ch = 0; ch < t.c; ++ch)
    for (int64_t i = t.kh0; i < t.kh1; ++i) {
      const float* xr = t.x + (ch * t.h + t.ih0 + i) * t.w + t.iw0;
      const float* fr = t.f + (ch * t.kh + i) * t.kw * t.k;
      for (int64_t j = 0; j < t.kw; ++j, fr += t.k) {
        __m512 f[G];
#pragma GCC unroll 4
        for (int g = 0; g < G; ++g) f[g] = _mm512_load_ps(fr + 16 * g);
#pragma GCC unroll 24
        for (int p = 0; p < T; ++p) {
          const __m512 v = _mm512_set1_ps(xr[p * S + j]);
#pragma GCC unroll 4
          for (int g = 0; g < G; ++g) acc[p][g] = _mm512_fmadd_ps(v, f[g], acc[p][g]);
        }
      }
    }
#pragma GCC unroll 24
  for (int p = 0; p < T; ++p)
    if (!Partial || p < t.count)
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) _mm512_storeu_ps(t.y + p * t.k + 16 * g, activate<A>(acc[p][g], lo, hi));
}

// Pixels per tile: 24 sums beside G filter vectors and the broadcast input.
constexpr int width_of(int g) { return g == 1 ? 24 : g == 2 ? 12 : g == 3 ? 8 : 6; }

// The largest kernel side suits() takes, and the floats of one row of an edge tile's input copy
// (its widest span, (24 - 1) * 2 + kMaxKernel, rounded up to whole vectors).
constexpr int64_t kMaxKernel = 11;
constexpr int64_t kSpan = 64;

// Tile t's input columns, row by row, into `copy` [C][kh][kSpan] with zeros where they lie in
// the padding or past the image's end, and t pointed at it: a tile at a row's ends then runs
// the same code as the others.
void copy_edge(Tile& t, int64_t span, float* copy) {
  for (int64_t ch = 0; ch < t.c; ++ch)
    for (int64_t i = t.kh0; i < t.kh1; ++i) {
      const float* src = t.x + (ch * t.h + t.ih0 + i) * t.w;
      float* dst = copy + (ch * t.kh + i) * kSpan;
      for (int64_t q = 0; q < span; q += 16) {
        const int64_t col = t.iw0 + q;
        const int64_t lo = std::max<int64_t>(0, -col), hi = std::min<int64_t>({16, t.w - col, span - q});
        const __mmask16 m = hi > lo ? __mmask16(((1u << hi) - 1) & ~((1u << lo) - 1)) : __mmask16(0);
        // Lanes outside the mask are not read, wherever they point.
        _mm512_store_ps(dst + q, _mm512_maskz_loadu_ps(m, src + col));
      }
    }
  t.x = copy;
  t.h = t.kh;
  t.w = kSpan;
  t.ih0 = 0;
  t.iw0 = 0;
}

using TileFn = void (*)(const Tile&, __m512, __m512);
using TileFns = TileFn[2];  // by Partial

template <int S, int G, ConvAct A>
void pick(TileFns& fns) {
  fns[0] = tile<S, width_of(G), G, false, A>;
  fns[1] = tile<S, width_of(G), G, true, A>;
}

template <int S, ConvAct A>
void pick_blocks(int64_t g, TileFns& fns) {
  switch (g) {
    case 1: return pick<S, 1, A>(fns);
    case 2: return pick<S, 2, A>(fns);
    case 3: return pick<S, 3, A>(fns);
    default: return pick<S, 4, A>(fns);
  }
}

template <ConvAct A>
void pick_stride(int64_t s, int64_t g, TileFns& fns) {
  if (s == 1)
    pick_blocks<1, A>(g, fns);
  else
    pick_blocks<2, A>(g, fns);
}

void pick_all(ConvAct a, int64_t s, int64_t g, TileFns& fns) {
  switch (a) {
    case ConvAct::None: return pick_stride<ConvAct::None>(s, g, fns);
    case ConvAct::Relu: return pick_stride<ConvAct::Relu>(s, g, fns);
    case ConvAct::Clip: return pick_stride<ConvAct::Clip>(s, g, fns);
    case ConvAct::HardSwish: return pick_stride<ConvAct::HardSwish>(s, g, fns);
    case ConvAct::Silu: return pick_stride<ConvAct::Silu>(s, g, fns);
  }
}

#endif

}  // namespace

bool StemConv::suits(const ConvGeometry& geo) {
#if defined(__AVX512F__)
  const Window& win = geo.window;
  if (win.rank() != 2 || geo.group != 1 || geo.in_channels > 4 || geo.out_channels % 16 != 0 ||
      geo.out_channels > 64 || win.kernel[0] > kMaxKernel || win.kernel[1] > kMaxKernel)
    return false;
  return win.strides[0] >= 1 && (win.strides[1] == 1 || win.strides[1] == 2) && win.dilations[0] == 1 &&
         win.dilations[1] == 1;
#else
  return false;
#endif
}

void StemConv::init(const Tensor& w) {
  const int64_t k = w.dim(0), c = w.dim(1), kh = w.dim(2), kw = w.dim(3);
  const dnnl::memory::desc to = plain_desc({c, kh, kw, k}, DType::Float32);
  f_ = derive_weight(w, plain_desc(w.shape(), DType::Float32), to, [&](dnnl::memory& m) {
    float* f = static_cast<float*>(m.get_data_handle());
    const float* g = w.data<float>();
    for (int64_t o = 0; o < k; ++o)
      for (int64_t t = 0; t < c * kh * kw; ++t) f[t * k + o] = g[o * c * kh * kw + t];
  });
  c_ = c;
  k_ = k;
  kh_ = kh;
  kw_ = kw;
}

void StemConv::run(const ConvGeometry& geo, const float* x, const float* bias, ConvAct act, float lo, float hi,
                   float* y) const {
#if defined(__AVX512F__)
  const Window& win = geo.window;
  const int64_t h = geo.in[0], w = geo.in[1], oh = geo.out[0], ow = geo.out[1];
  const int64_t sh = win.strides[0], sw = win.strides[1], pt = win.pads_begin[0], pl = win.pads_begin[1];
  const int64_t blocks = k_ / 16, width = width_of(int(blocks));
  TileFns fns = {};
  pick_all(act, sw, blocks, fns);
  const float* f = static_cast<const float*>(f_->get_data_handle());
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  __m512 vbias[4];
  for (int64_t g = 0; g < blocks; ++g) vbias[g] = bias ? _mm512_loadu_ps(bias + 16 * g) : _mm512_setzero_ps();

  // Work items are output rows, a few thousand multiply-adds at the least.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, ow * k_ * c_ * kh_ * kw_));
  parallel_for(geo.batch * oh, grain, [&](int64_t begin, int64_t end) {
    Tile t;
    t.f = f;
    t.c = c_;
    t.k = k_;
    t.kh = kh_;
    t.kw = kw_;
    std::copy(vbias, vbias + blocks, t.bias);
    alignas(64) float copy[4 * kMaxKernel * kSpan];
    const int64_t span = (width - 1) * sw + kw_;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t ih0 = row % oh * sh - pt;
      t.kh0 = std::max<int64_t>(0, -ih0);
      t.kh1 = std::min<int64_t>(kh_, h - ih0);
      for (int64_t ow0 = 0; ow0 < ow; ow0 += width) {
        t.x = x + row / oh * c_ * h * w;
        t.h = h;
        t.w = w;
        t.ih0 = ih0;
        t.iw0 = ow0 * sw - pl;
        t.count = int(std::min(width, ow - ow0));
        t.y = y + (row * ow + ow0) * k_;
        if (t.iw0 < 0 || t.iw0 + span > w) copy_edge(t, span, copy);
        fns[t.count < width](t, vlo, vhi);
      }
    }
  });
#endif
}

}  // namespace kiln::nn
