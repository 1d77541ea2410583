#include "kiln/ops/math/packed_gemm.h"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/ops/common/vec.h"
#include "kiln/ops/math/fast_math.h"

namespace kiln {

namespace {
dnnl::memory::desc dnnl_weight_layout(int64_t k, int64_t n) {
  using tag = dnnl::memory::format_tag;
  const auto f32 = dnnl::memory::data_type::f32;
  dnnl::matmul::desc d(dnnl::memory::desc({1, k}, f32, tag::ab), dnnl::memory::desc({k, n}, f32, tag::any),
                       dnnl::memory::desc({1, n}, f32, tag::ab));
  return dnnl::matmul::primitive_desc(d, dnnl_engine()).weights_desc();
}
}  // namespace

dnnl::memory::desc panel_layout(int64_t k, int64_t n) {
  // oneDNN picks panels of 64 columns, which packed_gemm computes 6 rows at a time; panels of
  // 48 take 8-row tiles and read a quarter less of the weight per flop. Interleaved at 1
  // thread, weights from memory: 128x3072x768 147 -> 152 GFLOP/s, 128x768x768 175 -> 178,
  // 16x512x256 114 -> 123, 197x768x3072 level (167); a 64-column weight stays whole (as 48 + 16
  // columns 156 -> 148), and so does one of at most 320 columns that 48 do not divide, where
  // the ragged last panel would be a large share (the zoo MLP's 16x64x256 3.41 -> 3.08 us,
  // 16x256x256 11.9 -> 11.6; ResNet-50's 196x1024x256 625 -> 592; 196x672x112 172 -> 153,
  // 49x1152x320 226 -> 217).
#if !defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
  // With AVX2 (16 registers) the kernel's tiles are 6 rows by 16 columns, whatever oneDNN picks.
  return dnnl::memory::desc({k, n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::BA16a16b);
#endif
  const dnnl::memory::desc chosen = dnnl_weight_layout(k, n);
  const auto panels = PackedPanels::from(chosen, nullptr);
  if (!panels || panels->width != 64 || n <= 64 || (n <= 320 && n % 48 != 0)) return chosen;
  return dnnl::memory::desc({k, n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::BA16a48b);
}

dnnl::memory::desc matmul_weight_layout(int64_t k, int64_t n) {
  // oneDNN's brgemm matmul reads the narrower panels too, but slower (4096x128x512: 152 -> 85
  // GFLOP/s on 48), so only a weight that never runs there gets them.
  return streams_on_packed_gemm(k, n) ? panel_layout(k, n) : dnnl_weight_layout(k, n);
}

dnnl::memory::desc stored_weight_desc(int64_t k, int64_t n, bool nk) {
  if (!nk) return plain_desc({k, n}, DType::Float32);
  return dnnl::memory::desc({k, n}, dnnl::memory::data_type::f32, dnnl::memory::dims{1, k});
}

std::optional<PackedPanels> PackedPanels::pack(PackedWeights& into, const Tensor* weight,
                                               const dnnl::memory::desc& plain) {
  const dnnl::memory::dims kn = plain.dims();
  const dnnl::memory::desc layout = panel_layout(kn[0], kn[1]);
  if (!from(layout, nullptr)) return std::nullopt;
  into.pack(weight, plain, layout);
  if (!into) return std::nullopt;
  return from(layout, into.memory().get_data_handle());
}

#if defined(KILN_VEC)

// GCC 12 flags the undefined pass-through operand of the unmasked max and of the horizontal
// sums as (maybe-)uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace {

// The kernels' register budget on top of the machine's vector operations (kiln/ops/common/vec.h).
#if defined(__AVX512F__)
struct Registers : Vec {
  // The accumulators fill 24 of the 32 registers; one panel of 16 columns takes 8 rows, as 12
  // split into two sets of sums spill to the stack (half the speed: 62 against 127 GFLOP/s).
  static constexpr int rows_for(int registers) {
    return registers == 4 ? 6 : registers == 3 ? 8 : registers == 2 ? 12 : 8;
  }
  // With few accumulators the FMA chains are too short to hide their latency: two k steps go to
  // two sets of sums.
  static constexpr bool split(int sums) { return sums <= 12; }
};
#else
struct Registers : Vec {
  // 12 accumulators, two panel registers and the broadcast: 15 of the 16 registers.
  static constexpr int rows_for(int registers) { return 6; }
  static constexpr bool split(int sums) { return sums <= 6; }
};
#endif

// What the kernels build from those, alike on both.
struct Isa : Registers {
  // The first `left` lanes, all of them unmasked (AVX2's masked stores are slow).
  static V load_n(const float* p, int64_t left) { return left >= kLanes ? load(p) : load(p, mask(left)); }
  static void store_n(float* p, int64_t left, V v) {
    if (left >= kLanes) {
      store(p, v);
    } else {
      store(p, mask(left), v);
    }
  }
  static V activate(V v, GemmEpilogue::Act act) {
    switch (act) {
      case GemmEpilogue::Act::None: return v;
      case GemmEpilogue::Act::Relu: return relu(v);
      case GemmEpilogue::Act::Gelu: return fastmath::native::gelu(v);
      case GemmEpilogue::Act::GeluTanh: return fastmath::native::gelu_tanh(v);
      case GemmEpilogue::Act::HardSwish: return fastmath::native::hard_swish(v);
      case GemmEpilogue::Act::Silu: return fastmath::native::silu(v);
    }
    return v;
  }
};

using V = Isa::V;
constexpr int kLanes = Isa::kLanes;
// The panel widths the kernel takes: up to four registers of columns (64 with AVX-512; with
// AVX2 16, the two registers a 6-row tile has room for).
constexpr int64_t kWidest = kLanes == 16 ? 64 : 16;

struct Tile {
  const float* a;  // R rows of A, lda apart
  int64_t lda;
  const float* b;  // the panel, `width` floats a row
  int64_t width, k;
  float* c;        // R rows of C, ldc apart, at the panel's first column
  const float* z;  // Z at the same place, or null
  int64_t ldc;
  const float* bias;  // at the panel's first column, or null
  int cols;           // columns of this panel that exist (the rest is padding)
  GemmEpilogue::Act act;
  bool z_first;
  const float* next = nullptr;  // lines of the next panel to fetch into L2 meanwhile
  int64_t next_lines = 0;
  const float* start = nullptr;  // sums of the depth before this tile's to add (ldc apart), or null
  float* staged = nullptr;       // the tile's sums that wait on their activation, kLanes * P apart
  const float* again = nullptr;  // the next tile's B when it is this panel again, or null
};

// C = act(staged) (+ Z after it) over R rows of the tile's P registers.
__attribute__((noinline)) void finish_tile(const Tile& t, int rows, int registers) {
  for (int p = 0; p < registers; ++p) {
    const Isa::Mask mask = Isa::mask(t.cols - kLanes * p);
    for (int r = 0; r < rows; ++r) {
      V v = Isa::activate(Isa::load(t.staged + r * kLanes * registers + kLanes * p, mask), t.act);
      if (t.z && !t.z_first) v = Isa::add(v, Isa::load(t.z + r * t.ldc + kLanes * p, mask));
      Isa::store_n(t.c + r * t.ldc + kLanes * p, t.cols - kLanes * p, v);
    }
  }
}

// R rows by P registers of columns. Plain: no bias, activation or Z, whose code would otherwise
// make the compiler spill the sums (K = 32: 100 -> 135 GFLOP/s on AVX-512).
template <int R, int P, bool Plain>
void micro(const Tile& t) {
  constexpr bool split = Isa::split(R * P);
  constexpr int S = split ? 2 : 1;
  constexpr int kLines = (P * kLanes + 15) / 16;  // cache lines of a panel row
  V acc[S][R][P];
  for (int s = 0; s < S; ++s)
    for (int r = 0; r < R; ++r)
      for (int p = 0; p < P; ++p) acc[s][r][p] = Isa::zero();
  // A's rows through two registers per four rows (a base and the row stride, once, twice and
  // thrice): eight row pointers, the pace of the next panel's fetch and the loop's own took more
  // general registers than there are, and the loop reloaded them from the stack each step.
  static_assert(R <= 12, "rows address from three bases");
  const char* a0 = reinterpret_cast<const char*>(t.a);
  const int64_t ldab = t.lda * int64_t(sizeof(float)), lda3 = 3 * ldab;
  const char* a4 = a0 + 4 * ldab;
  const char* a8 = a0 + 8 * ldab;
  auto row = [&](int r, int s) {
    const char* base = r < 4 ? a0 : r < 8 ? a4 : a8;
    const int q = r % 4;
    const int64_t offset = q == 0 ? 0 : q == 1 ? ldab : q == 2 ? 2 * ldab : lda3;
    return *reinterpret_cast<const float*>(base + offset + sizeof(float) * s);
  };
  const float* b = t.b;
  // The next panel's lines, paced evenly over the steps as a byte address in 56.8 fixed point
  // (room for any user-space address): one prefetch a step and no branch (an L1 line of the
  // panel in use where there is nothing to fetch). Cleaner than a prefetch every few steps
  // behind a test: interleaved, 1 thread, weights from memory, 128x768x768 137 -> 151 GFLOP/s,
  // 197x768x3072 133 -> 146, 49x4608x512 125 -> 145, 16x256x256 111 -> 146. A block with more
  // lines than steps (one or two blocks of rows) fetches every second or third line and the
  // L2's own prefetcher the rest: 8 and 16 rows x768x768 measured level with fetching all.
  const int64_t iters = std::max<int64_t>(1, t.k / S);
  uint64_t pf = uint64_t(reinterpret_cast<uintptr_t>(t.next_lines ? t.next : t.b)) << 8;
  const uint64_t pf_rate = t.next_lines ? (uint64_t(t.next_lines) * 64 << 8) / uint64_t(iters) : 0;
  int64_t k = 0;
  // The panel streams from L2; fetched into L1 16 steps ahead (4 KB of a 64-wide panel), the
  // FMAs no longer wait on it: 197x768x768 and x3072 products 4-7% faster on a Xeon. The last
  // 16 steps fetch the next tile's first rows: its panel's start again when more rows follow
  // (a panel outgrows L1), else what lies past the panel (the next one).
  auto steps = [&](int64_t until, const float* ahead) {
    for (; k + S <= until; k += S, b += S * t.width, ahead += S * t.width, a0 += 4 * S, a4 += 4 * S, a8 += 4 * S) {
      _mm_prefetch(reinterpret_cast<const char*>(pf >> 8), _MM_HINT_T1);
      pf += pf_rate;
      for (int s = 0; s < S; ++s) {
        for (int l = 0; l < kLines; ++l)
          _mm_prefetch(reinterpret_cast<const char*>(ahead + s * t.width + 16 * l), _MM_HINT_T0);
        V bv[P];
        for (int p = 0; p < P; ++p) bv[p] = Isa::load(b + s * t.width + kLanes * p);
        for (int r = 0; r < R; ++r) {
          const V av = Isa::set1(row(r, s));
          for (int p = 0; p < P; ++p) acc[s][r][p] = Isa::fma(av, bv[p], acc[s][r][p]);
        }
      }
    }
  };
  const int64_t wrap = t.again ? std::max<int64_t>(0, t.k - 16) : t.k;
  steps(wrap, b + 16 * t.width);
  if (t.again) steps(t.k, t.again + (k - wrap) * t.width);
  if (k < t.k) {  // an odd last step
    V bv[P];
    for (int p = 0; p < P; ++p) bv[p] = Isa::load(b + kLanes * p);
    for (int r = 0; r < R; ++r) {
      const V av = Isa::set1(row(r, 0));
      for (int p = 0; p < P; ++p) acc[0][r][p] = Isa::fma(av, bv[p], acc[0][r][p]);
    }
  }
  // The sums start at zero (the depth before's are added here) and the activations other than
  // ReLU run in a pass of their own over the tile (in L1): loaded up front, or beside GELU's
  // constants, the sums went through the stack on the way in and out (16x64x256 with bias and
  // ReLU 3.6 -> 3.3 us, the zoo MLP 19.3 -> 18.5).
  const bool relu = t.act == GemmEpilogue::Act::Relu, late = t.act != GemmEpilogue::Act::None && !relu;
  // Those sums wait in `staged`: C may be Z itself, which the pass still reads.
  float* const out = late ? t.staged : t.c;
  const int64_t ldo = late ? kLanes * P : t.ldc;
  for (int p = 0; p < P; ++p) {
    const int left = t.cols - kLanes * p;
    const Isa::Mask mask = Isa::mask(left);
    if constexpr (Plain) {
      for (int r = 0; r < R; ++r) {
        V v = acc[0][r][p];
        if constexpr (split) v = Isa::add(v, acc[1][r][p]);
        if (t.start) v = Isa::add(v, Isa::load(t.start + r * t.ldc + kLanes * p, mask));
        Isa::store_n(t.c + r * t.ldc + kLanes * p, left, v);
      }
      continue;
    }
    const V bias = t.bias ? Isa::load(t.bias + kLanes * p, mask) : Isa::zero();
    for (int r = 0; r < R; ++r) {
      V v = Isa::add(acc[0][r][p], bias);
      if constexpr (split) v = Isa::add(v, acc[1][r][p]);
      if (t.start) v = Isa::add(v, Isa::load(t.start + r * t.ldc + kLanes * p, mask));
      if (t.z && t.z_first) v = Isa::add(v, Isa::load(t.z + r * t.ldc + kLanes * p, mask));
      if (relu) v = Isa::relu(v);
      if (t.z && !t.z_first && !late) v = Isa::add(v, Isa::load(t.z + r * t.ldc + kLanes * p, mask));
      Isa::store_n(out + r * ldo + kLanes * p, left, v);
    }
  }
  if constexpr (!Plain)
    if (late) finish_tile(t, R, P);
}

// Rows [0, m) of one panel: full blocks of rows_for(P), then one smaller block.
template <int P, bool Plain>
void panel_rows(Tile t, int64_t m) {
  constexpr int R = Isa::rows_for(P);
  alignas(64) float staged[R * P * kLanes];  // a tile's sums
  t.staged = staged;
  auto step = [&](int64_t rows) {
    t.a += rows * t.lda;
    t.c += rows * t.ldc;
    if (t.z) t.z += rows * t.ldc;
    if (t.start) t.start += rows * t.ldc;
  };
  // The lines to fetch are shared out over the blocks of rows (each paces its share over its
  // steps).
  const int64_t blocks = (m + R - 1) / R, per_block = (t.next_lines + blocks - 1) / blocks;
  int64_t lines = t.next_lines;
  auto share = [&] {
    t.next_lines = std::min(per_block, lines);
    lines -= t.next_lines;
  };
  for (; m >= R; m -= R, step(R)) {
    share();
    t.again = m > R ? t.b : nullptr;
    micro<R, P, Plain>(t);
    t.next += t.next_lines * 16;
  }
  share();
  t.again = nullptr;
  [&]<int... I>(std::integer_sequence<int, I...>) {
    ((m == I + 1 ? micro<I + 1, P, Plain>(t) : void()), ...);
  }(std::make_integer_sequence<int, R - 1>{});
}

// Rows [r0, r0 + rows) of panel p, its columns written at c (ldc apart); depth [k0, k0 + kc)
// of it (A's columns from a), added to the sums of the depth before at `start` (or none).
void panel(const float* a, int64_t lda, int64_t rows, const PackedPanels& b, int64_t p, const GemmEpilogue& ep,
           float* c, const float* z, int64_t ldc, const float* next = nullptr, int64_t next_lines = 0,
           int64_t k0 = 0, int64_t kc = -1, const float* start = nullptr) {
  const int64_t n0 = p * b.width;
  Tile t{a,    lda, b.panel(p) + k0 * b.width, b.width, kc < 0 ? b.k : kc, c, z, ldc, ep.bias ? ep.bias + n0 : nullptr,
         int(std::min(b.width, b.n - n0)), ep.act, ep.z_first, next, next_lines, start};
  auto run = [&]<bool Plain>() {
    switch ((t.cols + kLanes - 1) / kLanes) {
      case 1: panel_rows<1, Plain>(t, rows); break;
      case 2: panel_rows<2, Plain>(t, rows); break;
      case 3: if constexpr (kWidest >= 3 * kLanes) panel_rows<3, Plain>(t, rows); break;
      default: if constexpr (kWidest >= 4 * kLanes) panel_rows<4, Plain>(t, rows); break;
    }
  };
  if (!t.bias && !t.z && t.act == GemmEpilogue::Act::None)
    run.template operator()<true>();
  else
    run.template operator()<false>();
}

constexpr int64_t kChunk = 48;  // rows per work item: whole blocks for 6, 8 and 12 rows

// The product over depth [k0, k0 + depth) of B's panels, as packed_gemm's pass over it, added
// to the sums in `start` (or none).
void product_block(const float* a, int64_t m, const PackedPanels& b, const GemmEpilogue& ep, float* c, int64_t k0,
                   int64_t depth, const float* start) {
  const int64_t panels = b.count(), chunks = (m + kChunk - 1) / kChunk;
  // A weight of a megabyte and more comes from memory (a model's weights outgrow the caches):
  // while a thread works on one panel it fetches its next one, a share per block of rows, so
  // the stream overlaps the arithmetic (GPT-2's 768x50257 LM head: 82 ms without, 64 with).
  // Past the end of its piece too: a thread's next piece is the following one (its own run of
  // pieces comes first), and a piece is often a single panel, whose successor went unfetched
  // (2 threads: BERT-base and GPT-2 10%, ResNet-50 5% slower).
  const bool stream = b.cold || streams_on_packed_gemm(b.k, b.n);
  const int64_t panel_lines = depth * b.width / 16;
  // Work items panel-major, so a thread's items share panels and each panel stays in its cache;
  // shared by their columns and rows (N = 256: five panels of 48 and one of 16, split 3 + 3
  // panels, left one thread 56% of the work).
  auto cost = [&](int64_t item) {
    const int64_t p = item / chunks, chunk = item % chunks;
    return std::min(b.width, b.n - p * b.width) * std::min(kChunk, m - chunk * kChunk);
  };
  parallel_for_balanced(panels * chunks, cost, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t p = item / chunks, chunk = item % chunks, r0 = chunk * kChunk, n0 = p * b.width;
      const bool fetch = stream && p + 1 < panels;
      const int64_t r1 = std::min(m, r0 + kChunk), l0 = panel_lines * r0 / m, l1 = panel_lines * r1 / m;
      panel(a + r0 * b.k + k0, b.k, std::min(kChunk, m - r0), b, p, ep, c + r0 * b.n + n0,
            ep.z ? ep.z + r0 * b.n + n0 : nullptr, b.n, fetch ? b.panel(p + 1) + k0 * b.width + l0 * 16 : nullptr,
            fetch ? l1 - l0 : 0, k0, depth, start ? start + r0 * b.n + n0 : nullptr);
    }
  });
}
}  // namespace

