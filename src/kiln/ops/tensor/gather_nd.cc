// GatherND: each row of `indices` (last dim k) addresses a slice data[b..., i0, ..., ik-1]
// within its batch (the first batch_dims dims, shared by data and indices). The output is
// indices.shape[:-1] + data.shape[batch_dims + k:].
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class GatherND : public Kernel {
 public:
  explicit GatherND(const ir::Node& node) : batch_dims_(node.attr_int("batch_dims", 0)) {}
  void prepare(OpContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    if (idx.dtype() != DType::Int64) fail(ErrorCode::InvalidArgument, "indices must be int64, got ", dtype_name(idx.dtype()));
    const int64_t r = data.rank(), q = idx.rank(), b = batch_dims_;
    if (r < 1 || q < 1) fail(ErrorCode::InvalidArgument, "data and indices must have rank >= 1");
    if (b < 0 || b >= std::min(r, q))
      fail(ErrorCode::InvalidArgument, "batch_dims ", b, " must be in [0, min(rank(data), rank(indices))) = [0, ",
           std::min(r, q), ")");
    for (int64_t d = 0; d < b; ++d)
      if (data.dim(d) != idx.dim(d))
        fail(ErrorCode::InvalidArgument, "batch dimension ", d, " differs: data ", shape_str(data.shape()),
             ", indices ", shape_str(idx.shape()));
    k_ = idx.dim(q - 1);
    if (k_ > r - b)
      fail(ErrorCode::InvalidArgument, "indices ", shape_str(idx.shape()), " address ", k_, " dims but data ",
           shape_str(data.shape()), " has only ", r - b, " after batch_dims ", b);
    Shape out(idx.shape().begin(), idx.shape().end() - 1);
    out.insert(out.end(), data.shape().begin() + b + k_, data.shape().end());
    ctx.set_output(0, data.dtype(), out);
  }
  void compute(OpContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    Tensor& y = ctx.output(0);
    const int64_t b = batch_dims_;
    const std::vector<int64_t> dstr = tensor_ops::contiguous_strides(data.shape());
    int64_t batches = 1;
    for (int64_t d = 0; d < b; ++d) batches *= data.dim(d);
    const int64_t tuples = shape_size(Shape(idx.shape().begin(), idx.shape().end() - 1));
    const int64_t per_batch = batches ? tuples / batches : 0;
    const int64_t slice = shape_size(Shape(data.shape().begin() + b + k_, data.shape().end()));
    const int64_t batch_stride = b > 0 ? dstr[size_t(b - 1)] : 0;
    // Offsets first, serially: a bad index fails before anything is written.
    const int64_t* pi = idx.data<int64_t>();
    std::vector<int64_t> offsets(static_cast<size_t>(tuples));
    for (int64_t t = 0; t < tuples; ++t) {
      int64_t off = (per_batch ? t / per_batch : 0) * batch_stride;
      for (int64_t j = 0; j < k_; ++j)
        off += tensor_ops::wrap_index(pi[t * k_ + j], data.dim(b + j), "index") * dstr[size_t(b + j)];
      offsets[size_t(t)] = off;
    }
    if (y.size() == 0) return;
    tensor_ops::dispatch_elements(data.dtype(), [&]<typename T>() {
      const T* src = tensor_ops::elems<T>(data);
      T* dst = tensor_ops::elems<T>(y);
      parallel_for(tuples, std::max<int64_t>(1, 32768 / slice), [&](int64_t s, int64_t e) {
        for (int64_t t = s; t < e; ++t) tensor_ops::copy_n(src + offsets[size_t(t)], slice, dst + t * slice);
      });
    });
  }

 private:
  int64_t batch_dims_;
  int64_t k_ = 0;
};
const OpRegistration kGatherND{"GatherND", make_kernel<GatherND>};
}  // namespace
}  // namespace kiln
