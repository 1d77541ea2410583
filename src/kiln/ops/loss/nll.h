// The negative log-likelihood step shared by NegativeLogLikelihoodLoss and
// SoftmaxCrossEntropyLoss: given log-probabilities of shape [N, C, D1..Dk] (read as [N, C, D]),
// class targets [N, D1..Dk], optional class weights [C] and ignore_index, produce the per-element
// loss -w[t] * logp[n, t, d] (reduction "none") or its sum or weighted mean.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "kiln/exec/kernel.h"
#include "kiln/ops/common/elementwise.h"

namespace kiln::loss {

enum class Reduction { None, Sum, Mean };

inline Reduction parse_reduction(const ir::Node& node) {
  const std::string r = node.attr_string("reduction", "mean");
  if (r == "none") return Reduction::None;
  if (r == "sum") return Reduction::Sum;
  if (r == "mean") return Reduction::Mean;
  fail(ErrorCode::InvalidGraph, "reduction must be 'none', 'sum' or 'mean', got '", r, "'");
}

struct NllGeometry {
  int64_t n = 0, c = 0, d = 1;
  Shape loss_shape;  // target's shape for "none", [] otherwise
};

// Checks the shapes of scores [N, C, D1..Dk], target [N, D1..Dk] and weight [C].
inline NllGeometry nll_geometry(const Tensor& scores, const Tensor& target, const Tensor* weight,
                                Reduction reduction) {
  const Shape& s = scores.shape();
  if (s.size() < 2) fail(ErrorCode::InvalidArgument, "scores must have rank >= 2 ([N, C, ...]), got ", shape_str(s));
  Shape expect_target{s[0]};
  expect_target.insert(expect_target.end(), s.begin() + 2, s.end());
  if (target.shape() != expect_target)
    fail(ErrorCode::InvalidArgument, "target must have shape ", shape_str(expect_target), " for scores ",
         shape_str(s), ", got ", shape_str(target.shape()));
  if (target.dtype() != DType::Int32 && target.dtype() != DType::Int64)
    fail(ErrorCode::InvalidArgument, "target must be int32 or int64, got ", dtype_name(target.dtype()));
  if (weight) {
    if (weight->shape() != Shape{s[1]})
      fail(ErrorCode::InvalidArgument, "weight must have shape [", s[1], "], got ", shape_str(weight->shape()));
    if (weight->dtype() != scores.dtype())
      fail(ErrorCode::InvalidArgument, "weight is ", dtype_name(weight->dtype()), " but scores are ",
           dtype_name(scores.dtype()));
  }
  NllGeometry g;
  g.n = s[0];
  g.c = s[1];
  for (size_t i = 2; i < s.size(); ++i) g.d *= s[i];
  if (reduction == Reduction::None) g.loss_shape = expect_target;
  return g;
}

// logp: [N, C, D] log-probabilities; writes the loss (target's shape, or one scalar).
template <typename T, typename TI>
void nll_forward(const T* logp, const TI* target, const T* weight, const NllGeometry& g, int64_t ignore_index,
                 bool has_ignore, Reduction reduction, T* loss) {
  const int64_t n = g.n, c = g.c, d = g.d;
  auto check = [&](int64_t t) {
    if (t < 0 || t >= c) fail(ErrorCode::InvalidArgument, "target value ", t, " is outside [0, ", c, ")");
  };
  if (reduction == Reduction::None) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < d; ++j) {
        const int64_t t = int64_t(target[i * d + j]);
        T& out = loss[i * d + j];
        if (has_ignore && t == ignore_index) {
          out = from_compute<T>(0.0f);
          continue;
        }
        check(t);
        const double w = weight ? double(to_compute(weight[t])) : 1.0;
        out = from_compute<T>(-w * double(to_compute(logp[(i * c + t) * d + j])));
      }
    }
    return;
  }
  double sum = 0, wsum = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      const int64_t t = int64_t(target[i * d + j]);
      if (has_ignore && t == ignore_index) continue;
      check(t);
      const double w = weight ? double(to_compute(weight[t])) : 1.0;
      sum -= w * double(to_compute(logp[(i * c + t) * d + j]));
      wsum += w;
    }
  }
  // An all-ignored mean is 0/0 in ONNX's reference: NaN.
  loss[0] = from_compute<T>(reduction == Reduction::Sum ? sum : sum / wsum);
}

using LossTypes = TypeList<float, double, Float16, BFloat16>;

// What the two loss kernels share: the reduction and ignore_index attributes, the shape checks
// of scores, target and weight (input 2), and the step from log-probabilities to the loss.
class NllKernel : public Kernel {
 protected:
  NllKernel(const ir::Node& node, const char* op)
      : op_(op), reduction_(parse_reduction(node)), has_ignore_(node.has_attr("ignore_index")),
        ignore_index_(node.attr_int("ignore_index", 0)) {}

  // Checks the inputs and declares output 0, the loss.
  void prepare_loss(OpContext& ctx) {
    const Tensor& x = ctx.input(0);
    dispatch(LossTypes{}, x.dtype(), op_, []<typename T>() {});
    geom_ = nll_geometry(x, ctx.input(1), ctx.has_input(2) ? &ctx.input(2) : nullptr, reduction_);
    ctx.set_output(0, x.dtype(), geom_.loss_shape);
  }

  // Output 0 from the log-probabilities `logp` (the scores' shape and type).
  void loss_from(OpContext& ctx, const Tensor& logp) {
    const Tensor& target = ctx.input(1);
    const Tensor* weight = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    Tensor& loss = ctx.output(0);
    const std::string what = std::string(op_) + " target";
    dispatch(LossTypes{}, logp.dtype(), op_, [&]<typename T>() {
      dispatch(TypeList<int32_t, int64_t>{}, target.dtype(), what.c_str(), [&]<typename TI>() {
        nll_forward<T, TI>(logp.data<T>(), target.data<TI>(), weight ? weight->data<T>() : nullptr, geom_,
                           ignore_index_, has_ignore_, reduction_, loss.data<T>());
      });
    });
  }

  const char* op_;
  Reduction reduction_;
  bool has_ignore_;
  int64_t ignore_index_;
  NllGeometry geom_;
};

}  // namespace kiln::loss