void packed_gemm(const float* a, int64_t m, const PackedPanels& b, const GemmEpilogue& ep, float* c) {
  constexpr int64_t kDepthBlock = 768;  // A's block: 48 rows x 768 = 144 KB per work item
  constexpr int kSumSlot = 8;           // thread_scratch slot of the sums when C is Z
  // A deep product whose A and two panels (the one in use, the next fetched) outgrow three
  // quarters of L2 runs in blocks of depth: each pass reads every panel.
  // The sums wait between blocks in C (in scratch when C is the residual Z, which is added
  // last as before: starting the sums from it rounded them at its magnitude, 6x PyTorch's
  // error in BERT), the epilogue runs after the last block. The same arithmetic as in one pass.
  // Weights from memory, 1 thread: 128x3072x768 3.85-3.89 -> 3.43-3.64 ms, 197x3072x768 5.57
  // -> 5.38; in the models the down-projections of BERT, GPT-2 and ViT-B/16 5-18% faster. With
  // A's block itself past a megabyte the passes only add C's traffic (ResNet-50's 2048 -> 512
  // at 8 images, 392 rows: 3-4% slower), so those run in one pass. A 3x3 convolution's product
  // over 49 windows, 49x4608x512 (A 0.9 MB, panels of 48 columns 0.9 MB each): 2.07 -> 1.79 ms.
  constexpr int64_t kMegabyte = int64_t(1) << 20;
  const int64_t row_bytes = int64_t(sizeof(float)) * m;
  const int64_t working_set = int64_t(sizeof(float)) * (m + 2 * b.width) * b.k;
  const int64_t kc =
      b.k > 1024 && working_set > 3 * kMegabyte / 2 && row_bytes * kDepthBlock <= kMegabyte ? kDepthBlock : b.k;
  if (kc == b.k) return product_block(a, m, b, ep, c, 0, b.k, nullptr);
  float* sums = ep.z == c ? static_cast<float*>(thread_scratch(kSumSlot, sizeof(float) * size_t(m * b.n))) : c;
  for (int64_t k0 = 0; k0 < b.k; k0 += kc) {
    const int64_t depth = std::min(kc, b.k - k0);
    const bool last = k0 + depth >= b.k;
    product_block(a, m, b, last ? ep : GemmEpilogue{}, last ? c : sums, k0, depth, k0 > 0 ? sums : nullptr);
  }
}

