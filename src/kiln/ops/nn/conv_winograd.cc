#include "kiln/ops/nn/conv_winograd.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kiln/core/parallel.h"
#include "kiln/ops/common/vec.h"
#include "kiln/ops/math/packed_gemm.h"

// GCC 12 flags the undefined pass-through operand of unmasked AVX-512 max as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace kiln::nn {
namespace {

constexpr int64_t kOut = 2, kIn = 4;  // a tile's outputs and inputs per side
constexpr int64_t kPoints = kIn * kIn;  // points of the transformed domain
// Floats between one point's rows and the next's beyond the rows themselves: with power-of-two
// strides the 16 points of a tile fall in one L1 set and evict each other (the input transform
// took 20-40% longer without).
constexpr int64_t kSkew = 16;

// The tile transforms take a vector of channels at a time (kiln/ops/common/vec.h: 16 with
// AVX-512, 8 with AVX2); the transformed filters come in packed_gemm's panels, 64 filters wide
// with AVX-512, 16 with AVX2.
#if defined(__AVX512F__)
constexpr int64_t kPanel = 64;
#else
constexpr int64_t kPanel = 16;
#endif

// A block of tiles is sized for 2 MB of L2 per core (the Xeons Kiln was first tuned on). A Zen 3
// core has 512 KB, yet the same blocks measured best there (its 32 MB L3 holds them): ResNet-50's
// 64 channels at 56x56, 1 thread, 1.56 ms in blocks of 64-96 tiles, 1.63-1.69 in blocks of 36,
// 1.9-2.0 in blocks of 12-16; its 256 at 14x14 1.25 ms in one block of 49, 1.43 in blocks of 18.
constexpr int64_t kL2Bytes = int64_t(2) << 20;
constexpr int64_t kBlockBytes = kL2Bytes / 4;

// Bytes of one tile's transformed input and products against `filters` output channels.
constexpr int64_t tile_bytes(int64_t c, int64_t filters) { return int64_t(sizeof(float)) * kPoints * (c + filters); }
// The most tiles a block takes (see run): a quarter of L2's worth, or all of a thread's `share`
// where those fit in L2 whole.
int64_t block_rows(int64_t share, int64_t bytes) {
  return std::max(kBlockBytes / bytes, share * bytes <= kL2Bytes ? share : 0);
}

// F(2, 3) interpolates at 0, 1 and -1 (Lavin and Gray's matrices).
// G g for one filter column (g0, g1, g2) -> 4 values.
void filter_1d(const double g[3], double r[kIn]) {
  r[0] = g[0];
  r[1] = (g[0] + g[1] + g[2]) / 2;
  r[2] = (g[0] - g[1] + g[2]) / 2;
  r[3] = g[2];
}

#if defined(KILN_VEC)
using V = Vec::V;
constexpr int64_t kLanes = Vec::kLanes;

// B^T d for four vectors of channels.
inline void input_1d(const V d[kIn], V t[kIn]) {
  t[0] = Vec::sub(d[0], d[2]);
  t[1] = Vec::add(d[1], d[2]);
  t[2] = Vec::sub(d[2], d[1]);
  t[3] = Vec::sub(d[1], d[3]);
}

// A^T m for four vectors -> two.
inline void output_1d(const V m[kIn], V o[kOut]) {
  o[0] = Vec::add(Vec::add(m[0], m[1]), m[2]);
  o[1] = Vec::sub(Vec::sub(m[1], m[2]), m[3]);
}

// B^T d B for one tile of a vector of channels, d(i, j) at d + i * rs + j * cs; point p of the
// result goes to v + p * vs.
inline void input_tile(const float* d, int64_t rs, int64_t cs, float* v, int64_t vs) {
  V t[kIn][kIn];
  for (int j = 0; j < kIn; ++j) {
    V col[kIn], out[kIn];
    for (int i = 0; i < kIn; ++i) col[i] = Vec::load(d + i * rs + j * cs);
    input_1d(col, out);
    for (int i = 0; i < kIn; ++i) t[i][j] = out[i];
  }
  for (int i = 0; i < kIn; ++i) {
    V out[kIn];
    input_1d(t[i], out);
    for (int j = 0; j < kIn; ++j) Vec::store(v + (i * kIn + j) * vs, out[j]);
  }
}

// A^T m A for one tile of a vector of channels, point p of m at m + p * ms.
inline void output_tile(const float* m, int64_t ms, V y[kOut][kOut]) {
  V t[kOut][kIn];
  for (int j = 0; j < kIn; ++j) {
    V col[kIn], out[kOut];
    for (int i = 0; i < kIn; ++i) col[i] = Vec::load(m + (i * kIn + j) * ms);
    output_1d(col, out);
    for (int i = 0; i < kOut; ++i) t[i][j] = out[i];
  }
  for (int i = 0; i < kOut; ++i) output_1d(t[i], y[i]);
}

// The thread_scratch slot of one block's transformed input and products: past Relayout's
// three, which a convolution on Winograd does not use but its thread may hold.
constexpr int kScratchSlot = 3;

#endif

}  // namespace

