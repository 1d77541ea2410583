// RandomNormalLike (opset 1): RandomNormal with the input's shape; the type is `dtype`, or the
// input's when it is a float type.
#include "kiln/ops/random/random_common.h"

namespace kiln {
namespace {

class RandomNormalLike : public Kernel {
 public:
  explicit RandomNormalLike(const ir::Node& node)
      : keys_(node), has_dtype_(node.has_attr("dtype")), dtype_(random::read_dtype(node, DType::Undefined)),
        mean_(node.attr_float("mean", 0.0f)), scale_(node.attr_float("scale", 1.0f)) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    out_ = has_dtype_ ? dtype_ : x.dtype();
    dispatch(random::RandomTypes{}, out_, "RandomNormalLike output", []<typename T>() {});
    ctx.set_output(0, out_, x.shape());
  }

  void compute(OpContext& ctx) override {
    Tensor& y = ctx.output(0);
    const uint64_t key = keys_.next();
    dispatch(random::RandomTypes{}, out_, "RandomNormalLike",
             [&]<typename T>() { random::fill_normal(y.data<T>(), y.size(), key, mean_, scale_); });
  }

 private:
  random::KeySource keys_;
  bool has_dtype_;
  DType dtype_, out_ = DType::Undefined;
  double mean_, scale_;
};

const OpRegistration kRandomNormalLike{"", "RandomNormalLike", 1, make_kernel<RandomNormalLike>};

}  // namespace
}  // namespace kiln
