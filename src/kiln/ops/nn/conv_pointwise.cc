#include "kiln/ops/nn/conv_pointwise.h"

#include <algorithm>
#include <cstring>

#include "kiln/core/parallel.h"

// GCC 12 flags the undefined pass-through operand of unmasked AVX-512 max/min (and the tiles' sums
// array, each element set before use) as uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace kiln::nn {
namespace {

constexpr int64_t kVec = 16;

#if defined(__AVX512F__)

// Where one tile reads and writes: pixels [0, count) from x, a group of output channels.
struct Tile {
  const float* x;  // the tile's first pixel, channel 0
  const float* f;  // the packed filters [C][kp] at the group's first output channel
  float* y;  // the tile's first pixel at the group's first output channel
  int64_t c, kp, k;  // input channels; floats per packed row; output channels (Y's pixel stride)
  int count;
  __m512 bias[4];
  __mmask16 mask[4];  // the output channels of each vector that exist
};

// T pixels by G vectors of 16 output channels, sums over all C input channels in registers.
// Partial: only the first `count` pixels exist (and are read).
template <int T, int G, bool Partial, ConvAct A>
void tile(const Tile& t, __m512 lo, __m512 hi) {
  __m512 acc[T][G];
#pragma GCC unroll 24
  for (int p = 0; p < T; ++p)
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) acc[p][g] = t.bias[g];
  for (int64_t ch = 0; ch < t.c; ++ch) {
    __m512 f[G];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) f[g] = _mm512_loadu_ps(t.f + ch * t.kp + kVec * g);
#pragma GCC unroll 24
    for (int p = 0; p < T; ++p) {
      if (Partial && p >= t.count) break;
      const __m512 v = _mm512_set1_ps(t.x[p * t.c + ch]);
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) acc[p][g] = _mm512_fmadd_ps(v, f[g], acc[p][g]);
    }
  }
#pragma GCC unroll 24
  for (int p = 0; p < T; ++p)
    if (!Partial || p < t.count)
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g)
        _mm512_mask_storeu_ps(t.y + p * t.k + kVec * g, t.mask[g], activate<A>(acc[p][g], lo, hi));
}

using TileFn = void (*)(const Tile&, __m512, __m512);
struct TileFns {
  TileFn fn[5][2];  // by G (1-4), then Partial
};

template <int G, ConvAct A>
void pick(TileFns& fns) {
  fns.fn[G][0] = tile<broadcast_tile_width(G), G, false, A>;
  fns.fn[G][1] = tile<broadcast_tile_width(G), G, true, A>;
}

template <ConvAct A>
void pick_blocks(TileFns& fns) {
  pick<1, A>(fns);
  pick<2, A>(fns);
  pick<3, A>(fns);
  pick<4, A>(fns);
}

TileFns pick_all(ConvAct a) {
  TileFns fns{};
  with_act(a, [&]<ConvAct A>() { pick_blocks<A>(fns); });
  return fns;
}

// Vectors per group of output channels: four, or three where that divides them evenly (8-pixel
// tiles instead of 6), the remainder last.
int group_of(int64_t vecs, int64_t done) {
  const int64_t left = vecs - done;
  if (vecs % 4 != 0 && vecs % 3 == 0) return 3;
  return int(std::min<int64_t>(4, left));
}

#endif

}  // namespace

bool PointwiseConv::suits(const ConvGeometry& geo) {
#if defined(__AVX512F__)
  const Window& win = geo.window;
  if (win.rank() != 2 || geo.group != 1 || geo.in_channels > kMaxChannels || geo.in_channels < 1) return false;
  for (size_t d = 0; d < 2; ++d)
    if (win.kernel[d] != 1 || win.strides[d] != 1 || win.dilations[d] != 1 || win.pads_begin[d] != 0 ||
        win.pads_end[d] != 0)
      return false;
  return true;
#else
  return false;
#endif
}

void PointwiseConv::init(const Tensor& w) {
  const int64_t k = w.dim(0), c = w.dim(1), kp = (k + kVec - 1) / kVec * kVec;
  const dnnl::memory::desc to = plain_desc({c, kp}, DType::Float32);
  f_ = derive_weight(w, plain_desc(w.shape(), DType::Float32), to, [&](dnnl::memory& m) {
    float* f = static_cast<float*>(m.get_data_handle());
    const float* g = w.data<float>();
    std::memset(f, 0, to.get_size());
    for (int64_t o = 0; o < k; ++o)
      for (int64_t ch = 0; ch < c; ++ch) f[ch * kp + o] = g[o * c + ch];
  });
  c_ = c;
  k_ = k;
}

void PointwiseConv::run(const ConvGeometry& geo, const float* x, const float* bias, ConvAct act, float lo, float hi,
                        float* y) const {
#if defined(__AVX512F__)
  const int64_t pixels = geo.batch * geo.out[0] * geo.out[1], c = c_, k = k_;
  const int64_t kp = (k + kVec - 1) / kVec * kVec, vecs = kp / kVec;
  const float* f = static_cast<const float*>(f_->get_data_handle());
  const TileFns fns = pick_all(act);
  // Work items of pixels whose outputs fill about 64 KB (whole 24-pixel tiles): a group of
  // output channels after another over them while their inputs stay in L1.
  const int64_t chunk = std::max<int64_t>(24, (int64_t(1) << 16) / (4 * k) / 24 * 24);
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  parallel_for(ceil_div(pixels, chunk), 1, [&](int64_t begin, int64_t end) {
    Tile t;
    t.c = c;
    t.kp = kp;
    t.k = k;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t p0 = item * chunk, p1 = std::min(pixels, p0 + chunk);
      for (int64_t v0 = 0; v0 < vecs;) {
        const int g = group_of(vecs, v0), width = broadcast_tile_width(g);
        t.f = f + v0 * kVec;
        for (int i = 0; i < g; ++i) {
          const int64_t o = (v0 + i) * kVec;
          t.mask[i] = fastmath::avx512::tail_mask(k - o);
          t.bias[i] = bias ? _mm512_maskz_loadu_ps(t.mask[i], bias + o) : _mm512_setzero_ps();
        }
        for (int64_t p = p0; p < p1; p += width) {
          t.x = x + p * c;
          t.y = y + p * k + v0 * kVec;
          t.count = int(std::min<int64_t>(width, p1 - p));
          fns.fn[g][t.count < width](t, vlo, vhi);
        }
        v0 += g;
      }
    }
  });
#endif
}

}  // namespace kiln::nn
