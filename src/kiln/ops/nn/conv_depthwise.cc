#include "kiln/ops/nn/conv_depthwise.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <numeric>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/ops/math/fast_math.h"

// GCC 12 flags the undefined pass-through operand of unmasked AVX-512 max/min (and the tiles' sums
// array, each element set before use) as uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace kiln::nn {
namespace {

constexpr int kSumSlot = 5;  // thread_scratch slot of the per-chunk output sums

#if defined(KILN_VEC)

// A block of 16 channels: one AVX-512 register, or two AVX2 ones.
#if defined(__AVX512F__)
using V = __m512;
using Mask = __mmask16;
constexpr bool kWide = true;
inline V vzero() { return _mm512_setzero_ps(); }
inline V vset1(float f) { return _mm512_set1_ps(f); }
inline V vload(const float* p) { return _mm512_load_ps(p); }
inline V vloadu(const float* p) { return _mm512_loadu_ps(p); }
inline V vloadu(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
inline void vstoreu(float* p, V v) { _mm512_storeu_ps(p, v); }
inline void vstoreu(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
inline Mask vmask(int64_t left) { return fastmath::avx512::tail_mask(left); }
inline Mask vall() { return __mmask16(0xffff); }
template <ConvAct A>
V vact(V v, V lo, V hi) {
  return activate<A>(v, lo, hi);
}
#else
struct V {
  __m256 l, h;
};
struct Mask {
  __m256i l, h;
};
constexpr bool kWide = false;
inline V vzero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
inline V vset1(float f) { return {_mm256_set1_ps(f), _mm256_set1_ps(f)}; }
inline V vload(const float* p) { return {_mm256_load_ps(p), _mm256_load_ps(p + 8)}; }
inline V vloadu(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
inline V vloadu(Mask m, const float* p) { return {_mm256_maskload_ps(p, m.l), _mm256_maskload_ps(p + 8, m.h)}; }
inline void vstoreu(float* p, V v) {
  _mm256_storeu_ps(p, v.l);
  _mm256_storeu_ps(p + 8, v.h);
}
inline void vstoreu(float* p, Mask m, V v) {
  _mm256_maskstore_ps(p, m.l, v.l);
  _mm256_maskstore_ps(p + 8, m.h, v.h);
}
inline V vfma(V a, V b, V c) { return {_mm256_fmadd_ps(a.l, b.l, c.l), _mm256_fmadd_ps(a.h, b.h, c.h)}; }
inline V vadd(V a, V b) { return {_mm256_add_ps(a.l, b.l), _mm256_add_ps(a.h, b.h)}; }
inline Mask vmask(int64_t left) { return {fastmath::avx2::tail_mask(left), fastmath::avx2::tail_mask(left - 8)}; }
inline Mask vall() { return vmask(16); }
template <ConvAct A>
V vact(V v, V lo, V hi) {
  return {activate<A>(v.l, lo.l, hi.l), activate<A>(v.h, lo.h, hi.h)};
}
#endif

// Where one tile reads and writes: G blocks of 16 channels (fewer in the last one, `mask`) of
// one output row, pixels [ow0, ow0 + count).
struct Tile {
  const float* x;  // input image at the first channel block
  const float* f;  // the first block's filter taps [kh][kw][16]; the next block's follow
  float* y;  // output row at pixel ow0, first channel block
  int64_t c, w;  // channels (the pixel stride) and input width
  int64_t fstride;  // floats from one block's taps to the next's
  int64_t iw0;  // input column of the first tap of pixel ow0 (negative in the left padding)
  int64_t ih0, kh0, kh1;  // input row of tap row 0; the tap rows inside the image
  int count;
  Mask mask;
  V bias[4];
  float* sums;  // per-channel sums of the outputs, at the first channel block, or null
};

// One tile of T output pixels over G channel blocks, kernel width KW, stride S. Edge: some of
// the tile's input columns lie outside the image (padding, or past the end for a partial tile)
// and are skipped. Masked: the last block is that of a channel count not a multiple of 16
// (masked loads cost a tenth more even with every lane set).
template <int KW, int S, int T, int G, bool Edge, bool Masked, ConvAct A>
void tile(const Tile& t, V lo, V hi) {
  constexpr int span = (T - 1) * S + KW;  // input columns the tile reads
  V acc[T][G];
#pragma GCC unroll 16
  for (int p = 0; p < T; ++p)
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) acc[p][g] = t.bias[g];
  for (int64_t kh = t.kh0; kh < t.kh1; ++kh) {
    const float* xr = t.x + ((t.ih0 + kh) * t.w + t.iw0) * t.c;
    V f[KW][G];
#pragma GCC unroll 8
    for (int k = 0; k < KW; ++k)
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) f[k][g] = vload(t.f + g * t.fstride + (kh * KW + k) * 16);
#pragma GCC unroll 64
    for (int j = 0; j < span; ++j) {
      if (Edge && (t.iw0 + j < 0 || t.iw0 + j >= t.w)) continue;
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) {
        const float* src = xr + j * t.c + g * 16;
        const V v = Masked && g == G - 1 ? vloadu(t.mask, src) : vloadu(src);
#pragma GCC unroll 16
        for (int p = 0; p < T; ++p) {
          const int k = j - p * S;
          if (k >= 0 && k < KW) acc[p][g] = vfma(v, f[k][g], acc[p][g]);
        }
      }
    }
  }
  V total[G];
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g) total[g] = vzero();
#pragma GCC unroll 16
  for (int p = 0; p < T; ++p)
    if (!Edge || p < t.count)
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) {
        const V v = vact<A>(acc[p][g], lo, hi);
        total[g] = vadd(total[g], v);
        float* dst = t.y + p * t.c + g * 16;
        if (Masked && g == G - 1)
          vstoreu(dst, t.mask, v);
        else
          vstoreu(dst, v);
      }
  if (t.sums)  // lanes past C are sums of zero-padded filters: kept, never read
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g)
      vstoreu(t.sums + g * 16, vadd(vloadu(t.sums + g * 16), total[g]));
}

