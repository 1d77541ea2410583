// Kiln's own float GEMM over a weight already packed in column panels, for the 2-D
// products of MatMul and FusedMatMul with a constant weight, pointwise convolutions with a
// megabyte weight, and Winograd's products:
//
//   C[m, n] = act(sum_k A[m, k] B[k, n] + bias[n]) + Z[m, n]
//
// oneDNN's brgemm matmul builds a primitive (JIT code) for every row count M, which a model
// fed a new batch or sequence length pays on its first run (the zoo's MLP: 0.55 ms of
// creation against 0.11 ms of work). This kernel takes any M with nothing made per shape, at
// the speed of oneDNN's on these layouts (measured side by side, 1 thread: 16x256x256 19 us
// against 22, 128x768x768 175 GFLOP/s against 170, 197x768x3072 171 against 168), and ahead of
// it where the weight comes from memory: it fetches the next panel while it computes.
//
// The layouts it reads are oneDNN's BA16a{W}b for W in 16, 32, 48, 64 with AVX-512 (tiles of
// up to 4 registers by 6-12 rows), W = 16 with AVX2 and FMA (tiles of 2 registers by 6 rows,
// 85 GFLOP/s of the 88 a Zen 3 core reaches at 128x768x768): column panels of W, each K
// (padded to 16) rows of W floats, zero past N.
#pragma once

#include <cstdint>
#include <optional>

#include "kiln/ops/common/dnnl.h"

namespace kiln {

// A weight of a megabyte and more comes from memory on each run (a model's weights outgrow the
// caches); packed_gemm streams it while it computes, at every row count.
inline bool streams_on_packed_gemm(int64_t k, int64_t n) { return k * n >= (int64_t(1) << 18); }

// The panels packed_gemm computes fastest for a constant [K, N] float weight: on AVX-512
// machines 48 columns wide where oneDNN's matmul would take 64 (N over 64), else oneDNN's
// choice; with AVX2 16 columns wide (on other machines a layout PackedPanels::from refuses).
dnnl::memory::desc panel_layout(int64_t k, int64_t n);

// The layout a constant [K, N] float weight is packed in at load, for packed_gemm and oneDNN's
// matmul alike: panel_layout for a weight that streams on packed_gemm, else oneDNN's choice.
dnnl::memory::desc matmul_weight_layout(int64_t k, int64_t n);

// A [K, N] float weight as stored: row-major, or transposed ([N, K] row-major) when `nk`.
dnnl::memory::desc stored_weight_desc(int64_t k, int64_t n, bool nk);

// A [K, N] weight in column panels of `width` floats, panel p starting at data + p * panel_stride,
// except the last one at `last` when that is set.
struct PackedPanels {
  const float* data = nullptr;
  int64_t k = 0, n = 0, width = 0, panel_stride = 0;
  const float* last = nullptr;
  // The weight comes from memory on each run (a layer of few pixels among a model's many,
  // Winograd's filters): each panel is fetched ahead while the one before computes, as a
  // megabyte's always are on packed_gemm.
  bool cold = false;

  int64_t count() const { return (n + width - 1) / width; }
  const float* panel(int64_t p) const { return last && p + 1 == count() ? last : data + p * panel_stride; }

  // The panels of `data` laid out as `layout`; none when the layout is another one, or this
  // build has neither AVX-512 nor AVX2.
  static std::optional<PackedPanels> from(const dnnl::memory::desc& layout, const void* data);
  // A constant [K, N] weight (read as `plain`) packed into `into` in panel_layout, and
  // the panels over it; none, and nothing packed, where that layout is not a panel layout.
  static std::optional<PackedPanels> pack(PackedWeights& into, const Tensor* weight, const dnnl::memory::desc& plain);
};

struct GemmEpilogue {
  // Gelu: erf form; GeluTanh: tanh approximation; HardSwish: x min(max(x/6 + 1/2, 0), 1);
  // Silu: x sigmoid(x)
  enum class Act { None, Relu, Gelu, GeluTanh, HardSwish, Silu };
  const float* bias = nullptr;  // N values or none
  Act act = Act::None;
  const float* z = nullptr;  // [M, N] added after the activation, or none; may be C itself
  bool z_first = false;      // add Z before the activation instead (a convolution's residual)
};

// C = epilogue(A B) for A [m, K] and C [m, N], both row-major and dense. Splits the panels
// and rows over the calling thread's OpenMP team.
void packed_gemm(const float* a, int64_t m, const PackedPanels& b, const GemmEpilogue& ep, float* c);

// y = epilogue(x B) for one row x [K] and a plain weight B: [K, N] row-major, or [N, K]
// row-major (each output's weights contiguous) when `nk`. B is read once, front to back, one
// stream per thread. A warm model's classifier runs as fast as on oneDNN's gemm (both wait on
// memory for the weight), but nothing is set up: oneDNN's gemm spent 2.8 ms on its first call
// in a process (MobileNetV3's first run: 28 ms, 25 with this). Z may be y itself. Splits the
// outputs over the calling thread's OpenMP team.
void gemv(const float* x, const float* b, int64_t k, int64_t n, bool nk, const GemmEpilogue& ep, float* y);

// C = epilogue(A B) for A [m, K] and C [m, N] of few columns (N at most kNarrowColumns, B given
// as its columns' rows: bt [N, K]), each output a dot product of a row of A with a row of bt:
// no panel padded to 16 columns. 1 thread, against packed_gemm: 16x256xN 0.29 against 1.00 us at
// N = 1, 0.47 against 1.00 at 4, 0.73 against 1.01 at 8 (level at 10, behind past it);
// 128x768x4 7.1 against 22.4. Z may be C itself. Splits the rows over the calling thread's
// OpenMP team.
constexpr int64_t kNarrowColumns = 8;
void narrow_gemm(const float* a, int64_t m, const float* bt, int64_t k, int64_t n, const GemmEpilogue& ep, float* c);

// C = A B for A [m, K] (rows lda apart) and panels [p0, p1) of B, on the calling thread: panel
// p's columns land at c + (p - p0) * width, rows ldc apart. For callers that split the work
// themselves (Winograd's 16 products per tile block). A cold B's panels are fetched into L2
// while the one before computes, and `then` (K x width floats the caller reads next), if set,
// while the last one does.
void packed_gemm_block(const float* a, int64_t lda, int64_t m, const PackedPanels& b, int64_t p0, int64_t p1, float* c,
                       int64_t ldc, const float* then = nullptr);

}  // namespace kiln