void packed_gemm_block(const float* a, int64_t lda, int64_t m, const PackedPanels& b, int64_t p0, int64_t p1, float* c,
                       int64_t ldc, const float* then) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* next = !b.cold ? nullptr : p + 1 < p1 ? b.panel(p + 1) : then;
    panel(a, lda, m, b, p, GemmEpilogue{}, c + (p - p0) * b.width, nullptr, ldc, next, next ? b.k * b.width / 16 : 0);
  }
}

namespace {

// y[j0, j1) holds the sums: bias, Z and the activation in place.
void finish_row(const GemmEpilogue& ep, int64_t j0, int64_t j1, float* y) {
  if (!ep.bias && !ep.z && ep.act == GemmEpilogue::Act::None) return;
  for (int64_t j = j0; j < j1; j += kLanes) {
    const int64_t left = j1 - j;
    V v = Isa::load_n(y + j, left);
    if (ep.bias) v = Isa::add(v, Isa::load_n(ep.bias + j, left));
    if (ep.z && ep.z_first) v = Isa::add(v, Isa::load_n(ep.z + j, left));
    v = Isa::activate(v, ep.act);
    if (ep.z && !ep.z_first) v = Isa::add(v, Isa::load_n(ep.z + j, left));
    Isa::store_n(y + j, left, v);
  }
}

// y[i * ldy + j] = A[i, :] . B[j, :] for M rows of A [.., K] (lda apart) and R consecutive rows
// of B [N, K].
template <int M, int R>
void dots(const float* a, int64_t lda, const float* b, int64_t k, float* y, int64_t ldy) {
  V acc[M][R];
  for (auto& row : acc)
    for (V& v : row) v = Isa::zero();
  auto step = [&](int64_t q, auto load) {
    V av[M];
    for (int i = 0; i < M; ++i) av[i] = load(a + i * lda + q);
    for (int r = 0; r < R; ++r) {
      const V bv = load(b + r * k + q);
      for (int i = 0; i < M; ++i) acc[i][r] = Isa::fma(av[i], bv, acc[i][r]);
    }
  };
  int64_t q = 0;
  for (; q + kLanes <= k; q += kLanes) step(q, [](const float* p) { return Isa::load(p); });
  if (q < k) {
    const Isa::Mask m = Isa::mask(k - q);
    step(q, [m](const float* p) { return Isa::load(p, m); });
  }
  for (int i = 0; i < M; ++i)
    for (int r = 0; r < R; ++r) y[i * ldy + r] = Isa::sum(acc[i][r]);
}

// Rows of A a narrow product takes at a time: 4 x 4 sums with AVX-512's 32 registers, 2 x 4
// with AVX2's 16.
constexpr int kNarrowRows = kLanes == 16 ? 4 : 2;

}  // namespace

