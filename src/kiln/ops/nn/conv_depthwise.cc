#include "kiln/ops/nn/conv_depthwise.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kiln/core/parallel.h"
#include "kiln/ops/math/fast_math.h"

// GCC 12 flags the undefined pass-through operand of unmasked AVX-512 max/min (and the tiles' sums
// array, each element set before use) as uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace kiln::nn {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

#if defined(__AVX512F__)

// Where one tile reads and writes: 16 channels (fewer in the last block, `mask`) of one output
// row, pixels [ow0, ow0 + count).
struct Tile {
  const float* x;  // input image at channel block cb
  const float* f;  // the block's filter taps [kh][kw][16]
  float* y;  // output row at pixel ow0, channel block cb
  int64_t c, w;  // channels (the pixel stride) and input width
  int64_t iw0;  // input column of the first tap of pixel ow0 (negative in the left padding)
  int64_t ih0, kh0, kh1;  // input row of tap row 0; the tap rows inside the image
  int count;
  __mmask16 mask;
  __m512 bias;
};

template <DepthwiseConv::Act A>
inline __m512 activate(__m512 v, __m512 lo, __m512 hi) {
  using Act = DepthwiseConv::Act;
  if constexpr (A == Act::Relu) return _mm512_max_ps(v, _mm512_setzero_ps());
  if constexpr (A == Act::Clip) return _mm512_min_ps(_mm512_max_ps(v, lo), hi);
  if constexpr (A == Act::HardSwish) {
    const __m512 g = _mm512_fmadd_ps(v, _mm512_set1_ps(1.0f / 6), _mm512_set1_ps(0.5f));
    return _mm512_mul_ps(v, _mm512_min_ps(_mm512_max_ps(g, _mm512_setzero_ps()), _mm512_set1_ps(1.0f)));
  }
  if constexpr (A == Act::Silu) return fastmath::avx512::silu(v);
  return v;
}

// One tile of T output pixels, kernel width KW, stride S. Edge: some of the tile's input
// columns lie outside the image (padding, or past the end for a partial tile) and are skipped.
// Masked: the last block of a channel count not a multiple of 16 (masked loads cost a tenth
// more even with every lane set).
template <int KW, int S, int T, bool Edge, bool Masked, DepthwiseConv::Act A>
void tile(const Tile& t, __m512 lo, __m512 hi) {
  constexpr int span = (T - 1) * S + KW;  // input columns the tile reads
  __m512 acc[T];
#pragma GCC unroll 16
  for (int p = 0; p < T; ++p) acc[p] = t.bias;
  for (int64_t kh = t.kh0; kh < t.kh1; ++kh) {
    const float* xr = t.x + ((t.ih0 + kh) * t.w + t.iw0) * t.c;
    __m512 f[KW];
#pragma GCC unroll 8
    for (int k = 0; k < KW; ++k) f[k] = _mm512_load_ps(t.f + (kh * KW + k) * 16);
#pragma GCC unroll 64
    for (int j = 0; j < span; ++j) {
      if (Edge && (t.iw0 + j < 0 || t.iw0 + j >= t.w)) continue;
      const __m512 v = Masked ? _mm512_maskz_loadu_ps(t.mask, xr + j * t.c) : _mm512_loadu_ps(xr + j * t.c);
#pragma GCC unroll 16
      for (int p = 0; p < T; ++p) {
        const int k = j - p * S;
        if (k >= 0 && k < KW) acc[p] = _mm512_fmadd_ps(v, f[k], acc[p]);
      }
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < T; ++p)
    if (!Edge || p < t.count) {
      const __m512 v = activate<A>(acc[p], lo, hi);
      if (Masked)
        _mm512_mask_storeu_ps(t.y + p * t.c, t.mask, v);
      else
        _mm512_storeu_ps(t.y + p * t.c, v);
    }
}

using TileFn = void (*)(const Tile&, __m512, __m512);

template <int KW, int S, int T, DepthwiseConv::Act A>
void pick(TileFn fns[4]) {
  fns[0] = tile<KW, S, T, false, false, A>;
  fns[1] = tile<KW, S, T, true, false, A>;
  fns[2] = tile<KW, S, T, false, true, A>;
  fns[3] = tile<KW, S, T, true, true, A>;
}

// Tile widths: the zoo's rows (112, 56, 28, 14, 7) split evenly into 16s, 14s and 7s.
constexpr int kWidths[] = {4, 7, 8, 14, 16};

template <int KW, int S, DepthwiseConv::Act A>
bool pick_width(int t, TileFn fns[4]) {
  switch (t) {
    case 4: pick<KW, S, 4, A>(fns); return true;
    case 7: pick<KW, S, 7, A>(fns); return true;
    case 8: pick<KW, S, 8, A>(fns); return true;
    case 14: pick<KW, S, 14, A>(fns); return true;
    case 16: pick<KW, S, 16, A>(fns); return true;
  }
  return false;
}

template <DepthwiseConv::Act A>
bool pick_shape(int kw, int s, int t, TileFn fns[4]) {
  if (kw == 3) return s == 1 ? pick_width<3, 1, A>(t, fns) : pick_width<3, 2, A>(t, fns);
  if (kw == 5) return s == 1 ? pick_width<5, 1, A>(t, fns) : pick_width<5, 2, A>(t, fns);
  if (kw == 7) return s == 1 ? pick_width<7, 1, A>(t, fns) : pick_width<7, 2, A>(t, fns);
  return false;
}

bool pick_all(DepthwiseConv::Act a, int kw, int s, int t, TileFn fns[4]) {
  using Act = DepthwiseConv::Act;
  switch (a) {
    case Act::None: return pick_shape<Act::None>(kw, s, t, fns);
    case Act::Relu: return pick_shape<Act::Relu>(kw, s, t, fns);
    case Act::Clip: return pick_shape<Act::Clip>(kw, s, t, fns);
    case Act::HardSwish: return pick_shape<Act::HardSwish>(kw, s, t, fns);
    case Act::Silu: return pick_shape<Act::Silu>(kw, s, t, fns);
  }
  return false;
}

#endif

}  // namespace

