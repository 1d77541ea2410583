// GlobalAveragePool, GlobalMaxPool and GlobalLpPool: one value per (n, c) plane, kept as
// [N, C, 1, ...]. A functor reduces each contiguous plane; planes are split across threads.
// A functor with `add_rows(x, pixels, stride, channels, sums)` and `finish(sums, pixels,
// channels, y)` also reads channels-last X (kiln_nhwc, set by the layout pass): each image is
// `pixels` rows of `stride` values, summed per column. Fewer images than threads split into
// row ranges whose sums are added after: each thread then reads the rows the convolution
// before it wrote, in its own cache (channel blocks made EfficientNet-B0's pools 1.7x slower
// on 2 threads than on 1).
#pragma once

#include <algorithm>
#include <limits>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"
#include "kiln/ops/common/elementwise.h"

namespace kiln::nn {

// The mean of a plane (GlobalAveragePool's functor), also read back channels-last.
struct PlaneMean {
  template <typename T>
  T operator()(const T* x, int64_t n) const {
    T sum = T(0);
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; ++i) sum += x[i];
    return n > 0 ? T(sum / T(n)) : std::numeric_limits<T>::quiet_NaN();
  }
  // Channels-last: adds the first `channels` columns of a [pixels, stride] matrix to `sums`,
  // and turns sums over `pixels` rows into means.
  // 64 columns at a time, down all rows, in a block that stays in registers (a one-image
  // pool of [32, 112, 112] 43 -> 30 us, of [96, 56, 56] on 2 threads 42 -> 12 us).
  template <typename T>
  void add_rows(const T* x, int64_t pixels, int64_t stride, int64_t channels, T* sums) const {
    constexpr int64_t kBlock = 64;
    for (int64_t c0 = 0; c0 < channels; c0 += kBlock) {
      const int64_t n = std::min(kBlock, channels - c0);
      T acc[kBlock] = {};
      for (int64_t p = 0; p < pixels; ++p) {
        const T* row = x + p * stride + c0;
#pragma omp simd
        for (int64_t c = 0; c < n; ++c) acc[c] += row[c];
      }
      for (int64_t c = 0; c < n; ++c) sums[c0 + c] += acc[c];
    }
  }
  template <typename T>
  void finish(const T* sums, int64_t pixels, int64_t channels, T* y) const {
    const T scale = pixels > 0 ? T(1) / T(pixels) : std::numeric_limits<T>::quiet_NaN();
    for (int64_t c = 0; c < channels; ++c) y[c] = sums[c] * scale;
  }
};

// y[n * channels + c] = reduce(plane (n, c) of X [images, channels, plane]), or of X stored
// channels-last ([images, plane, channels]) when `nhwc` (for a functor with add_rows and
// finish), over the calling thread's team.
template <typename Reduce, typename T>
void reduce_planes(const Reduce& reduce, const T* px, int64_t images, int64_t channels, int64_t plane, bool nhwc,
                   T* py) {
  if constexpr (requires { reduce.add_rows(px, plane, plane, plane, py); }) {
    if (nhwc) {
      const int64_t parts = images < num_threads() && images * channels * plane >= 32768 ? num_threads() : 1;
      std::vector<T> sums(size_t(images * parts * channels), T(0));
      const int64_t item = std::max<int64_t>(1, plane / parts * channels);
      parallel_for(images * parts, std::max<int64_t>(1, 16384 / item), [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
          const int64_t i = t / parts, p0 = plane * (t % parts) / parts, p1 = plane * (t % parts + 1) / parts;
          reduce.add_rows(px + (i * plane + p0) * channels, p1 - p0, channels, channels, sums.data() + t * channels);
        }
      });
      for (int64_t i = 0; i < images; ++i) {
        T* s = sums.data() + i * parts * channels;
        for (int64_t p = 1; p < parts; ++p)
          for (int64_t c = 0; c < channels; ++c) s[c] += s[p * channels + c];
        reduce.finish(s, plane, channels, py + i * channels);
      }
      return;
    }
  }
  parallel_for(images * channels, std::max<int64_t>(1, 16384 / std::max<int64_t>(plane, 1)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t p = begin; p < end; ++p) py[p] = reduce.template operator()<T>(px + p * plane, plane);
               });
}

template <typename Reduce>
class GlobalPool : public Kernel {
 public:
  explicit GlobalPool(const ir::Node& node)
      : reduce_(make_functor<Reduce>(node)), nhwc_(node.attr_int("kiln_nhwc", 0) != 0) {
    if (nhwc_ && !requires(const float* x, float* y) { reduce_.add_rows(x, int64_t(0), int64_t(0), int64_t(0), y); })
      fail(ErrorCode::InvalidGraph, node.op_type, " does not read channels-last data (kiln_nhwc)");
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() < 3)
      fail(ErrorCode::InvalidArgument, "X must be [N, C, D1, ...] with at least one spatial dimension, got ",
           shape_str(x.shape()));
    if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64)
      fail(ErrorCode::NotImplemented, "element type ", dtype_name(x.dtype()), " is not supported (float and double are)");
    if (nhwc_ && x.rank() != 4)
      fail(ErrorCode::InvalidGraph, "kiln_nhwc needs a 4-D X, got ", shape_str(x.shape()));
    Shape y(size_t(x.rank()), 1);
    y[0] = x.dim(0), y[1] = x.dim(1);
    ctx.set_output(0, x.dtype(), y);
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    const int64_t planes = y.size();
    if (planes == 0) return;
    dispatch(FloatTypes{}, x.dtype(), ctx.node().op_type.c_str(), [&]<typename T>() {
      reduce_planes(reduce_, x.data<T>(), x.dim(0), x.dim(1), x.size() / planes, nhwc_, y.data<T>());
    });
  }

 private:
  Reduce reduce_;
  bool nhwc_;
};

}  // namespace kiln::nn
