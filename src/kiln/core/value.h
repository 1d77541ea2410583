// What a graph value holds at run time: a tensor, a sequence of tensors, or nothing (an empty
// optional). Sequences are immutable once made, so copies share them.
#pragma once

#include <memory>
#include <vector>

#include "kiln/core/tensor.h"

namespace kiln {

class Value {
 public:
  enum class Kind { Unset, Tensor, Sequence, None };

  Value() = default;
  Value(Tensor t) : kind_(Kind::Tensor), tensor_(std::move(t)) {}  // NOLINT: a tensor is a value
  static Value sequence(std::vector<Tensor> items, DType elem_type);
  static Value none() {
    Value v;
    v.kind_ = Kind::None;
    return v;
  }

  Kind kind() const { return kind_; }
  bool defined() const { return kind_ != Kind::Unset; }
  bool is_tensor() const { return kind_ == Kind::Tensor; }
  bool is_sequence() const { return kind_ == Kind::Sequence; }
  bool is_none() const { return kind_ == Kind::None; }

  const Tensor& tensor() const;
  Tensor& tensor();
  const std::vector<Tensor>& items() const;
  DType elem_type() const { return is_tensor() ? tensor_.dtype() : elem_type_; }
  // "tensor(float)", "seq(tensor(int64))", "optional" for messages.
  std::string type_str() const;

 private:
  Kind kind_ = Kind::Unset;
  Tensor tensor_;
  std::shared_ptr<const std::vector<Tensor>> items_;
  DType elem_type_ = DType::Undefined;
};

}  // namespace kiln
