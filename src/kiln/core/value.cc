#include "kiln/core/value.h"

namespace kiln {

Value Value::sequence(std::vector<Tensor> items, DType elem_type) {
  Value v;
  v.kind_ = Kind::Sequence;
  v.items_ = std::make_shared<const std::vector<Tensor>>(std::move(items));
  v.elem_type_ = elem_type;
  return v;
}

const Tensor& Value::tensor() const {
  if (kind_ != Kind::Tensor) fail(ErrorCode::InvalidArgument, "expected a tensor, got ", type_str());
  return tensor_;
}

Tensor& Value::tensor() {
  if (kind_ != Kind::Tensor) fail(ErrorCode::InvalidArgument, "expected a tensor, got ", type_str());
  return tensor_;
}

const std::vector<Tensor>& Value::items() const {
  if (kind_ != Kind::Sequence) fail(ErrorCode::InvalidArgument, "expected a sequence, got ", type_str());
  return *items_;
}

std::string Value::type_str() const {
  switch (kind_) {
    case Kind::Unset: return "nothing";
    case Kind::Tensor: return std::string("tensor(") + dtype_name(tensor_.dtype()) + ")";
    case Kind::Sequence: return std::string("seq(tensor(") + dtype_name(elem_type_) + "))";
    case Kind::None: return "an empty optional";
  }
  return "nothing";
}

}  // namespace kiln
