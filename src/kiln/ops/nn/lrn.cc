// LRN (opsets 1, 13): y = x / (bias + alpha / size * sum of x^2 over nearby channels)^beta,
// the window running from c - floor((size-1)/2) to c + ceil((size-1)/2). float with an odd
// size runs on oneDNN (its window is centred, so even sizes differ); the rest takes a loop.
#include <cmath>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"
#include "kiln/ops/common/dnnl.h"

namespace kiln {
namespace {

class LRN : public Kernel {
 public:
  explicit LRN(const ir::Node& node)
      : size_(node.attr_int("size", 0)),
        alpha_(node.attr_float("alpha", 1e-4f)),
        beta_(node.attr_float("beta", 0.75f)),
        bias_(node.attr_float("bias", 1.f)) {
    if (size_ <= 0) fail(ErrorCode::InvalidGraph, "size must be a positive number of channels, got ", size_);
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64)
      fail(ErrorCode::NotImplemented, "element type ", dtype_name(x.dtype()), " is not supported (float and double are)");
    if (x.rank() < 3)
      fail(ErrorCode::InvalidArgument, "X must be [N, C, D1, ...] with at least one spatial dimension, got ",
           shape_str(x.shape()));
    ctx.set_output(0, x.dtype(), x.shape());
    use_dnnl_ = x.dtype() == DType::Float32 && size_ % 2 == 1 && x.rank() <= 5 && x.size() > 0;
    if (!use_dnnl_) return;
    md_ = plain_desc(x.shape(), x.dtype());
    dnnl::lrn_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::lrn_across_channels, md_, size_,
                              alpha_, beta_, bias_);
    prim_ = dnnl::lrn_forward(dnnl::lrn_forward::primitive_desc(d, dnnl_engine()));
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    if (use_dnnl_) {
      auto& stream = dnnl_stream();
      prim_.execute(stream, {{DNNL_ARG_SRC, wrap(md_, x.raw())}, {DNNL_ARG_DST, wrap(md_, y.raw())}});
      stream.wait();
      return;
    }
    const int64_t channels = x.dim(1), planes = x.dim(0) * channels, plane = x.size() / planes;
    const int64_t below = (size_ - 1) / 2, above = size_ - 1 - below;
    dispatch(FloatTypes{}, x.dtype(), "LRN", [&]<typename T>() {
      const T* px = x.data<T>();
      T* py = y.data<T>();
      const T scale = T(alpha_) / T(size_), beta = T(beta_), bias = T(bias_);
      parallel_for(planes, 1, [&](int64_t begin, int64_t end) {
        std::vector<T> acc(static_cast<size_t>(plane));
        for (int64_t p = begin; p < end; ++p) {
          const int64_t c = p % channels, base = p - c;
          std::fill(acc.begin(), acc.end(), T(0));
          for (int64_t q = std::max<int64_t>(0, c - below); q <= std::min(channels - 1, c + above); ++q) {
            const T* xq = px + (base + q) * plane;
#pragma omp simd
            for (int64_t i = 0; i < plane; ++i) acc[size_t(i)] += xq[i] * xq[i];
          }
          const T* xp = px + p * plane;
          T* yp = py + p * plane;
          for (int64_t i = 0; i < plane; ++i) yp[i] = xp[i] / std::pow(bias + scale * acc[size_t(i)], beta);
        }
      });
    });
  }

 private:
  int64_t size_;
  float alpha_, beta_, bias_;
  bool use_dnnl_ = false;
  dnnl::lrn_forward prim_;
  dnnl::memory::desc md_;
};

const OpRegistration kLRN{"LRN", make_kernel<LRN>};

}  // namespace
}  // namespace kiln
