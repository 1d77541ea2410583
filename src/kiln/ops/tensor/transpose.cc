// Transpose: permutes the axes (reversed when perm is absent). Dims that stay adjacent are
// merged, and the copy is tiled when the innermost axis moves (see tensor_ops::permute). A
// permutation that only moves dims of size 1 (a batch of one swapped with the sequence, as
// PyTorch's attention writes it) keeps the element order: the output is a view, not a copy.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Transpose : public Kernel {
 public:
  explicit Transpose(const ir::Node& node) : attr_perm_(node.attr_ints("perm")), has_perm_(node.has_attr("perm")) {}
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t rank = x.rank();
    perm_.clear();
    if (has_perm_) {
      if (int64_t(attr_perm_.size()) != rank)
        fail(ErrorCode::InvalidArgument, "perm ", shape_str(attr_perm_), " has ", attr_perm_.size(),
             " entries but the input ", shape_str(x.shape()), " has rank ", rank);
      std::vector<bool> seen(size_t(rank), false);
      for (int64_t p : attr_perm_) {
        int64_t a = tensor_ops::normalize_axis(p, rank, "perm entry");
        if (seen[size_t(a)]) fail(ErrorCode::InvalidArgument, "perm ", shape_str(attr_perm_), " repeats axis ", p);
        seen[size_t(a)] = true;
        perm_.push_back(a);
      }
    } else {
      for (int64_t d = rank; d-- > 0;) perm_.push_back(d);
    }
    out_.clear();
    int64_t last = -1;
    view_ = true;
    for (int64_t p : perm_) {
      out_.push_back(x.dim(p));
      if (x.dim(p) == 1) continue;
      view_ = view_ && p > last;
      last = p;
    }
    if (!view_) ctx.set_output(0, x.dtype(), out_);
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (view_) return ctx.set_output_tensor(0, x.reshaped(out_));
    Tensor& y = ctx.output(0);
    tensor_ops::dispatch_elements(x.dtype(), [&]<typename T>() {
      tensor_ops::permute(tensor_ops::elems<T>(x), x.shape(), perm_, tensor_ops::elems<T>(y));
    });
  }

 private:
  std::vector<int64_t> attr_perm_;
  bool has_perm_;
  std::vector<int64_t> perm_;
  Shape out_;
  bool view_ = false;
};
const OpRegistration kTranspose{"Transpose", make_kernel<Transpose>};
}  // namespace
}  // namespace kiln
