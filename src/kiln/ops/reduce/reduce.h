// Shared machinery of the reductions (Reduce*, MeanVarianceNormalization): axis checks, a
// reduction plan made at shape time, and a parallel driver over it.
//
// The plan merges adjacent dims that are all reduced or all kept (size-1 dims drop out), so
// every reduction becomes one of two loops:
//   innermost group reduced: each output reduces contiguous rows (vectorized within the row);
//   innermost group kept:    each block of outputs accumulates contiguous rows elementwise
//                            (vectorized across outputs) - "reduce the outer axes".
// Reduction ops supply: Acc init(), Acc step(Acc, T), Acc merge(Acc, Acc), R done(Acc, count).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"

namespace kiln {

// `axis` in [-rank, rank-1], returned in [0, rank-1].
inline int64_t normalize_axis(int64_t axis, int64_t rank, const char* what = "axis") {
  if (axis < -rank || axis >= rank)
    fail(ErrorCode::InvalidArgument, what, " ", axis, " is out of range for a tensor of rank ", rank,
         " (expected a value in [", -rank, ", ", rank - 1, "])");
  return axis < 0 ? axis + rank : axis;
}

// Per dim of a rank-`rank` tensor: is it in `axes`? Repeated axes are an error.
inline std::vector<bool> axes_mask(const std::vector<int64_t>& axes, int64_t rank) {
  std::vector<bool> mask(size_t(rank), false);
  for (int64_t a : axes) {
    int64_t d = normalize_axis(a, rank, "axes entry");
    if (mask[size_t(d)]) fail(ErrorCode::InvalidArgument, "axes lists dimension ", d, " twice");
    mask[size_t(d)] = true;
  }
  return mask;
}

inline Shape row_major_strides(const Shape& s) {
  Shape st(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

// Walks a set of (size, stride) dims in row-major order, tracking the element offset.
class Odometer {
 public:
  Odometer(const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides, int64_t start)
      : sizes_(sizes), strides_(strides), idx_(sizes.size(), 0) {
    for (size_t d = sizes.size(); d-- > 0;) {
      idx_[d] = start % sizes[d];
      start /= sizes[d];
      offset_ += idx_[d] * strides[d];
    }
  }
  int64_t offset() const { return offset_; }
  void next() {
    for (size_t d = sizes_.size(); d-- > 0;) {
      offset_ += strides_[d];
      if (++idx_[d] < sizes_[d]) return;
      offset_ -= strides_[d] * sizes_[d];
      idx_[d] = 0;
    }
  }

 private:
  const std::vector<int64_t>& sizes_;
  const std::vector<int64_t>& strides_;
  std::vector<int64_t> idx_;
  int64_t offset_ = 0;
};

struct ReducePlan {
  Shape out_shape;
  int64_t out_count = 0;  // elements of the output
  int64_t red_count = 0;  // input elements folded into each output
  bool inner_reduced = true;  // the innermost merged group is reduced: rows are contiguous
  int64_t inner = 1;          // size of the innermost merged group
  // Offsets of every combination of the reduced groups (the innermost one excluded when it is
  // reduced: it is the contiguous row).
  std::vector<int64_t> red_offsets;
  // Kept groups, outermost first, the innermost one excluded when it is kept.
  std::vector<int64_t> kept_sizes, kept_strides;
  // Innermost group kept and the reduced rows directly above it: each output block's rows form
  // one contiguous run of red_offsets.size() * inner elements.
  bool rows_contiguous = false;
};

inline ReducePlan make_reduce_plan(const Shape& in, const std::vector<bool>& reduce, bool keepdims) {
  ReducePlan p;
  p.out_count = 1;
  p.red_count = 1;
  for (size_t d = 0; d < in.size(); ++d) {
    if (reduce[d]) {
      p.red_count *= in[d];
      if (keepdims) p.out_shape.push_back(1);
    } else {
      p.out_count *= in[d];
      p.out_shape.push_back(in[d]);
    }
  }
  if (p.out_count == 0 || p.red_count == 0) return p;  // the driver needs no groups for these
  struct Group {
    int64_t size, stride;
    bool reduced;
  };
  std::vector<Group> groups;
  const Shape strides = row_major_strides(in);
  for (size_t d = 0; d < in.size(); ++d) {
    if (in[d] == 1) continue;
    if (!groups.empty() && groups.back().reduced == reduce[d]) {
      groups.back().size *= in[d];
      groups.back().stride = strides[d];
    } else {
      groups.push_back({in[d], strides[d], reduce[d]});
    }
  }
  if (!groups.empty()) {
    p.inner_reduced = groups.back().reduced;
    p.inner = groups.back().size;
    groups.pop_back();
  }
  std::vector<int64_t> rs, rst;
  for (const Group& g : groups) {
    auto& sizes = g.reduced ? rs : p.kept_sizes;
    auto& strd = g.reduced ? rst : p.kept_strides;
    sizes.push_back(g.size);
    strd.push_back(g.stride);
  }
  p.rows_contiguous = !p.inner_reduced && rs.size() <= 1 && (rs.empty() || rst[0] == p.inner);
  int64_t combos = 1;
  for (int64_t s : rs) combos *= s;
  p.red_offsets.reserve(size_t(combos));
  Odometer od(rs, rst, 0);
  for (int64_t i = 0; i < combos; ++i, od.next()) p.red_offsets.push_back(od.offset());
  return p;
}

// acc[t] = step(acc[t], row[t]): one reduced row folded into a block of outputs. Functions of
// their own with restrict pointers, so they vectorize without runtime alias checks (and GCC's
// unroll-and-jam of the row loop does not turn them scalar).
template <typename T, typename Op>
void fold_into(const Op& op, typename Op::Acc* __restrict acc, const T* __restrict row, int64_t len) {
#pragma omp simd
  for (int64_t t = 0; t < len; ++t) acc[t] = op.step(acc[t], row[t]);
}

// Four rows at a time: a quarter of the accumulator traffic.
template <typename T, typename Op>
void fold_into4(const Op& op, typename Op::Acc* __restrict acc, const T* __restrict a, const T* __restrict b,
                const T* __restrict c, const T* __restrict d, int64_t len) {
#pragma omp simd
  for (int64_t t = 0; t < len; ++t) acc[t] = op.step(op.step(op.step(op.step(acc[t], a[t]), b[t]), c[t]), d[t]);
}

// Folds contiguous rows into one output: kLanes independent accumulators (vectorized across
// them, so sums vectorize without -ffast-math) plus one for the rows' tails, merged once at the
// end.
template <typename T, typename Op>
class RowFolder {
 public:
  using Acc = typename Op::Acc;
  static constexpr int64_t kLanes = 16;
  explicit RowFolder(const Op& op) : op_(op), tail_(op.init()) {
    for (int64_t j = 0; j < kLanes; ++j) lanes_[j] = op.init();
  }
  void add(const T* x, int64_t n) {
    int64_t i = 0;
    for (; i + 4 * kLanes <= n; i += 4 * kLanes)
      fold_into4(op_, lanes_, x + i, x + i + kLanes, x + i + 2 * kLanes, x + i + 3 * kLanes, kLanes);
    for (; i + kLanes <= n; i += kLanes) fold_into(op_, lanes_, x + i, kLanes);
    for (; i < n; ++i) tail_ = op_.step(tail_, x[i]);
  }
  Acc result() const {
    Acc l[kLanes];
    std::copy(lanes_, lanes_ + kLanes, l);
    for (int64_t w = kLanes / 2; w >= 1; w /= 2)  // a tree, vectorized level by level
      for (int64_t j = 0; j < w; ++j) l[j] = op_.merge(l[j], l[j + w]);
    return op_.merge(l[0], tail_);
  }

 private:
  const Op& op_;
  Acc lanes_[kLanes];
  Acc tail_;
};

// Folds the slice [begin, end) of the flattened (red_offsets x row) space of one output.
template <typename T, typename Op>
typename Op::Acc fold_span(const Op& op, const T* base, const ReducePlan& p, int64_t begin, int64_t end) {
  RowFolder<T, Op> f(op);
  const int64_t row = p.inner;
  while (begin < end) {
    const int64_t r = begin / row, c = begin % row;
    const int64_t len = std::min(row - c, end - begin);
    f.add(base + p.red_offsets[size_t(r)] + c, len);
    begin += len;
  }
  return f.result();
}

// Runs the reduction `op` of `p` over x into y (R is whatever op.done returns).
template <typename T, typename Op, typename R>
void run_reduce(const ReducePlan& p, const T* x, R* y, const Op& op) {
  using Acc = typename Op::Acc;
  if (p.out_count == 0) return;
  if (p.red_count == 0) {  // empty reduction: every output is the op's identity
    const R v = op.done(op.init(), 0);
    std::fill(y, y + p.out_count, v);
    return;
  }
  const int nt = num_threads();
  const int64_t total = p.out_count * p.red_count;
  constexpr int64_t kSplitWork = 1 << 16;
  if (p.inner_reduced) {
    const int64_t span = int64_t(p.red_offsets.size()) * p.inner;
    if (p.out_count < nt && total >= kSplitWork && !omp_in_parallel()) {
      // Few outputs, long reductions: every thread folds a slice of each output.
      std::vector<Acc> part(size_t(nt) * size_t(p.out_count), op.init());
      parallel_for(nt, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          Odometer od(p.kept_sizes, p.kept_strides, 0);
          for (int64_t o = 0; o < p.out_count; ++o, od.next())
            part[size_t(t * p.out_count + o)] = fold_span(op, x + od.offset(), p, span * t / nt, span * (t + 1) / nt);
        }
      });
      for (int64_t o = 0; o < p.out_count; ++o) {
        Acc a = op.init();
        for (int t = 0; t < nt; ++t) a = op.merge(a, part[size_t(t * p.out_count + o)]);
        y[o] = op.done(a, p.red_count);
      }
      return;
    }
    const int64_t grain = std::max<int64_t>(1, 32768 / p.red_count);
    if (p.inner < RowFolder<T, Op>::kLanes && p.red_offsets.size() == 1 && p.kept_sizes.size() <= 1) {
      // Short rows at a fixed stride: vectorize across outputs instead, one column at a time.
      const int64_t st = p.kept_strides.empty() ? 0 : p.kept_strides[0];
      parallel_for(p.out_count, grain, [&](int64_t s, int64_t e) {
        constexpr int64_t kB = 256;
        Acc acc[kB];
        for (int64_t b = s; b < e; b += kB) {
          const int64_t len = std::min(kB, e - b);
          for (int64_t o = 0; o < len; ++o) acc[o] = op.init();
          for (int64_t i = 0; i < p.inner; ++i) {
            const T* col = x + b * st + i;
#pragma omp simd
            for (int64_t o = 0; o < len; ++o) acc[o] = op.step(acc[o], col[o * st]);
          }
          for (int64_t o = 0; o < len; ++o) y[b + o] = op.done(acc[o], p.red_count);
        }
      });
      return;
    }
    parallel_for(p.out_count, grain, [&](int64_t s, int64_t e) {
      Odometer od(p.kept_sizes, p.kept_strides, s);
      for (int64_t o = s; o < e; ++o, od.next()) {
        const T* base = x + od.offset();
        RowFolder<T, Op> f(op);
        for (int64_t off : p.red_offsets) f.add(base + off, p.inner);
        y[o] = op.done(f.result(), p.red_count);
      }
    });
    return;
  }
  // Innermost group kept: accumulate blocks of adjacent outputs across the reduced rows.
  constexpr int64_t kBlock = 256;
  const int64_t k = p.inner;
  const int64_t blocks = (k + kBlock - 1) / kBlock;
  const int64_t outer = p.out_count / k;
  const int64_t work = outer * blocks;
  const int64_t rows = int64_t(p.red_offsets.size());
  // Narrow blocks whose rows are one contiguous run: stream the run through lcm(k, 16) lanes
  // (lane j always holds output j % k), so even k = 3 reads whole vectors.
  const bool narrow = p.rows_contiguous && k < 64;
  const int64_t lanes = narrow ? k * (16 / std::gcd(k, int64_t(16))) : 0;
  auto fold_block = [&](int64_t w, int64_t r0, int64_t r1, Acc* acc) {
    const int64_t ob = w / blocks, kb = w % blocks;
    const int64_t len = std::min(kBlock, k - kb * kBlock);
    Odometer od(p.kept_sizes, p.kept_strides, ob);
    const T* base = x + od.offset() + kb * kBlock;
    for (int64_t t = 0; t < len; ++t) acc[t] = op.init();
    if (narrow) {
      std::vector<Acc> lane(size_t(lanes), op.init());
      const T* run = base + r0 * k;
      const int64_t n = (r1 - r0) * k;
      int64_t i = 0;
      for (; i + 4 * lanes <= n; i += 4 * lanes)
        fold_into4(op, lane.data(), run + i, run + i + lanes, run + i + 2 * lanes, run + i + 3 * lanes, lanes);
      for (; i + lanes <= n; i += lanes) fold_into(op, lane.data(), run + i, lanes);
      for (int64_t j = 0; i < n; ++i, ++j) lane[size_t(j)] = op.step(lane[size_t(j)], run[i]);
      for (int64_t j = 0; j < lanes; ++j) acc[j % k] = op.merge(acc[j % k], lane[size_t(j)]);
      return len;
    }
    const int64_t* off = p.red_offsets.data();
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
      fold_into4(op, acc, base + off[r], base + off[r + 1], base + off[r + 2], base + off[r + 3], len);
    for (; r < r1; ++r) fold_into(op, acc, base + off[r], len);
    return len;
  };
  if (work < nt && total >= kSplitWork && rows >= 2 * nt && !omp_in_parallel()) {
    // Few output blocks, many reduced rows: every thread folds a slice of the rows.
    std::vector<Acc> part(size_t(nt) * size_t(work * kBlock), op.init());
    parallel_for(nt, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t)
        for (int64_t w = 0; w < work; ++w)
          fold_block(w, rows * t / nt, rows * (t + 1) / nt, &part[size_t((t * work + w) * kBlock)]);
    });
    for (int64_t w = 0; w < work; ++w) {
      const int64_t ob = w / blocks, kb = w % blocks;
      const int64_t len = std::min(kBlock, k - kb * kBlock);
      for (int64_t t = 0; t < len; ++t) {
        Acc a = op.init();
        for (int th = 0; th < nt; ++th) a = op.merge(a, part[size_t((th * work + w) * kBlock + t)]);
        y[ob * k + kb * kBlock + t] = op.done(a, p.red_count);
      }
    }
    return;
  }
  const int64_t grain = std::max<int64_t>(1, 32768 / (std::min(k, kBlock) * p.red_count));
  parallel_for(work, grain, [&](int64_t s, int64_t e) {
    Acc acc[kBlock];
    for (int64_t w = s; w < e; ++w) {
      const int64_t len = fold_block(w, 0, rows, acc);
      R* out = y + (w / blocks) * k + (w % blocks) * kBlock;
      for (int64_t t = 0; t < len; ++t) out[t] = op.done(acc[t], p.red_count);
    }
  });
}

