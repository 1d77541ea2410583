// Scan (opset 9+): runs the body once per slice of the scan inputs along their scan axes,
// threading the state variables and stacking the per-step scan outputs.
#include "kiln/ops/control/subgraph.h"
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {

// Slice `index` of `t` along `axis`, without that axis.
Tensor take_slice(const Tensor& t, int64_t axis, int64_t index) {
  Shape shape = t.shape();
  const int64_t n = shape[size_t(axis)];
  shape.erase(shape.begin() + axis);
  const int64_t outer = shape_size(Shape(t.shape().begin(), t.shape().begin() + axis));
  const int64_t inner = shape_size(Shape(t.shape().begin() + axis + 1, t.shape().end()));
  if (outer == 1 && t.dtype() != DType::String)  // contiguous: a view
    return Tensor::view(t.dtype(), shape, static_cast<char*>(const_cast<void*>(t.raw())) + index * inner * dtype_size(t.dtype()),
                        t.owner());
  Tensor out(t.dtype(), shape);
  tensor_ops::dispatch_elements(t.dtype(), [&]<typename T>() {
    const T* src = tensor_ops::elems<T>(t);
    T* dst = tensor_ops::elems<T>(out);
    for (int64_t o = 0; o < outer; ++o) tensor_ops::copy_n(src + (o * n + index) * inner, inner, dst + o * inner);
  });
  return out;
}

class Scan : public Kernel {
 public:
  explicit Scan(const ir::Node& node)
      : body_(node, "body"),
        num_scan_inputs_(node.attr_int("num_scan_inputs", -1)),
        in_axes_(node.attr_ints("scan_input_axes")),
        in_dirs_(node.attr_ints("scan_input_directions")),
        out_axes_(node.attr_ints("scan_output_axes")),
        out_dirs_(node.attr_ints("scan_output_directions")) {
    if (node.opset < 9) fail(ErrorCode::NotImplemented, "Scan before opset 9 (with a batch axis) is not supported");
    if (num_scan_inputs_ < 1) fail(ErrorCode::InvalidGraph, "num_scan_inputs must be at least 1");
  }
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    const int n_state = ctx.num_inputs() - int(num_scan_inputs_);
    if (n_state < 0) fail(ErrorCode::InvalidGraph, "num_scan_inputs ", num_scan_inputs_, " exceeds the inputs");
    const int n_scan_out = ctx.num_outputs() - n_state;
    std::vector<Value> state;
    for (int i = 0; i < n_state; ++i) state.push_back(ctx.input_value(i));
    std::vector<const Tensor*> scan_in;
    std::vector<int64_t> axes;
    int64_t steps = -1;
    for (int k = 0; k < num_scan_inputs_; ++k) {
      const Tensor& t = ctx.input(n_state + k);
      int64_t axis = tensor_ops::normalize_axis(size_t(k) < in_axes_.size() ? in_axes_[size_t(k)] : 0, t.rank(),
                                                "scan_input_axes");
      if (steps >= 0 && t.dim(axis) != steps)
        fail(ErrorCode::InvalidArgument, "scan inputs disagree on the sequence length: ", steps, " and ", t.dim(axis));
      steps = t.dim(axis);
      scan_in.push_back(&t);
      axes.push_back(axis);
    }
    std::vector<std::vector<Tensor>> outs(static_cast<size_t>(std::max(n_scan_out, 0)));
    for (int64_t s = 0; s < steps; ++s) {
      std::vector<Value> feeds = state;
      for (int k = 0; k < num_scan_inputs_; ++k) {
        bool reverse = size_t(k) < in_dirs_.size() && in_dirs_[size_t(k)] == 1;
        feeds.push_back(take_slice(*scan_in[size_t(k)], axes[size_t(k)], reverse ? steps - 1 - s : s));
      }
      std::vector<Value> results = body_.run(ctx.frame(), std::move(feeds));
      for (int i = 0; i < n_state; ++i) state[size_t(i)] = std::move(results[size_t(i)]);
      for (int k = 0; k < n_scan_out; ++k) outs[size_t(k)].push_back(results[size_t(n_state + k)].tensor());
    }
    for (int i = 0; i < n_state; ++i) ctx.set_output_value(i, std::move(state[size_t(i)]));
    for (int k = 0; k < n_scan_out; ++k) {
      auto& items = outs[size_t(k)];
      if (items.empty()) {
        ctx.set_output_tensor(n_state + k, empty_scan_output(body_.graph().outputs[size_t(n_state + k)]));
        continue;
      }
      if (size_t(k) < out_dirs_.size() && out_dirs_[size_t(k)] == 1) std::reverse(items.begin(), items.end());
      int64_t axis = size_t(k) < out_axes_.size() ? out_axes_[size_t(k)] : 0;
      ctx.set_output_tensor(n_state + k, stack(items, axis, "Scan output"));
    }
  }

 private:
  Subgraph body_;
  int64_t num_scan_inputs_;
  std::vector<int64_t> in_axes_, in_dirs_, out_axes_, out_dirs_;
};

const OpRegistration kScan{"", "Scan", 9, make_kernel<Scan>};

}  // namespace
}  // namespace kiln