void gemv(const float* x, const float* b, int64_t k, int64_t n, bool nk, const GemmEpilogue& epilogue, float* y) {
  // Z may be y itself (a residual whose buffer the output took), and y holds sums before the
  // epilogue reads Z: then Z is read from a copy.
  std::vector<float> z_copy;
  GemmEpilogue ep = epilogue;
  if (ep.z == y) {
    z_copy.assign(y, y + n);
    ep.z = z_copy.data();
  }
  if (nk) {  // rows of B one after another, four at a time
    parallel_for(n, 64, [&](int64_t j0, int64_t j1) {
      int64_t j = j0;
      for (; j + 4 <= j1; j += 4) dots<1, 4>(x, 0, b + j * k, k, y + j, 0);
      for (; j < j1; ++j) dots<1, 1>(x, 0, b + j * k, k, y + j, 0);
      finish_row(ep, j0, j1, y);
    });
    return;
  }
  // y += x[q] B[q, :] over the rows in order, four at a time; each thread's columns of y
  // stay in L1 throughout.
  const int64_t blocks = (n + 15) / 16;
  parallel_for(blocks, 16, [&](int64_t blk0, int64_t blk1) {
    const int64_t j0 = blk0 * 16, j1 = std::min(n, blk1 * 16);
    std::fill(y + j0, y + j1, 0.0f);
    int64_t q = 0;
    for (; q + 4 <= k; q += 4) {
      const float* r = b + q * n;
      const V x0 = Isa::set1(x[q]), x1 = Isa::set1(x[q + 1]), x2 = Isa::set1(x[q + 2]), x3 = Isa::set1(x[q + 3]);
      for (int64_t j = j0; j < j1; j += kLanes) {
        const int64_t left = j1 - j;
        V v = Isa::fma(x0, Isa::load_n(r + j, left), Isa::load_n(y + j, left));
        v = Isa::fma(x1, Isa::load_n(r + n + j, left), v);
        v = Isa::fma(x2, Isa::load_n(r + 2 * n + j, left), v);
        v = Isa::fma(x3, Isa::load_n(r + 3 * n + j, left), v);
        Isa::store_n(y + j, left, v);
      }
    }
    for (; q < k; ++q) {
      const V xv = Isa::set1(x[q]);
      for (int64_t j = j0; j < j1; j += kLanes)
        Isa::store_n(y + j, j1 - j, Isa::fma(xv, Isa::load_n(b + q * n + j, j1 - j), Isa::load_n(y + j, j1 - j)));
    }
    finish_row(ep, j0, j1, y);
  });
}

