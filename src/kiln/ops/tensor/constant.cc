// Constant: the value attribute (or value_float(s)/value_int(s)/value_string(s)).
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {
class Constant : public Kernel {
 public:
  explicit Constant(const ir::Node& node) {
    if (const auto* a = node.attr("value")) {
      value_ = a->t;
    } else if (const auto* a = node.attr("value_float")) {
      value_ = Tensor(DType::Float32, {});
      value_.data<float>()[0] = a->f;
    } else if (const auto* a = node.attr("value_floats")) {
      value_ = Tensor(DType::Float32, {int64_t(a->floats.size())});
      std::copy(a->floats.begin(), a->floats.end(), value_.data<float>());
    } else if (const auto* a = node.attr("value_int")) {
      value_ = Tensor(DType::Int64, {});
      value_.data<int64_t>()[0] = a->i;
    } else if (const auto* a = node.attr("value_ints")) {
      value_ = Tensor(DType::Int64, {int64_t(a->ints.size())});
      std::copy(a->ints.begin(), a->ints.end(), value_.data<int64_t>());
    } else if (const auto* a = node.attr("value_string")) {
      value_ = Tensor(DType::String, {});
      value_.data<std::string>()[0] = a->s;
    } else if (const auto* a = node.attr("value_strings")) {
      value_ = Tensor(DType::String, {int64_t(a->strings.size())});
      std::copy(a->strings.begin(), a->strings.end(), value_.data<std::string>());
    } else {
      fail(ErrorCode::InvalidGraph, "Constant needs one of value, value_float(s), value_int(s), value_string(s)");
    }
  }
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override { ctx.set_output_tensor(0, value_); }

 private:
  Tensor value_;
};
const OpRegistration kConstant{"Constant", make_kernel<Constant>};
}  // namespace
}  // namespace kiln
