// InstanceNormalization (opsets 1, 6): each (n, c) plane normalized by its own mean and
// (population) variance, then scaled and shifted per channel. Statistics are accumulated in
// double, two passes, so large planes keep their precision.
#include <cmath>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {

class InstanceNormalization : public Kernel {
 public:
  explicit InstanceNormalization(const ir::Node& node) : epsilon_(node.attr_float("epsilon", 1e-5f)) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64)
      fail(ErrorCode::NotImplemented, "element type ", dtype_name(x.dtype()), " is not supported (float and double are)");
    if (x.rank() < 3)
      fail(ErrorCode::InvalidArgument, "input must be [N, C, D1, ...] with at least one spatial dimension, got ",
           shape_str(x.shape()));
    for (int i = 1; i <= 2; ++i) {
      const Tensor& p = ctx.input(i);
      if (p.dtype() != x.dtype() || p.rank() != 1 || p.dim(0) != x.dim(1))
        fail(ErrorCode::InvalidArgument, i == 1 ? "scale" : "B", " must be ", dtype_name(x.dtype()), " [", x.dim(1),
             "] (one per channel), got ", dtype_name(p.dtype()), " ", shape_str(p.shape()));
    }
    ctx.set_output(0, x.dtype(), x.shape());
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    const int64_t channels = x.dim(1), planes = x.dim(0) * channels, plane = x.size() / planes;
    dispatch(FloatTypes{}, x.dtype(), "InstanceNormalization", [&]<typename T>() {
      const T* px = x.data<T>();
      const T* scale = ctx.input(1).data<T>();
      const T* bias = ctx.input(2).data<T>();
      T* py = y.data<T>();
      parallel_for(planes, 1, [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) {
          const T* xp = px + p * plane;
          T* yp = py + p * plane;
          double sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int64_t i = 0; i < plane; ++i) sum += double(xp[i]);
          const double mean = sum / double(plane);
          double sq = 0;
#pragma omp simd reduction(+ : sq)
          for (int64_t i = 0; i < plane; ++i) sq += (double(xp[i]) - mean) * (double(xp[i]) - mean);
          const double s = double(scale[p % channels]) / std::sqrt(sq / double(plane) + double(epsilon_));
          const T a = T(s), b = T(double(bias[p % channels]) - mean * s);
#pragma omp simd
          for (int64_t i = 0; i < plane; ++i) yp[i] = xp[i] * a + b;
        }
      });
    });
  }

 private:
  float epsilon_;
};

const OpRegistration kInstanceNormalization{"InstanceNormalization", make_kernel<InstanceNormalization>};

}  // namespace
}  // namespace kiln