bool WinogradConv::suits(const ConvGeometry& geo) {
#if defined(KILN_VEC)
  const Window& win = geo.window;
  if (win.rank() != 2 || geo.group != 1 || geo.in_channels % 16 != 0 || geo.out_channels % 16 != 0) return false;
  for (size_t d = 0; d < 2; ++d)
    if (win.kernel[d] != 3 || win.strides[d] != 1 || win.dilations[d] != 1) return false;
  // Measured against oneDNN's direct convolution, per layer. AVX-512 (a Xeon): 16 input channels
  // make products too short to pay for the transforms (SqueezeNet's 55x55: 0.96-0.99 of the
  // time); a block of tiles (see run) must hold 16 rows and more (ResNet-50's 512 channels at
  // 7x7: 16 tiles in one block 1.09 at batch 1, blocks of 8 tiles slower at batch 8), and 49
  // tiles and more take 0.55-0.8 (ResNet-50's 256 channels at 14x14, 49 tiles in one block:
  // 0.78). AVX2 (a Zen 3, whose oneDNN kernels are slower beside their reorders to the blocked
  // layout): ResNet-50's 3x3 layers take 0.5-0.6 of the time at 56x56 to 14x14 and about 0.7
  // at 7x7 (16 tiles), SqueezeNet's 16 -> 64 at 55x55 0.92.
#if defined(__AVX512F__)
  constexpr int64_t kMinChannels = 32, kMinTiles = 49;
#else
  constexpr int64_t kMinChannels = 16, kMinTiles = 16;
#endif
  const int64_t tiles = geo.batch * ceil_div(geo.out[0], kOut) * ceil_div(geo.out[1], kOut);
  const int64_t rows = block_rows(tiles, tile_bytes(geo.in_channels, ceil_div(geo.out_channels, kPanel) * kPanel));
  return geo.in_channels >= kMinChannels && tiles >= kMinTiles && rows >= 16;
#else
  return false;
#endif
}

void WinogradConv::init(const Tensor& w) {
  const int64_t k = w.dim(0), c = w.dim(1), panels = ceil_div(k, kPanel);
  const dnnl::memory::desc to = plain_desc({kPoints, panels, c, kPanel}, DType::Float32);
  u_ = derive_weight(w, plain_desc(w.shape(), DType::Float32), to, [&](dnnl::memory& m) {
    float* u = static_cast<float*>(m.get_data_handle());
    std::memset(u, 0, to.get_size());
    const float* g = w.data<float>();
    parallel_for(k * c, 64, [&](int64_t begin, int64_t end) {
      for (int64_t f = begin; f < end; ++f) {
        const int64_t kk = f / c, cc = f % c;
        double t[kIn][3], col[3], out[kIn];
        for (int j = 0; j < 3; ++j) {  // G g: the columns
          for (int i = 0; i < 3; ++i) col[i] = g[f * 9 + i * 3 + j];
          filter_1d(col, out);
          for (int i = 0; i < kIn; ++i) t[i][j] = out[i];
        }
        for (int i = 0; i < kIn; ++i) {  // (G g) G^T: the rows
          filter_1d(t[i], out);
          for (int j = 0; j < kIn; ++j)
            u[((int64_t(i * kIn + j) * panels + kk / kPanel) * c + cc) * kPanel + kk % kPanel] = float(out[j]);
        }
      }
    });
  });
  c_ = c;
  k_ = k;
}

