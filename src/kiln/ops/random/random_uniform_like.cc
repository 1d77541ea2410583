// RandomUniformLike (opset 1): RandomUniform with the input's shape; the type is `dtype`, or
// the input's when it is a float type.
#include "kiln/ops/random/random_common.h"

namespace kiln {
namespace {

class RandomUniformLike : public Kernel {
 public:
  explicit RandomUniformLike(const ir::Node& node)
      : keys_(node), has_dtype_(node.has_attr("dtype")), dtype_(random::read_dtype(node, DType::Undefined)),
        low_(node.attr_float("low", 0.0f)), high_(node.attr_float("high", 1.0f)) {
    if (!(low_ <= high_)) fail(ErrorCode::InvalidGraph, "low ", low_, " must not exceed high ", high_);
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    out_ = has_dtype_ ? dtype_ : x.dtype();
    dispatch(random::RandomTypes{}, out_, "RandomUniformLike output", []<typename T>() {});
    ctx.set_output(0, out_, x.shape());
  }

  void compute(OpContext& ctx) override {
    Tensor& y = ctx.output(0);
    const uint64_t key = keys_.next();
    dispatch(random::RandomTypes{}, out_, "RandomUniformLike",
             [&]<typename T>() { random::fill_uniform(y.data<T>(), y.size(), key, low_, high_); });
  }

 private:
  random::KeySource keys_;
  bool has_dtype_;
  DType dtype_, out_ = DType::Undefined;
  double low_, high_;
};

const OpRegistration kRandomUniformLike{"", "RandomUniformLike", 1, make_kernel<RandomUniformLike>};

}  // namespace
}  // namespace kiln
