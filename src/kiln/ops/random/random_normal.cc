// RandomNormal (opset 1): a tensor of the `shape` attribute drawn from N(mean, scale^2), of
// type `dtype` (float by default: float, double, float16, bfloat16).
#include "kiln/ops/random/random_common.h"

namespace kiln {
namespace {

class RandomNormal : public Kernel {
 public:
  explicit RandomNormal(const ir::Node& node)
      : keys_(node), dtype_(random::read_dtype(node, DType::Float32)), mean_(node.attr_float("mean", 0.0f)),
        scale_(node.attr_float("scale", 1.0f)), shape_(node.attr_ints("shape")) {
    if (!node.has_attr("shape")) fail(ErrorCode::InvalidGraph, "RandomNormal needs the shape attribute");
    for (int64_t d : shape_)
      if (d < 0) fail(ErrorCode::InvalidGraph, "shape must not have negative dimensions, got ", shape_str(shape_));
    dispatch(random::RandomTypes{}, dtype_, "RandomNormal", []<typename T>() {});
  }

  void prepare(OpContext& ctx) override { ctx.set_output(0, dtype_, shape_); }

  void compute(OpContext& ctx) override {
    Tensor& y = ctx.output(0);
    const uint64_t key = keys_.next();
    dispatch(random::RandomTypes{}, dtype_, "RandomNormal",
             [&]<typename T>() { random::fill_normal(y.data<T>(), y.size(), key, mean_, scale_); });
  }

 private:
  random::KeySource keys_;
  DType dtype_;
  double mean_, scale_;
  Shape shape_;
};

const OpRegistration kRandomNormal{"", "RandomNormal", 1, make_kernel<RandomNormal>};

}  // namespace
}  // namespace kiln
