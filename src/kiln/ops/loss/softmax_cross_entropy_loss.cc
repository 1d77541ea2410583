// SoftmaxCrossEntropyLoss (opset 12, 13): log-softmax of the scores over C, then the
// negative log-likelihood step (loss/nll.h). The optional second output is the log-softmax.
#include <algorithm>
#include <limits>

#include "kiln/ops/loss/nll.h"

namespace kiln {
namespace {

// logp[n, :, j] = log_softmax(x[n, :, j]) for x of shape [N, C, D]; the class loop is outer
// so the inner loops run contiguously over D.
template <typename T>
void log_softmax_over_classes(const T* x, T* logp, int64_t n, int64_t c, int64_t d) {
  using C = compute_t<T>;
  parallel_for(n, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, c * d)), [&](int64_t b, int64_t e) {
    std::vector<C> mx(static_cast<size_t>(d)), sum(static_cast<size_t>(d));
    for (int64_t i = b; i < e; ++i) {
      const T* xi = x + i * c * d;
      T* li = logp + i * c * d;
      std::fill(mx.begin(), mx.end(), -std::numeric_limits<C>::infinity());
      std::fill(sum.begin(), sum.end(), C(0));
      for (int64_t k = 0; k < c; ++k)
        for (int64_t j = 0; j < d; ++j) mx[size_t(j)] = std::max(mx[size_t(j)], C(to_compute(xi[k * d + j])));
      for (int64_t k = 0; k < c; ++k)
        for (int64_t j = 0; j < d; ++j) sum[size_t(j)] += std::exp(C(to_compute(xi[k * d + j])) - mx[size_t(j)]);
      for (int64_t j = 0; j < d; ++j) sum[size_t(j)] = mx[size_t(j)] + std::log(sum[size_t(j)]);
      for (int64_t k = 0; k < c; ++k)
        for (int64_t j = 0; j < d; ++j) li[k * d + j] = from_compute<T>(C(to_compute(xi[k * d + j])) - sum[size_t(j)]);
    }
  });
}

class SoftmaxCrossEntropyLoss : public loss::NllKernel {
 public:
  explicit SoftmaxCrossEntropyLoss(const ir::Node& node) : NllKernel(node, "SoftmaxCrossEntropyLoss") {}

  void prepare(OpContext& ctx) override {
    prepare_loss(ctx);
    const Tensor& x = ctx.input(0);
    if (ctx.has_output(1)) {
      ctx.set_output(1, x.dtype(), x.shape());
      scratch_ = Tensor();
    } else {
      scratch_ = Tensor(x.dtype(), x.shape());
    }
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& logp = ctx.has_output(1) ? ctx.output(1) : scratch_;
    dispatch(loss::LossTypes{}, x.dtype(), "SoftmaxCrossEntropyLoss", [&]<typename T>() {
      log_softmax_over_classes(x.data<T>(), logp.data<T>(), geom_.n, geom_.c, geom_.d);
    });
    loss_from(ctx, logp);
  }

 private:
  Tensor scratch_;  // the log-softmax when the graph does not ask for it
};

const OpRegistration kSoftmaxCrossEntropyLoss{"", "SoftmaxCrossEntropyLoss", 12, make_kernel<SoftmaxCrossEntropyLoss>};

}  // namespace
}  // namespace kiln
