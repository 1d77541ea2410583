// Shared oneDNN plumbing: one CPU engine for the process, a stream per calling thread (a run
// stays on one thread), and descriptor helpers.
#pragma once

#include <dnnl.hpp>

#include <functional>
#include <memory>
#include <optional>

#include "kiln/core/tensor.h"

namespace kiln {

dnnl::engine& dnnl_engine();
dnnl::stream& dnnl_stream();
// oneDNN's 8-bit products are exact int32 sums only with VNNI instructions; without them its
// kernels pair u8 x s8 products in saturating 16-bit adds (vpmaddubsw), which clips sums of two
// large products (QLinearMatMul's 2-D conformance case: 146 where 115 is right).
bool dnnl_int8_exact();
// oneDNN 2.6 computes bfloat16 products from AVX-512 (avx512_core) up, none with AVX2 alone.
bool dnnl_has_bf16();

dnnl::memory::data_type dnnl_type(DType t);
inline dnnl::memory::dims dnnl_dims(const Shape& s) { return dnnl::memory::dims(s.begin(), s.end()); }
// Plain row-major strides for `s`.
dnnl::memory::desc plain_desc(const Shape& s, DType t);
// A constant made from `weight` (its bytes read as `from`) in layout `to`, by `fill` on the first
// request; later requests for the same weight, `from` and `to` share it while anyone holds it.
std::shared_ptr<const dnnl::memory> derive_weight(const Tensor& weight, const dnnl::memory::desc& from,
                                                  const dnnl::memory::desc& to,
                                                  const std::function<void(dnnl::memory&)>& fill);
// A constant weight in the layout a primitive wants. Packed copies are shared by every kernel
// that packs the same tensor into the same layout (the kernels of concurrent runs, of
// sessions sharing initializers), so a weight is packed once however many frames run it.
class PackedWeights {
 public:
  // Holds `weight` (read as `plain`: row-major, or through other strides) in layout `wanted`;
  // empty when no reorder is needed or the weight is not constant (null).
  void pack(const Tensor* weight, const dnnl::memory::desc& plain, const dnnl::memory::desc& wanted);
  explicit operator bool() const { return bool(memory_); }
  const dnnl::memory& memory() const { return *memory_; }

 private:
  std::shared_ptr<const dnnl::memory> memory_;
  dnnl::memory::desc from_;  // the layout memory_ was packed from
};
// A 2-D float layout of column panels, oneDNN's BA16a{W}b for W in 16, 32, 48, 64: panel p
// holds columns [pW, pW + W) as K (padded to 16) rows of W floats, zero past N and K, and
// starts `stride` floats after panel p - 1.
struct PanelLayout {
  int64_t k = 0, n = 0, width = 0, stride = 0, padded_k = 0;
  static std::optional<PanelLayout> of(const dnnl::memory::desc& layout);
};

// The [K, N] float matrix at `src`, element (k, n) at src[k * row_stride + n * col_stride], into
// the column panels `to` describes at `dst`, 16 rows of a panel per item over the calling
// thread's team; `to.stride` at least `to.padded_k * to.width`.
void pack_panels(const float* src, int64_t row_stride, int64_t col_stride, const PanelLayout& to, float* dst);

// Copies `src`, laid out as `from`, into `dst` in dst's own layout (packing or unpacking), and
// waits for it. A plain 2-D float weight goes into column panels by Kiln's own copy, over the
// calling thread's OpenMP team.
void reorder_into(const dnnl::memory::desc& from, const void* src, dnnl::memory dst);
inline dnnl::memory wrap(const dnnl::memory::desc& d, const void* data) {
  return dnnl::memory(d, dnnl_engine(), const_cast<void*>(data));
}

}  // namespace kiln