void WinogradConv::run(const ConvGeometry& geo, const float* x, const float* bias, const float* z, bool relu,
                       float* y) const {
#if defined(KILN_VEC)
  const int64_t c = c_, k = k_, h = geo.in[0], w = geo.in[1], oh = geo.out[0], ow = geo.out[1];
  const int64_t pt = geo.window.pads_begin[0], pl = geo.window.pads_begin[1];
  const int64_t th = ceil_div(oh, kOut), tw = ceil_div(ow, kOut), tiles = geo.batch * th * tw;
  const int64_t panels = ceil_div(k, kPanel);
  const float* u = static_cast<const float*>(u_->get_data_handle());
  const int threads = num_threads();
  // Few tiles (a small image): threads split the filters rather than leave each a handful of
  // rows, and each reads only its share of the transformed filters. So too where those filters
  // outgrow half of L2 and a thread would have fewer than 32 tiles (ResNet-50's 256 channels at
  // 14x14, 2 threads: 3.1 -> 2.7 ms over the five layers; SqueezeNet's 64 -> 256 at 13x13, 1 MB
  // of filters, 0.24 -> 0.22; its 48 -> 192, 0.6 MB, slower split: 0.14 -> 0.18).
  const bool big = kPoints * c * panels * kPanel * int64_t(sizeof(float)) >= kL2Bytes / 2;
  const bool split = tiles < 24 * threads || (big && tiles < 32 * threads);
  const int64_t kparts = threads > 1 && split ? std::min<int64_t>(panels, threads) : 1;
  const int64_t part_panels = ceil_div(panels, kparts);
  // A block's transformed input and products, 16 x rows x (C + filters) floats, in a quarter
  // of L2 (ResNet-50's stages 1-2: products 5-6% faster than with an eighth or a half). But
  // each block streams the transformed filters (16/9 of W) anew: where a thread's tiles fit
  // in L2 whole they are one block (ResNet-50's 256-channel 14x14, 49 tiles in blocks of 16:
  // 1.15 ms a layer, the same as oneDNN's direct convolution; in one block 0.89).
  const int64_t share = kparts == 1 ? ceil_div(tiles, threads) : tiles;
  const int64_t max_rows = std::max<int64_t>(6, block_rows(share, tile_bytes(c, part_panels * kPanel)));
  int64_t blocks = ceil_div(tiles, max_rows);
  if (kparts == 1) blocks = std::min(tiles, ceil_div(blocks, threads) * threads);
  const int64_t rows = ceil_div(tiles, blocks);

  parallel_for(blocks * kparts, 1, [&](int64_t begin, int64_t end) {
    float* v = static_cast<float*>(
        thread_scratch(kScratchSlot, sizeof(float) * size_t(kPoints * (rows * (c + part_panels * kPanel) + 2 * kSkew))));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t0 = item / kparts * rows, t1 = std::min(tiles, t0 + rows), m = t1 - t0;
      const int64_t p0 = item % kparts * part_panels, p1 = std::min(panels, p0 + part_panels);
      if (m <= 0 || p0 >= p1) continue;
      const int64_t k0 = p0 * kPanel, kw = std::min(k, p1 * kPanel) - k0;
      const int64_t vs = m * c + kSkew, ps = m * kw + kSkew;  // point strides
      float* prod = v + kPoints * vs;

      for (int64_t t = t0; t < t1; ++t) {  // the input tiles, B^T d B
        const int64_t img = t / (th * tw), h0 = t / tw % th * kOut - pt, w0 = t % tw * kOut - pl;
        const float* xi = x + img * h * w * c;
        float* vt = v + (t - t0) * c;
        if (h0 >= 0 && w0 >= 0 && h0 + kIn <= h && w0 + kIn <= w) {
          for (int64_t cb = 0; cb < c; cb += kLanes) input_tile(xi + (h0 * w + w0) * c + cb, w * c, c, vt + cb, vs);
          continue;
        }
        alignas(64) float patch[kIn][kIn][kLanes];  // an edge tile: zeros where the padding is
        for (int64_t cb = 0; cb < c; cb += kLanes) {
          for (int64_t i = 0; i < kIn; ++i)
            for (int64_t j = 0; j < kIn; ++j) {
              const int64_t hh = h0 + i, ww = w0 + j;
              const V val = hh >= 0 && hh < h && ww >= 0 && ww < w ? Vec::load(xi + (hh * w + ww) * c + cb)
                                                                       : Vec::zero();
              Vec::store(patch[i][j], val);
            }
          input_tile(&patch[0][0][0], kIn * kLanes, kLanes, vt + cb, vs);
        }
      }

      for (int64_t p = 0; p < kPoints; ++p) {  // the 16 products
        PackedPanels up{u + p * panels * c * kPanel, c, k, kPanel, c * kPanel};
        up.cold = true;
        // The transformed filters come from memory (a model's weights outgrow the caches), in
        // the order the products read them: the next point's first panel follows this one's
        // last (ResNet-50's 256 channels at 14x14, 1 thread: 1.10 -> 0.88 ms a layer).
        const float* then = p + 1 < kPoints ? up.data + (panels + p0) * c * kPanel : nullptr;
        packed_gemm_block(v + p * vs, c, m, up, p0, p1, prod + p * ps, kw, then);
      }

      for (int64_t t = t0; t < t1; ++t) {  // the output tiles, A^T M A, then bias, Z and Relu
        const int64_t img = t / (th * tw), oh0 = t / tw % th * kOut, ow0 = t % tw * kOut;
        const int64_t rows_in = std::min(kOut, oh - oh0), cols_in = std::min(kOut, ow - ow0);
        for (int64_t kb = 0; kb < kw; kb += kLanes) {
          V out[kOut][kOut];
          output_tile(prod + (t - t0) * kw + kb, ps, out);
          const V b = bias ? Vec::load(bias + k0 + kb) : Vec::zero();
          for (int64_t i = 0; i < rows_in; ++i)
            for (int64_t j = 0; j < cols_in; ++j) {
              const int64_t at = ((img * oh + oh0 + i) * ow + ow0 + j) * k + k0 + kb;
              V r = Vec::add(out[i][j], b);
              if (z) r = Vec::add(r, Vec::load(z + at));
              if (relu) r = Vec::relu(r);
              Vec::store(y + at, r);
            }
        }
      }
    }
  });
#endif
}

}  // namespace kiln::nn