bool DepthwiseConv::suits(const ConvGeometry& geo) {
#if defined(__AVX512F__)
  const Window& win = geo.window;
  if (win.rank() != 2 || geo.group != geo.in_channels || geo.out_channels != geo.in_channels) return false;
  const int64_t kw = win.kernel[1];
  return (kw == 3 || kw == 5 || kw == 7) && (win.strides[1] == 1 || win.strides[1] == 2) && win.dilations[0] == 1 &&
         win.dilations[1] == 1;
#else
  return false;
#endif
}

void DepthwiseConv::init(const Tensor& w) {
  const int64_t c = w.dim(0), kh = w.dim(2), kw = w.dim(3), blocks = ceil_div(c, 16);
  const dnnl::memory::desc to = plain_desc({blocks, kh, kw, 16}, DType::Float32);
  f_ = derive_weight(w, plain_desc(w.shape(), DType::Float32), to, [&](dnnl::memory& m) {
    float* f = static_cast<float*>(m.get_data_handle());
    std::memset(f, 0, to.get_size());
    const float* g = w.data<float>();
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < kh * kw; ++k) f[((ch / 16) * kh * kw + k) * 16 + ch % 16] = g[ch * kh * kw + k];
  });
  c_ = c;
  kh_ = kh;
  kw_ = kw;
}

void DepthwiseConv::run(const ConvGeometry& geo, const float* x, const float* bias, Act act, float lo, float hi,
                        float* y) const {
#if defined(__AVX512F__)
  const Window& win = geo.window;
  const int64_t c = c_, h = geo.in[0], w = geo.in[1], oh = geo.out[0], ow = geo.out[1];
  const int64_t sh = win.strides[0], sw = win.strides[1], pt = win.pads_begin[0], pl = win.pads_begin[1];
  const int64_t blocks = ceil_div(c, 16);
  // Tiles of equal width, 16 or fewer: the narrowest listed width that covers a share.
  const int64_t tiles = ceil_div(ow, 16);
  const int64_t share = ceil_div(ow, tiles);
  const int width = *std::find_if(std::begin(kWidths), std::end(kWidths), [&](int t) { return t >= share; });
  TileFn fns[4];
  pick_all(act, int(kw_), int(sw), width, fns);
  const float* f = static_cast<const float*>(f_->get_data_handle());
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);

  // Work items are output rows; a tile takes every channel block in turn, so the whole pixels it
  // reads (C floats each) are used while in L1 (the stride-2 layers over large images read
  // their input once from L3 or memory, block by block, 20% slower).
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, ow * blocks * kh_ * kw_ * 16));
  parallel_for(geo.batch * oh, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t img = row / oh;
      Tile t;
      t.c = c;
      t.w = w;
      t.ih0 = row % oh * sh - pt;
      t.kh0 = std::max<int64_t>(0, -t.ih0);
      t.kh1 = std::min<int64_t>(kh_, h - t.ih0);
      for (int64_t ow0 = 0; ow0 < ow; ow0 += width) {
        t.count = int(std::min<int64_t>(width, ow - ow0));
        t.iw0 = ow0 * sw - pl;
        const bool edge = t.iw0 < 0 || t.iw0 + (width - 1) * sw + kw_ > w || t.count < width;
        for (int64_t cb = 0; cb < blocks; ++cb) {
          const int64_t left = c - cb * 16;
          t.mask = fastmath::avx512::tail_mask(left);
          t.x = x + img * h * w * c + cb * 16;
          t.f = f + cb * kh_ * kw_ * 16;
          t.y = y + (row * ow + ow0) * c + cb * 16;
          t.bias = bias ? _mm512_maskz_loadu_ps(t.mask, bias + cb * 16) : _mm512_setzero_ps();
          fns[2 * (left < 16) + edge](t, vlo, vhi);
        }
      }
    }
  });
#endif
}

}  // namespace kiln::nn
