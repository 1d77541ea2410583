#include "kiln/ops/control/subgraph.h"

#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {

Subgraph::Subgraph(const ir::Node& node, const std::string& attr) {
  const ir::Attribute* a = node.attr(attr);
  if (!a || !a->g) fail(ErrorCode::InvalidGraph, "the graph attribute '", attr, "' is missing");
  graph_ = a->g;
  plan_ = build_execution_plan(*graph_, true);
  for (const auto& v : graph_->inputs) input_ids_.push_back(plan_.id(v.name));
}

std::vector<Value> Subgraph::run(Frame& parent, std::vector<Value> inputs) {
  if (inputs.size() != input_ids_.size())
    fail(ErrorCode::InvalidArgument, "subgraph '", graph_->name, "' takes ", input_ids_.size(), " inputs, given ",
         inputs.size());
  if (!frame_ || parent_ != &parent) {
    frame_ = std::make_unique<Frame>(plan_, &parent);
    parent_ = &parent;
  }
  std::vector<std::pair<int, Value>> feeds;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (input_ids_[i] >= 0) feeds.emplace_back(input_ids_[i], std::move(inputs[i]));
  return frame_->run(feeds, parent.run_context());
}

Tensor empty_scan_output(const ir::ValueInfo& info) {
  Shape shape{0};
  if (info.type.shape) {
    for (const auto& d : *info.type.shape) {
      if (!d.value) return Tensor(info.type.dtype == DType::Undefined ? DType::Float32 : info.type.dtype, {0});
      shape.push_back(*d.value);
    }
  }
  return Tensor(info.type.dtype == DType::Undefined ? DType::Float32 : info.type.dtype, shape);
}

Tensor stack(const std::vector<Tensor>& items, int64_t axis, const char* what) {
  const Tensor& first = items.front();
  for (const Tensor& t : items)
    if (t.shape() != first.shape() || t.dtype() != first.dtype())
      fail(ErrorCode::InvalidArgument, what, ": iterations produced different shapes or types: ",
           dtype_name(first.dtype()), shape_str(first.shape()), " and ", dtype_name(t.dtype()), shape_str(t.shape()));
  const int64_t n = int64_t(items.size());
  axis = tensor_ops::normalize_axis(axis, first.rank() + 1);
  Shape out_shape = first.shape();
  out_shape.insert(out_shape.begin() + axis, n);
  Tensor out(first.dtype(), out_shape);
  const int64_t outer = shape_size(Shape(first.shape().begin(), first.shape().begin() + axis));
  const int64_t inner = first.size() / std::max<int64_t>(outer, 1);
  tensor_ops::dispatch_elements(first.dtype(), [&]<typename T>() {
    T* dst = tensor_ops::elems<T>(out);
    for (int64_t k = 0; k < n; ++k) {
      const T* src = tensor_ops::elems<T>(items[size_t(k)]);
      for (int64_t o = 0; o < outer; ++o) tensor_ops::copy_n(src + o * inner, inner, dst + (o * n + k) * inner);
    }
  });
  return out;
}

}  // namespace kiln
