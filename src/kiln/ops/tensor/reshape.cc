// Reshape: a view of the input's buffer under the requested shape. In the shape, -1 takes
// the remaining size and 0 copies the input's dimension, unless allowzero=1 (opset 14) makes
// 0 a real zero. Before opset 5 the shape was an attribute.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Reshape : public Kernel {
 public:
  explicit Reshape(const ir::Node& node)
      : allowzero_(node.attr_int("allowzero", 0) != 0), attr_shape_(node.attr_ints("shape")),
        from_attr_(node.opset < 5) {}
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> req;
    if (from_attr_) {
      req = attr_shape_;
    } else {
      const Tensor& s = ctx.input(1);
      if (s.dtype() != DType::Int64) fail(ErrorCode::InvalidArgument, "shape must be int64, got ", dtype_name(s.dtype()));
      if (s.rank() != 1) fail(ErrorCode::InvalidArgument, "shape must be 1-D, got shape ", shape_str(s.shape()));
      req = s.to_int64s();
    }
    Shape out(req.size());
    int64_t infer = -1, known = 1;
    bool has_zero = false;
    for (size_t i = 0; i < req.size(); ++i) {
      int64_t d = req[i];
      if (d == -1) {
        if (infer >= 0) fail(ErrorCode::InvalidArgument, "shape ", shape_str(req), " has more than one -1");
        infer = int64_t(i);
        continue;
      }
      if (d < -1) fail(ErrorCode::InvalidArgument, "shape ", shape_str(req), " has invalid dimension ", d);
      if (d == 0 && !allowzero_) {
        if (int64_t(i) >= x.rank())
          fail(ErrorCode::InvalidArgument, "shape ", shape_str(req), " copies dimension ", i, " (0) but the input ",
               shape_str(x.shape()), " has rank ", x.rank());
        d = x.dim(int64_t(i));
      }
      if (d == 0) has_zero = true;
      out[i] = d;
      if (__builtin_mul_overflow(known, d, &known))
        fail(ErrorCode::InvalidArgument, "shape ", shape_str(req), " is too large");
    }
    if (infer >= 0) {
      if (allowzero_ && has_zero)
        fail(ErrorCode::InvalidArgument, "shape ", shape_str(req), " has both -1 and 0 with allowzero=1");
      if (known == 0 || x.size() % known != 0)
        fail(ErrorCode::InvalidArgument, "cannot reshape input ", shape_str(x.shape()), " (", x.size(),
             " elements) to ", shape_str(req));
      out[size_t(infer)] = x.size() / known;
    } else if (known != x.size()) {
      fail(ErrorCode::InvalidArgument, "cannot reshape input ", shape_str(x.shape()), " (", x.size(),
           " elements) to ", shape_str(out), " (", known, " elements)");
    }
    shape_ = std::move(out);
  }
  void compute(OpContext& ctx) override { ctx.set_output_tensor(0, ctx.input(0).reshaped(shape_)); }
  std::vector<int> value_inputs() const override { return {1}; }

 private:
  bool allowzero_;
  std::vector<int64_t> attr_shape_;
  bool from_attr_;
  Shape shape_;
};
const OpRegistration kReshape{"Reshape", make_kernel<Reshape>};
}  // namespace
}  // namespace kiln
