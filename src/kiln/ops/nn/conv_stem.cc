#include "kiln/ops/nn/conv_stem.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

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

// The thread_scratch slot of a pooled convolution's ring of rows (no other slot is in use then).
constexpr int kRingSlot = 0;

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
  fns[0] = tile<S, broadcast_tile_width(G), G, false, A>;
  fns[1] = tile<S, broadcast_tile_width(G), G, true, A>;
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
  with_act(a, [&]<ConvAct A>() { pick_stride<A>(s, g, fns); });
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

StemConv::Packed StemConv::packed() const {
  return {static_cast<const float*>(f_->get_data_handle()), c_, k_, kh_, kw_};
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

#if defined(__AVX512F__)
namespace {

// Output rows of one convolution, one at a time: what each row's tiles share, set up once per
// thread.
class Rows {
 public:
  Rows(const StemConv::Packed& p, const ConvGeometry& geo, const float* x, const float* bias, ConvAct act, float lo,
       float hi)
      : geo_(geo), x_(x), width_(broadcast_tile_width(int(p.k / 16))), vlo_(_mm512_set1_ps(lo)), vhi_(_mm512_set1_ps(hi)) {
    pick_all(act, geo.window.strides[1], p.k / 16, fns_);
    t_.f = p.f;
    t_.c = p.c;
    t_.k = p.k;
    t_.kh = p.kh;
    t_.kw = p.kw;
    for (int64_t g = 0; g < p.k / 16; ++g) t_.bias[g] = bias ? _mm512_loadu_ps(bias + 16 * g) : _mm512_setzero_ps();
    span_ = (width_ - 1) * geo.window.strides[1] + p.kw;
  }

  // Row `row` (images one after another) of the [N * OH, OW, K] output into `out`.
  void compute(int64_t row, float* out) {
    const int64_t h = geo_.in[0], w = geo_.in[1], oh = geo_.out[0], ow = geo_.out[1];
    const int64_t sw = geo_.window.strides[1], pl = geo_.window.pads_begin[1];
    const int64_t ih0 = row % oh * geo_.window.strides[0] - geo_.window.pads_begin[0];
    t_.kh0 = std::max<int64_t>(0, -ih0);
    t_.kh1 = std::min<int64_t>(t_.kh, h - ih0);
    for (int64_t ow0 = 0; ow0 < ow; ow0 += width_) {
      t_.x = x_ + row / oh * t_.c * h * w;
      t_.h = h;
      t_.w = w;
      t_.ih0 = ih0;
      t_.iw0 = ow0 * sw - pl;
      t_.count = int(std::min(width_, ow - ow0));
      t_.y = out + ow0 * t_.k;
      if (t_.iw0 < 0 || t_.iw0 + span_ > w) copy_edge(t_, span_, copy_);
      fns_[t_.count < width_](t_, vlo_, vhi_);
    }
  }

 private:
  const ConvGeometry& geo_;
  const float* x_;
  int64_t width_, span_;
  __m512 vlo_, vhi_;
  TileFns fns_ = {};
  Tile t_;
  alignas(64) float copy_[4 * kMaxKernel * kSpan];
};

}  // namespace
#endif

void StemConv::run(const ConvGeometry& geo, const float* x, const float* bias, ConvAct act, float lo, float hi,
                   float* y) const {
#if defined(__AVX512F__)
  const int64_t oh = geo.out[0], ow = geo.out[1];
  // Work items are output rows, a few thousand multiply-adds at the least.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, ow * k_ * c_ * kh_ * kw_));
  parallel_for(geo.batch * oh, grain, [&](int64_t begin, int64_t end) {
    Rows rows(packed(), geo, x, bias, act, lo, hi);
    for (int64_t row = begin; row < end; ++row) rows.compute(row, y + row * ow * k_);
  });
#endif
}

void StemConv::run_pooled(const ConvGeometry& geo, const float* x, const float* bias, ConvAct act, float lo, float hi,
                          const Window& pool, const Shape& pooled, float* y) const {
#if defined(__AVX512F__)
  const int64_t oh = geo.out[0], ow = geo.out[1], ph = pooled[0], pw = pooled[1], blocks = k_ / 16;
  const int64_t kh = pool.kernel[0], kw = pool.kernel[1], sh = pool.strides[0], sw = pool.strides[1];
  const int64_t pt = pool.pads_begin[0], pl = pool.pads_begin[1];
  // The convolution rows a thread's pooled rows read, kept in a ring of kh + sh rows: each is
  // computed once per thread (neighbouring pooled rows share kh - sh of them) and read from cache.
  const int64_t ring = kh + sh, row_floats = ow * k_;
  parallel_for(geo.batch * ph, 1, [&](int64_t begin, int64_t end) {
    Rows rows(packed(), geo, x, bias, act, lo, hi);
    float* buf = static_cast<float*>(thread_scratch(kRingSlot, sizeof(float) * size_t(ring * row_floats)));
    std::vector<int64_t> held(size_t(ring), -1);  // the convolution row in each ring slot
    std::vector<const float*> src(static_cast<size_t>(kh));  // the rows of one pooling window
    auto conv_row = [&](int64_t r) {  // r: a row of the whole batch's [N * OH] output
      float* slot = buf + r % ring * row_floats;
      if (held[size_t(r % ring)] != r) {
        rows.compute(r, slot);
        held[size_t(r % ring)] = r;
      }
      return slot;
    };
    for (int64_t prow = begin; prow < end; ++prow) {
      const int64_t img = prow / ph, r0 = prow % ph * sh - pt;
      const int64_t a = std::max<int64_t>(0, r0), b = std::min(oh, r0 + kh);  // the window's rows
      for (int64_t r = a; r < b; ++r) src[size_t(r - a)] = conv_row(img * oh + r);
      float* out = y + prow * pw * k_;
      for (int64_t pc = 0; pc < pw; ++pc) {
        const int64_t c0 = std::max<int64_t>(0, pc * sw - pl), c1 = std::min(ow, pc * sw - pl + kw);
        for (int64_t g = 0; g < blocks; ++g) {
          __m512 m = _mm512_set1_ps(-INFINITY);
          for (int64_t r = 0; r < b - a; ++r)
            for (int64_t c = c0; c < c1; ++c) m = _mm512_max_ps(m, _mm512_load_ps(src[size_t(r)] + c * k_ + 16 * g));
          _mm512_storeu_ps(out + pc * k_ + 16 * g, m);
        }
      }
    }
  });
#endif
}

}  // namespace kiln::nn