using TileFn = void (*)(const Tile&, V, V);

// A tile's variants by [G - 1][2 * Masked + Edge].
using TileFns = TileFn[4][4];

// Fills the variants of tiles over 1 to G blocks.
template <int KW, int S, int T, int G, ConvAct A>
void pick(TileFns& fns) {
  if constexpr (G > 1) pick<KW, S, T, G - 1, A>(fns);
  fns[G - 1][0] = tile<KW, S, T, G, false, false, A>;
  fns[G - 1][1] = tile<KW, S, T, G, true, false, A>;
  fns[G - 1][2] = tile<KW, S, T, G, false, true, A>;
  fns[G - 1][3] = tile<KW, S, T, G, true, true, A>;
}

// Blocks per tile, as many as the registers hold beside the sums and the filter taps where that
// was measured faster. A tile over several blocks reads each input pixel's channels as one run
// of cache lines; one block of 64-channel pixels reads every fourth line, which the prefetchers
// follow poorly: tiles of 14 pixels over one block ran 1.3-2x slower at stride 2 and 3x3 stride
// 1, from cache and from memory alike. At 5x5 and 7x7 stride 1 wide tiles of one block are as
// fast (fewer loads per multiply-add).
// With AVX2 (16 registers, two a block) a tile takes one block of 4 pixels.
constexpr int group_of(int kw, int s) {
  return !kWide ? 1 : s == 2 ? (kw == 3 ? 4 : kw == 5 ? 3 : 2) : (kw == 3 ? 2 : 1);
}

// Tile widths: stride 2 takes 4 pixels (16 sums over 4 blocks); at stride 1 the zoo's rows (112,
// 56, 28, 14, 7) split evenly into 16s, 14s, 8s and 7s, up to 8 over 2 blocks.
constexpr int kStride2Width = 4;
constexpr int kWidths[] = {4, 7, 8, 14, 16};
constexpr int widest(int group) { return !kWide ? 4 : group > 1 ? 8 : 16; }

// The picks below cover every shape suits() takes and every width run() chooses (from
// kWidths, at most widest(group)).
template <int KW, ConvAct A>
void pick_width(int t, TileFns& fns) {
  constexpr int G = group_of(KW, 1);
  switch (t) {
    case 4: pick<KW, 1, 4, G, A>(fns); return;
    case 7: pick<KW, 1, 7, G, A>(fns); return;
    case 8: pick<KW, 1, 8, G, A>(fns); return;
  }
  if constexpr (widest(G) > 8) {
    switch (t) {
      case 14: pick<KW, 1, 14, G, A>(fns); return;
      case 16: pick<KW, 1, 16, G, A>(fns); return;
    }
  }
}

template <int KW, ConvAct A>
void pick_stride(int s, int t, TileFns& fns) {
  if (s == 2)
    pick<KW, 2, kStride2Width, group_of(KW, 2), A>(fns);
  else
    pick_width<KW, A>(t, fns);
}

template <ConvAct A>
void pick_shape(int kw, int s, int t, TileFns& fns) {
  if (kw == 3) pick_stride<3, A>(s, t, fns);
  if (kw == 5) pick_stride<5, A>(s, t, fns);
  if (kw == 7) pick_stride<7, A>(s, t, fns);
}

