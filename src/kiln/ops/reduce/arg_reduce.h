// ArgMax / ArgMin: the index (int64) of the first extreme value along `axis`, or the last with
// select_last_index. kMax picks the comparison.
#pragma once

#include "kiln/ops/reduce/reduce.h"

namespace kiln {

template <bool kMax>
class ArgReduce : public Kernel {
 public:
  explicit ArgReduce(const ir::Node& node)
      : axis_(node.attr_int("axis", 0)),
        keepdims_(node.attr_int("keepdims", 1) != 0),
        last_(node.attr_int("select_last_index", 0) != 0) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t a = normalize_axis(axis_, x.rank());
    outer_ = 1, inner_ = 1, n_ = x.dim(a);
    Shape out;
    for (int64_t d = 0; d < x.rank(); ++d) {
      if (d < a) outer_ *= x.dim(d);
      if (d > a) inner_ *= x.dim(d);
      if (d != a) out.push_back(x.dim(d));
      else if (keepdims_) out.push_back(1);
    }
    if (n_ == 0 && outer_ * inner_ > 0)
      fail(ErrorCode::InvalidArgument, "cannot take the index of an extreme value along empty axis ", a, " of shape ",
           shape_str(x.shape()));
    ctx.set_output(0, DType::Int64, out);
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    int64_t* y = ctx.output(0).data<int64_t>();
    dispatch(TypeList<float, double, int32_t, int64_t, uint8_t, int8_t, int16_t, uint16_t, uint32_t, uint64_t>{},
             x.dtype(), ctx.node().op_type.c_str(), [&]<typename T>() { run(x.data<T>(), y); });
  }

 private:
  // Is v a better pick than the current best? Ties move to v only with select_last_index.
  template <typename T>
  static bool better(T v, T best, bool last) {
    if constexpr (kMax) return last ? v >= best : v > best;
    else return last ? v <= best : v < best;
  }

  // Two vectorized passes over a contiguous row: the extreme value, then the first (or last)
  // block of 64 that holds it. A NaN in row[0] stays the pick, as in the one-pass comparison.
  template <typename T>
  static int64_t row_index(const T* row, int64_t n, bool last) {
    T best = row[0];
    if (best != best) return 0;
    if constexpr (kMax) {
#pragma omp simd reduction(max : best)
      for (int64_t i = 0; i < n; ++i) best = row[i] > best ? row[i] : best;
    } else {
#pragma omp simd reduction(min : best)
      for (int64_t i = 0; i < n; ++i) best = row[i] < best ? row[i] : best;
    }
    constexpr int64_t kB = 64;
    const int64_t nb = (n + kB - 1) / kB;
    for (int64_t k = 0; k < nb; ++k) {
      const int64_t b = last ? nb - 1 - k : k;
      const int64_t i0 = b * kB, i1 = std::min(n, i0 + kB);
      bool hit = false;
#pragma omp simd reduction(| : hit)
      for (int64_t i = i0; i < i1; ++i) hit |= row[i] == best;
      if (!hit) continue;
      if (last) {
        for (int64_t i = i1; i-- > i0;)
          if (row[i] == best) return i;
      } else {
        for (int64_t i = i0; i < i1; ++i)
          if (row[i] == best) return i;
      }
    }
    return 0;
  }

  template <typename T>
  void run(const T* x, int64_t* y) const {
    const int64_t n = n_, inner = inner_;
    const bool last = last_;
    if (outer_ * inner == 0) return;
    if (inner == 1) {
      parallel_for(outer_, std::max<int64_t>(1, 16384 / n), [&](int64_t s, int64_t e) {
        for (int64_t o = s; o < e; ++o) y[o] = row_index(x + o * n, n, last);
      });
      return;
    }
    // Along a strided axis: keep a block of running bests across the inner dim (vectorized).
    constexpr int64_t kBlock = 256;
    const int64_t blocks = (inner + kBlock - 1) / kBlock;
    parallel_for(outer_ * blocks, std::max<int64_t>(1, 16384 / (n * std::min(inner, kBlock))), [&](int64_t s, int64_t e) {
      T best[kBlock];
      int64_t idx[kBlock];
      for (int64_t w = s; w < e; ++w) {
        const int64_t o = w / blocks, c0 = (w % blocks) * kBlock;
        const int64_t len = std::min(kBlock, inner - c0);
        const T* base = x + o * n * inner + c0;
        for (int64_t t = 0; t < len; ++t) best[t] = base[t], idx[t] = 0;
        for (int64_t i = 1; i < n; ++i) {
          const T* row = base + i * inner;
#pragma omp simd
          for (int64_t t = 0; t < len; ++t) {
            const bool take = better(row[t], best[t], last);
            best[t] = take ? row[t] : best[t];
            idx[t] = take ? i : idx[t];
          }
        }
        std::copy(idx, idx + len, y + o * inner + c0);
      }
    });
  }

  int64_t axis_;
  bool keepdims_, last_;
  int64_t outer_ = 1, n_ = 1, inner_ = 1;
};

}  // namespace kiln
