// ScatterND: a copy of `data` in which each row of `indices` (last dim k) addresses a slice
// data[i0, ..., ik-1] that the matching slice of `updates` replaces or combines with.
#include "kiln/ops/tensor/scatter_reduce.h"

namespace kiln {
namespace {
class ScatterND : public Kernel {
 public:
  explicit ScatterND(const ir::Node& node) : reduction_(tensor_ops::parse_reduction(node)) {}
  void prepare(OpContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    const Tensor& upd = ctx.input(2);
    if (idx.dtype() != DType::Int64) fail(ErrorCode::InvalidArgument, "indices must be int64, got ", dtype_name(idx.dtype()));
    if (upd.dtype() != data.dtype())
      fail(ErrorCode::InvalidArgument, "updates are ", dtype_name(upd.dtype()), " but data is ", dtype_name(data.dtype()));
    if (data.rank() < 1 || idx.rank() < 1) fail(ErrorCode::InvalidArgument, "data and indices must have rank >= 1");
    const int64_t k = idx.dim(idx.rank() - 1);
    if (k > data.rank())
      fail(ErrorCode::InvalidArgument, "indices ", shape_str(idx.shape()), " address ", k, " dims but data ",
           shape_str(data.shape()), " has rank ", data.rank());
    Shape expect(idx.shape().begin(), idx.shape().end() - 1);
    expect.insert(expect.end(), data.shape().begin() + k, data.shape().end());
    if (upd.shape() != expect)
      fail(ErrorCode::InvalidArgument, "updates have shape ", shape_str(upd.shape()), ", expected ", shape_str(expect),
           " from data ", shape_str(data.shape()), " and indices ", shape_str(idx.shape()));
    ctx.set_output(0, data.dtype(), data.shape());
  }
  void compute(OpContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    const Tensor& upd = ctx.input(2);
    Tensor& y = ctx.output(0);
    const int64_t k = idx.dim(idx.rank() - 1);
    const std::vector<int64_t> dstr = tensor_ops::contiguous_strides(data.shape());
    const int64_t tuples = shape_size(Shape(idx.shape().begin(), idx.shape().end() - 1));
    const int64_t slice = shape_size(Shape(data.shape().begin() + k, data.shape().end()));
    const int64_t* pi = idx.data<int64_t>();
    std::vector<int64_t> offsets(static_cast<size_t>(tuples));
    for (int64_t t = 0; t < tuples; ++t) {
      int64_t off = 0;
      for (int64_t j = 0; j < k; ++j) off += tensor_ops::wrap_index(pi[t * k + j], data.dim(j), "index") * dstr[size_t(j)];
      offsets[size_t(t)] = off;
    }
    tensor_ops::dispatch_scatter(reduction_, data.dtype(), [&]<typename T, bool kReplace>() {
      T* dst = tensor_ops::elems<T>(y);
      const T* src = tensor_ops::elems<T>(upd);
      tensor_ops::parallel_copy(tensor_ops::elems<T>(data), data.size(), dst);
      // In index order, so repeated indices combine deterministically.
      for (int64_t t = 0; t < tuples; ++t) {
        T* d = dst + offsets[size_t(t)];
        const T* s = src + t * slice;
        if constexpr (kReplace) {
          tensor_ops::copy_n(s, slice, d);
        } else {
          for (int64_t i = 0; i < slice; ++i) tensor_ops::combine(reduction_, d[i], s[i]);
        }
      }
    });
  }

 private:
  tensor_ops::Reduction reduction_;
};
const OpRegistration kScatterND{"ScatterND", make_kernel<ScatterND>};
}  // namespace
}  // namespace kiln