void pick_all(ConvAct a, int kw, int s, int t, TileFns& fns) {
  with_act(a, [&]<ConvAct A>() { pick_shape<A>(kw, s, t, fns); });
}

#endif

}  // namespace

bool DepthwiseConv::suits(const ConvGeometry& geo) {
#if defined(KILN_VEC)
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

void DepthwiseConv::run(const ConvGeometry& geo, const float* x, const float* bias, ConvAct act, float lo, float hi,
                        float* y, float* sums) const {
#if defined(KILN_VEC)
  const Window& win = geo.window;
  const int64_t c = c_, h = geo.in[0], w = geo.in[1], oh = geo.out[0], ow = geo.out[1];
  const int64_t sh = win.strides[0], sw = win.strides[1], pt = win.pads_begin[0], pl = win.pads_begin[1];
  const int64_t blocks = ceil_div(c, 16);
  const int64_t group = group_of(int(kw_), int(sw));
  // Stride 1: tiles of equal width, the narrowest listed width that covers a share.
  const int64_t share = ceil_div(ow, ceil_div(ow, widest(int(group))));
  const int width = sw == 2 ? kStride2Width
                            : *std::find_if(std::begin(kWidths), std::end(kWidths), [&](int t) { return t >= share; });
  TileFns fns = {};
  pick_all(act, int(kw_), int(sw), width, fns);
  const float* f = static_cast<const float*>(f_->get_data_handle());
  const V vlo = vset1(lo), vhi = vset1(hi);

  // Sums: each chunk of rows sums its outputs per image and channel (padded to whole blocks)
  // in a slot of its own; the slots are added in the order of their rows.
  // Work items are output rows; a tile takes every channel group in turn, so the whole pixels it
  // reads (C floats each) are used while in L1.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, ow * blocks * kh_ * kw_ * 16));
  const int64_t padded = blocks * 16, chunks = parallel_pieces(geo.batch * oh, grain);
  float* slots = nullptr;
  std::vector<int64_t> first_row(size_t(chunks), -1);
  std::atomic<int> next_slot{0};
  if (sums) {
    slots = static_cast<float*>(thread_scratch(kSumSlot, sizeof(float) * size_t(chunks * geo.batch * padded)));
    std::fill(slots, slots + chunks * geo.batch * padded, 0.f);
  }
  parallel_for(geo.batch * oh, grain, [&](int64_t begin, int64_t end) {
    float* mine = nullptr;
    if (slots) {  // parallel_for makes at most `chunks` calls
      const int slot = next_slot.fetch_add(1);
      first_row[size_t(slot)] = begin;
      mine = slots + slot * geo.batch * padded;
    }
    for (int64_t row = begin; row < end; ++row) {
      const int64_t img = row / oh;
      Tile t;
      t.c = c;
      t.w = w;
      t.fstride = kh_ * kw_ * 16;
      t.ih0 = row % oh * sh - pt;
      t.kh0 = std::max<int64_t>(0, -t.ih0);
      t.kh1 = std::min<int64_t>(kh_, h - t.ih0);
      for (int64_t ow0 = 0; ow0 < ow; ow0 += width) {
        t.count = int(std::min<int64_t>(width, ow - ow0));
        t.iw0 = ow0 * sw - pl;
        const bool edge = t.iw0 < 0 || t.iw0 + (width - 1) * sw + kw_ > w || t.count < width;
        for (int64_t cb = 0; cb < blocks; cb += group) {
          const int64_t g = std::min(group, blocks - cb);
          const int64_t left = c - (cb + g - 1) * 16;  // channels in the group's last block
          t.mask = vmask(left);
          t.x = x + img * h * w * c + cb * 16;
          t.f = f + cb * t.fstride;
          t.y = y + (row * ow + ow0) * c + cb * 16;
          t.sums = mine ? mine + img * padded + cb * 16 : nullptr;
          for (int64_t i = 0; i < g; ++i)
            t.bias[i] = bias ? vloadu(i == g - 1 ? t.mask : vall(), bias + (cb + i) * 16) : vzero();
          fns[g - 1][2 * (left < 16) + edge](t, vlo, vhi);
        }
      }
    }
  });
  if (sums) {
    std::vector<int> order(size_t(next_slot.load()));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return first_row[size_t(a)] < first_row[size_t(b)]; });
    for (int64_t img = 0; img < geo.batch; ++img)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int k : order) sums[img * c + ch] += slots[(k * geo.batch + img) * padded + ch];
  }
#endif
}

}  // namespace kiln::nn
