// RandomUniform (opset 1): a tensor of the `shape` attribute drawn uniformly from [low, high),
// of type `dtype` (float by default: float, double, float16, bfloat16).
#include "kiln/ops/random/random_common.h"

namespace kiln {
namespace {

class RandomUniform : public Kernel {
 public:
  explicit RandomUniform(const ir::Node& node)
      : keys_(node), dtype_(random::read_dtype(node, DType::Float32)), low_(node.attr_float("low", 0.0f)),
        high_(node.attr_float("high", 1.0f)), shape_(node.attr_ints("shape")) {
    if (!node.has_attr("shape")) fail(ErrorCode::InvalidGraph, "RandomUniform needs the shape attribute");
    for (int64_t d : shape_)
      if (d < 0) fail(ErrorCode::InvalidGraph, "shape must not have negative dimensions, got ", shape_str(shape_));
    if (!(low_ <= high_)) fail(ErrorCode::InvalidGraph, "low ", low_, " must not exceed high ", high_);
    dispatch(random::RandomTypes{}, dtype_, "RandomUniform", []<typename T>() {});
  }

  void prepare(OpContext& ctx) override { ctx.set_output(0, dtype_, shape_); }

  void compute(OpContext& ctx) override {
    Tensor& y = ctx.output(0);
    const uint64_t key = keys_.next();
    dispatch(random::RandomTypes{}, dtype_, "RandomUniform",
             [&]<typename T>() { random::fill_uniform(y.data<T>(), y.size(), key, low_, high_); });
  }

 private:
  random::KeySource keys_;
  DType dtype_;
  double low_, high_;
  Shape shape_;
};

const OpRegistration kRandomUniform{"", "RandomUniform", 1, make_kernel<RandomUniform>};

}  // namespace
}  // namespace kiln
