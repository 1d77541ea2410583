// ReverseSequence: for each batch entry b, reverses the first sequence_lens[b] steps along
// the time axis and copies the rest. Batch and time are the first two axes (in either order),
// so every (batch, step) pair moves one contiguous block of the remaining dims.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class ReverseSequence : public Kernel {
 public:
  explicit ReverseSequence(const ir::Node& node)
      : batch_axis_(node.attr_int("batch_axis", 1)), time_axis_(node.attr_int("time_axis", 0)) {
    if (!((batch_axis_ == 0 && time_axis_ == 1) || (batch_axis_ == 1 && time_axis_ == 0)))
      fail(ErrorCode::InvalidGraph, "batch_axis and time_axis must be 0 and 1 in some order, got ", batch_axis_, " and ",
           time_axis_);
  }
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& lens = ctx.input(1);
    if (x.rank() < 2) fail(ErrorCode::InvalidArgument, "input must have rank >= 2, got shape ", shape_str(x.shape()));
    if (lens.dtype() != DType::Int64)
      fail(ErrorCode::InvalidArgument, "sequence_lens must be int64, got ", dtype_name(lens.dtype()));
    if (lens.rank() != 1 || lens.size() != x.dim(batch_axis_))
      fail(ErrorCode::InvalidArgument, "sequence_lens must be 1-D with the batch size ", x.dim(batch_axis_),
           ", got shape ", shape_str(lens.shape()));
    ctx.set_output(0, x.dtype(), x.shape());
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    const int64_t* lens = ctx.input(1).data<int64_t>();
    const int64_t batch = x.dim(batch_axis_), steps = x.dim(time_axis_);
    for (int64_t b = 0; b < batch; ++b)
      if (lens[b] < 0 || lens[b] > steps)
        fail(ErrorCode::InvalidArgument, "sequence_lens[", b, "] = ", lens[b], " is out of range: expected [0, ", steps, "]");
    if (y.size() == 0) return;
    const int64_t inner = x.size() / (batch * steps);
    // Element offset of (batch b, time t).
    const int64_t bs = (batch_axis_ == 0 ? steps : 1) * inner, ts = (time_axis_ == 0 ? batch : 1) * inner;
    tensor_ops::dispatch_elements(x.dtype(), [&]<typename T>() {
      const T* src = tensor_ops::elems<T>(x);
      T* dst = tensor_ops::elems<T>(y);
      parallel_for(batch * steps, std::max<int64_t>(1, 32768 / inner), [&](int64_t s, int64_t e) {
        for (int64_t p = s; p < e; ++p) {
          const int64_t b = p / steps, t = p % steps;
          const int64_t from = t < lens[b] ? lens[b] - 1 - t : t;
          tensor_ops::copy_n(src + b * bs + from * ts, inner, dst + b * bs + t * ts);
        }
      });
    });
  }

 private:
  int64_t batch_axis_, time_axis_;
};
const OpRegistration kReverseSequence{"ReverseSequence", make_kernel<ReverseSequence>};
}  // namespace
}  // namespace kiln