void narrow_gemm(const float* a, int64_t m, const float* bt, int64_t k, int64_t n, const GemmEpilogue& ep, float* c) {
  if (n > kNarrowColumns) fail(ErrorCode::Fail, "narrow_gemm: ", n, " columns, at most ", kNarrowColumns);
  using Dots = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t);
  static constexpr auto table = []<int... I>(std::integer_sequence<int, I...>) {
    return std::array<Dots, sizeof...(I)>{dots<I / 4 + 1, I % 4 + 1>...};
  }(std::make_integer_sequence<int, kNarrowRows * 4>{});
  parallel_for((m + kNarrowRows - 1) / kNarrowRows, 1, [&](int64_t blk0, int64_t blk1) {
    for (int64_t blk = blk0; blk < blk1; ++blk) {
      const int64_t r0 = blk * kNarrowRows, rows = std::min<int64_t>(kNarrowRows, m - r0);
      // The block's sums wait here: Z may be C itself.
      float sums[kNarrowRows * kNarrowColumns];
      for (int64_t j = 0; j < n; j += 4) {
        const int64_t cols = std::min<int64_t>(4, n - j);
        table[size_t((rows - 1) * 4 + cols - 1)](a + r0 * k, k, bt + j * k, k, sums + j, n);
      }
      for (int64_t i = 0; i < rows; ++i) {
        GemmEpilogue row = ep;
        if (row.z) row.z += (r0 + i) * n;
        finish_row(row, 0, n, sums + i * n);
        std::copy_n(sums + i * n, n, c + (r0 + i) * n);
      }
    }
  });
}

