// GlobalAveragePool, GlobalMaxPool and GlobalLpPool: one value per (n, c) plane, kept as
// [N, C, 1, ...]. A functor reduces each contiguous plane; planes are split across threads.
// A functor with `add_rows(x, pixels, stride, channels, sums)` and `finish(sums, pixels,
// channels, y)` also reads channels-last X (kiln_nhwc, set by the layout pass): each image is
// `pixels` rows of `stride` values, summed per column. Fewer images than threads split into
// row ranges whose sums are added after: each thread then reads the rows the convolution
// before it wrote, in its own cache (channel blocks made EfficientNet-B0's pools 1.7x slower
// on 2 threads than on 1).
#pragma once

#include <limits>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"
#include "kiln/ops/common/elementwise.h"

namespace kiln::nn {

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
    const int64_t plane = x.size() / planes;
    dispatch(FloatTypes{}, x.dtype(), ctx.node().op_type.c_str(), [&]<typename T>() {
      const T* px = x.data<T>();
      T* py = y.data<T>();
      if constexpr (requires { reduce_.add_rows(px, plane, plane, plane, py); }) {
        if (nhwc_) {
          const int64_t images = x.dim(0), channels = x.dim(1);
          const int64_t parts = images < num_threads() && x.size() >= 32768 ? num_threads() : 1;
          std::vector<T> sums(size_t(images * parts * channels), T(0));
          const int64_t item = std::max<int64_t>(1, plane / parts * channels);
          parallel_for(images * parts, std::max<int64_t>(1, 16384 / item), [&](int64_t begin, int64_t end) {
            for (int64_t t = begin; t < end; ++t) {
              const int64_t i = t / parts, p0 = plane * (t % parts) / parts, p1 = plane * (t % parts + 1) / parts;
              reduce_.add_rows(px + (i * plane + p0) * channels, p1 - p0, channels, channels,
                               sums.data() + t * channels);
            }
          });
          for (int64_t i = 0; i < images; ++i) {
            T* s = sums.data() + i * parts * channels;
            for (int64_t p = 1; p < parts; ++p)
              for (int64_t c = 0; c < channels; ++c) s[c] += s[p * channels + c];
            reduce_.finish(s, plane, channels, py + i * channels);
          }
          return;
        }
      }
      parallel_for(planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(plane, 1)), [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) py[p] = reduce_.template operator()<T>(px + p * plane, plane);
      });
    });
  }

 private:
  Reduce reduce_;
  bool nhwc_;
};

}  // namespace kiln::nn
