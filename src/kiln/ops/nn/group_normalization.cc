// GroupNormalization: X (N, C, ...) has its channels split into num_groups groups; each
// (sample, group) slice is normalized to zero mean and unit variance, then scaled and shifted.
// Opset 18 takes scale and bias per group; opset 21 takes them per channel.
#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace {

class GroupNormalization : public Kernel {
 public:
  explicit GroupNormalization(const ir::Node& node)
      : per_channel_(node.opset >= 21), eps_(node.attr_float("epsilon", 1e-5f)), groups_(node.attr_int("num_groups", 0)) {
    if (!node.has_attr("num_groups")) fail(ErrorCode::InvalidGraph, "the num_groups attribute is required");
    const int64_t stash = node.attr_int("stash_type", 1);
    if (stash != 1) fail(ErrorCode::NotImplemented, "stash_type ", stash, " is not supported (expected 1 for float)");
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() < 2) fail(ErrorCode::InvalidArgument, "X must have shape (N, C, ...), got ", shape_str(x.shape()));
    c_ = x.dim(1);
    if (groups_ <= 0 || c_ % groups_ != 0)
      fail(ErrorCode::InvalidArgument, "num_groups ", groups_, " must be positive and divide the channel count ", c_);
    const int64_t want = per_channel_ ? c_ : groups_;
    for (int i = 1; i <= 2; ++i) {
      const Tensor& p = ctx.input(i);
      if (p.dtype() != x.dtype())
        fail(ErrorCode::InvalidArgument, i == 1 ? "scale" : "bias", " is ", dtype_name(p.dtype()), " but X is ",
             dtype_name(x.dtype()));
      if (p.rank() != 1 || p.dim(0) != want)
        fail(ErrorCode::InvalidArgument, i == 1 ? "scale" : "bias", " must have shape [", want, "] (",
             per_channel_ ? "one per channel" : "one per group", "), got ", shape_str(p.shape()));
    }
    n_ = x.dim(0);
    spatial_ = shape_size(Shape(x.shape().begin() + 2, x.shape().end()));
    ctx.set_output(0, x.dtype(), x.shape());
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    dispatch(FloatTypes{}, x.dtype(), "GroupNormalization", [&]<typename T>() {
      const T* px = x.data<T>();
      const T* scale = ctx.input(1).data<T>();
      const T* bias = ctx.input(2).data<T>();
      T* py = ctx.output(0).data<T>();
      const int64_t cpg = c_ / groups_, len = cpg * spatial_, sp = spatial_;
      const T eps = T(eps_);
      parallel_for(n_ * groups_, std::max<int64_t>(1, 4096 / std::max<int64_t>(len, 1)), [&](int64_t s, int64_t e) {
        for (int64_t w = s; w < e; ++w) {
          const int64_t g = w % groups_;
          const T* xg = px + w * len;
          T* yg = py + w * len;
          T sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int64_t i = 0; i < len; ++i) sum += xg[i];
          const T mean = sum / T(len);
          T sq = 0;
#pragma omp simd reduction(+ : sq)
          for (int64_t i = 0; i < len; ++i) sq += (xg[i] - mean) * (xg[i] - mean);
          const T inv = T(1) / std::sqrt(sq / T(len) + eps);
          for (int64_t c = 0; c < cpg; ++c) {
            const int64_t p = per_channel_ ? g * cpg + c : g;
            const T a = inv * scale[p], b = bias[p] - mean * a;
            const T* xc = xg + c * sp;
            T* yc = yg + c * sp;
#pragma omp simd
            for (int64_t i = 0; i < sp; ++i) yc[i] = xc[i] * a + b;
          }
        }
      });
    });
  }

 private:
  bool per_channel_;
  float eps_;
  int64_t groups_;
  int64_t n_ = 0, c_ = 0, spatial_ = 0;
};

const OpRegistration kGroupNormalization{"GroupNormalization", make_kernel<GroupNormalization>};

}  // namespace
}  // namespace kiln
