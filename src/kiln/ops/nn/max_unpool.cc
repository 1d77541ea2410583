// MaxUnpool (opsets 9, 11): the partial inverse of MaxPool. Y starts as zeros and each X value
// goes to the flat position (over the whole Y) its index in I names, as MaxPool's Indices output
// gives them. Y's shape is output_shape (input 2) when given, else the pooling's input size
// (in - 1) * stride + kernel - pads per spatial dimension.
#include <algorithm>

#include "kiln/exec/kernel.h"
#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/nn/window.h"

namespace kiln {
namespace {

class MaxUnpool : public Kernel {
 public:
  explicit MaxUnpool(const ir::Node& node) : kernel_(nn::read_kernel_shape(node, -1)) {
    if (kernel_.empty()) fail(ErrorCode::InvalidGraph, "MaxUnpool needs the kernel_shape attribute");
    window_ = nn::read_window(node, kernel_);
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    const size_t r = kernel_.size();
    if (x.rank() != int64_t(r) + 2)
      fail(ErrorCode::InvalidArgument, "X must be [N, C] plus ", r, " spatial dimensions (kernel_shape ",
           nn::dims_str(kernel_), "), got ", shape_str(x.shape()));
    if (idx.dtype() != DType::Int64 || idx.shape() != x.shape())
      fail(ErrorCode::InvalidArgument, "I must be int64 with X's shape ", shape_str(x.shape()), ", got ",
           dtype_name(idx.dtype()), " ", shape_str(idx.shape()));
    Shape out{x.dim(0), x.dim(1)};
    for (size_t d = 0; d < r; ++d)
      out.push_back((x.dim(int64_t(d) + 2) - 1) * window_.strides[d] + kernel_[d] - window_.pads_begin[d] -
                    window_.pads_end[d]);
    if (ctx.has_input(2)) {
      const std::vector<int64_t> given = ctx.input(2).to_int64s();
      if (given.size() != out.size() || given[0] != out[0] || given[1] != out[1])
        fail(ErrorCode::InvalidArgument, "output_shape ", nn::dims_str(given), " must be [", out[0], ", ", out[1],
             ", ...] with ", r, " spatial dimensions");
      for (size_t d = 2; d < given.size(); ++d)
        if (given[d] < out[d])
          fail(ErrorCode::InvalidArgument, "output_shape ", nn::dims_str(given), " is smaller than the unpooled size ",
               shape_str(out));
      out = given;
    }
    for (int64_t v : out)
      if (v < 0) fail(ErrorCode::InvalidArgument, "the output shape ", shape_str(out), " has a negative dimension");
    dispatch(AllNumericTypes{}, x.dtype(), "MaxUnpool", []<typename T>() {});
    ctx.set_output(0, x.dtype(), out);
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t* idx = ctx.input(1).data<int64_t>();
    Tensor& y = ctx.output(0);
    const int64_t total = y.size();
    std::memset(y.raw(), 0, y.bytes());
    dispatch(AllNumericTypes{}, x.dtype(), "MaxUnpool", [&]<typename T>() {
      const T* px = x.data<T>();
      T* py = y.data<T>();
      for (int64_t i = 0; i < x.size(); ++i) {
        if (idx[i] < 0 || idx[i] >= total)
          fail(ErrorCode::InvalidArgument, "index ", idx[i], " at position ", i, " is outside the output of ", total,
               " values");
        py[idx[i]] = px[i];
      }
    });
  }

  std::vector<int> value_inputs() const override { return {2}; }

 private:
  std::vector<int64_t> kernel_;
  nn::Window window_;
};

const OpRegistration kMaxUnpool{"", "MaxUnpool", 9, make_kernel<MaxUnpool>};

}  // namespace
}  // namespace kiln