std::optional<PackedPanels> PackedPanels::from(const dnnl::memory::desc& layout, const void* data) {
  const std::optional<PanelLayout> pl = PanelLayout::of(layout);
  if (!pl || pl->width > kWidest) return std::nullopt;
  return PackedPanels{static_cast<const float*>(data), pl->k, pl->n, pl->width, pl->stride};
}

#pragma GCC diagnostic pop

#else

std::optional<PackedPanels> PackedPanels::from(const dnnl::memory::desc&, const void*) { return std::nullopt; }
void packed_gemm(const float*, int64_t, const PackedPanels&, const GemmEpilogue&, float*) {}
void packed_gemm_block(const float*, int64_t, int64_t, const PackedPanels&, int64_t, int64_t, float*, int64_t,
                       const float*) {}
void narrow_gemm(const float* a, int64_t m, const float* bt, int64_t k, int64_t n, const GemmEpilogue& ep, float* c) {
  for (int64_t r = 0; r < m; ++r) {
    GemmEpilogue row = ep;
    if (row.z) row.z += r * n;
    gemv(a + r * k, bt, k, n, true, row, c + r * n);
  }
}
void gemv(const float* x, const float* b, int64_t k, int64_t n, bool nk, const GemmEpilogue& ep, float* y) {
  for (int64_t j = 0; j < n; ++j) {
    float v = 0;
    for (int64_t q = 0; q < k; ++q) v += x[q] * (nk ? b[j * k + q] : b[q * n + j]);
    if (ep.bias) v += ep.bias[j];
    if (ep.z && ep.z_first) v += ep.z[j];
    if (ep.act == GemmEpilogue::Act::Relu) v = std::max(v, 0.0f);
    else if (ep.act == GemmEpilogue::Act::Gelu) v = fastmath::gelu(v);
    else if (ep.act == GemmEpilogue::Act::GeluTanh) v = fastmath::gelu_tanh(v);
    else if (ep.act == GemmEpilogue::Act::HardSwish) v = fastmath::hard_swish(v);
    else if (ep.act == GemmEpilogue::Act::Silu) v = fastmath::silu(v);
    if (ep.z && !ep.z_first) v += ep.z[j];
    y[j] = v;
  }
}

#endif

}  // namespace kiln