// Converts a double result to T; integer types saturate and take NaN as 0 (log of 0 or of a
// negative integer sum has no integer value).
template <typename T>
T saturate_cast(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return T(v);
  } else {
    if (std::isnan(v)) return T(0);
    if (v <= double(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    if (v >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return T(v);
  }
}

// Sums of integers accumulate in 64 bits (ReduceMean of int32 must not wrap before dividing).
template <typename T>
using SumAcc = std::conditional_t<std::is_floating_point_v<T>, T, int64_t>;

// Reduce* kernels: axes from the attribute before opset kAxesInputSince, from the optional
// second input after; keepdims; noop_with_empty_axes (where axes is an input). Family::Op<T>
// is the reduction.
template <typename Family, typename Types, int kAxesInputSince>
class Reduce : public Kernel {
 public:
  explicit Reduce(const ir::Node& node)
      : keepdims_(node.attr_int("keepdims", 1) != 0),
        noop_(node.attr_int("noop_with_empty_axes", 0) != 0),
        axes_input_(node.opset >= kAxesInputSince),
        axes_attr_(node.attr_ints("axes")) {
    if (axes_input_ && node.has_attr("axes"))
      fail(ErrorCode::InvalidGraph, "axes is an input since opset ", kAxesInputSince,
           ", not an attribute (model opset ", node.opset, ")");
  }

  std::vector<int> value_inputs() const override { return axes_input_ ? std::vector<int>{1} : std::vector<int>{}; }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> axes = axes_attr_;
    if (axes_input_ && ctx.has_input(1)) {
      const Tensor& a = ctx.input(1);
      if (a.dtype() != DType::Int64 || a.rank() != 1)
        fail(ErrorCode::InvalidArgument, "axes must be a 1-D tensor(int64), got ", dtype_name(a.dtype()), " of shape ",
             shape_str(a.shape()));
      axes = a.to_int64s();
    }
    passthrough_ = axes.empty() && noop_;
    if (passthrough_) return;
    std::vector<bool> mask = axes.empty() ? std::vector<bool>(size_t(x.rank()), true) : axes_mask(axes, x.rank());
    plan_ = make_reduce_plan(x.shape(), mask, keepdims_);
    ctx.set_output(0, x.dtype(), plan_.out_shape);
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (passthrough_) return ctx.set_output_tensor(0, x);
    Tensor& y = ctx.output(0);
    dispatch(Types{}, x.dtype(), ctx.node().op_type.c_str(), [&]<typename T>() {
      run_reduce(plan_, x.data<T>(), y.data<T>(), typename Family::template Op<T>{});
    });
  }

 private:
  bool keepdims_, noop_, axes_input_;
  std::vector<int64_t> axes_attr_;
  bool passthrough_ = false;
  ReducePlan plan_;
};

using ReduceTypes = TypeList<float, double, int32_t, int64_t>;

}  // namespace kiln
