// Expands ai.onnx.preview.training::Gradient nodes into the nodes that compute the gradients:
// reverse-mode differentiation of the part of the graph between the `xs` and `y` values (values
// named in `zs`, and everything not computed from an x, count as constants). Each output is
// d(sum of y)/dx for its x, shaped like x. Runs at session creation, in subgraphs too.
// Differentiable ops: Add, Sub, Mul, Div (with broadcasting: kiln::SumToShape reduces each
// contribution to its input's shape), Neg, Identity, Exp, Log, Sqrt, Tanh, Sigmoid, Relu.
#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "kiln/ir/fresh_names.h"
#include "kiln/passes/passes.h"

namespace kiln {
namespace {

class GradientExpander {
 public:
  GradientExpander(ir::Graph& g, FreshNames& names) : g_(g), names_(names) {
    for (size_t i = 0; i < g.nodes.size(); ++i)
      for (const auto& o : g.nodes[i].outputs)
        if (!o.empty()) producer_[o] = i;
  }

  // The nodes replacing Gradient node `grad`.
  std::vector<ir::Node> expand(const ir::Node& grad) {
    out_.clear();
    const std::vector<std::string> xs = grad.attr_strings("xs");
    const std::string y = grad.attr_string("y", "");
    const std::vector<std::string> zs = grad.attr_strings("zs");
    if (xs.empty() || y.empty()) fail(ErrorCode::InvalidGraph, grad.label(), ": Gradient needs the xs and y attributes");
    if (grad.outputs.size() != xs.size())
      fail(ErrorCode::InvalidGraph, grad.label(), ": ", xs.size(), " xs but ", grad.outputs.size(), " outputs");
    stop_.clear();
    stop_.insert(xs.begin(), xs.end());
    stop_.insert(zs.begin(), zs.end());
    const std::set<std::string> x_set(xs.begin(), xs.end());

    // The nodes y depends on, producers before consumers, not looking past xs and zs.
    std::vector<size_t> order;
    std::set<size_t> seen;
    std::function<void(const std::string&)> visit = [&](const std::string& v) {
      if (stop_.count(v)) return;
      auto it = producer_.find(v);
      if (it == producer_.end() || !seen.insert(it->second).second) return;
      for (const auto& in : g_.nodes[it->second].inputs)
        if (!in.empty()) visit(in);
      order.push_back(it->second);
    };
    visit(y);
    // Values computed from an x: only these carry gradients.
    std::set<std::string> varying(x_set);
    for (size_t i : order) {
      const ir::Node& n = g_.nodes[i];
      bool any = false;
      for (const auto& in : n.inputs) any |= varying.count(in) != 0;
      if (any)
        for (const auto& o : n.outputs) varying.insert(o);
    }

    std::map<std::string, std::vector<std::string>> grads;
    // d(sum y)/dy: ones of y's shape (SumToShape expands the scalar).
    grads[y].push_back(emit("kiln", "SumToShape", {constant_like(1.0f, y), y}));
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      const ir::Node& n = g_.nodes[*it];
      if (n.outputs.empty() || !varying.count(n.outputs[0])) continue;
      auto found = grads.find(n.outputs[0]);
      if (found == grads.end()) continue;
      const std::string gout = sum(found->second);
      for (auto& [index, contribution] : derivative(n, gout, grad)) {
        const std::string& input = n.inputs[size_t(index)];
        if (varying.count(input)) grads[input].push_back(emit("kiln", "SumToShape", {contribution, input}));
      }
    }
    for (size_t k = 0; k < xs.size(); ++k) {
      if (grad.outputs[k].empty()) continue;
      auto it = grads.find(xs[k]);
      const std::string total = it == grads.end() ? constant_like(0.0f, xs[k]) : sum(it->second);
      emit("kiln", "SumToShape", {total, xs[k]}, grad.outputs[k]);
    }
    return std::move(out_);
  }

 private:
  // Each differentiable input's contribution to its gradient, given the output's gradient g.
  std::vector<std::pair<int, std::string>> derivative(const ir::Node& n, const std::string& g, const ir::Node& grad) {
    const std::string& op = n.op_type;
    auto in = [&](size_t i) {
      if (!n.has_input(i)) fail(ErrorCode::InvalidGraph, n.label(), " lacks input ", i);
      return n.inputs[i];
    };
    const std::string out = n.outputs[0];
    if (!n.domain.empty()) fail(ErrorCode::NotImplemented, grad.label(), ": no derivative for ", n.domain, "::", op);
    if (op == "Add") return {{0, g}, {1, g}};
    if (op == "Sub") return {{0, g}, {1, emit("Neg", {g})}};
    if (op == "Mul") return {{0, emit("Mul", {g, in(1)})}, {1, emit("Mul", {g, in(0)})}};
    if (op == "Div") return {{0, emit("Div", {g, in(1)})}, {1, emit("Neg", {emit("Div", {emit("Mul", {g, out}), in(1)})})}};
    if (op == "Neg") return {{0, emit("Neg", {g})}};
    if (op == "Identity") return {{0, g}};
    if (op == "Exp") return {{0, emit("Mul", {g, out})}};
    if (op == "Log") return {{0, emit("Div", {g, in(0)})}};
    if (op == "Sqrt") return {{0, emit("Div", {g, emit("Add", {out, out})})}};
    if (op == "Tanh") return {{0, emit("Mul", {g, emit("Sub", {constant_like(1.0f, out), emit("Mul", {out, out})})})}};
    if (op == "Sigmoid")
      return {{0, emit("Mul", {g, emit("Mul", {out, emit("Sub", {constant_like(1.0f, out), out})})})}};
    if (op == "Relu") {
      const std::string positive = emit("Greater", {in(0), constant_like(0.0f, in(0))});
      return {{0, emit("Mul", {g, emit("CastLike", {positive, in(0)})})}};
    }
    fail(ErrorCode::NotImplemented, grad.label(), ": no derivative for ", op, " (", n.label(), ")");
  }

  // A scalar of `value` in the element type of `like`.
  std::string constant_like(float value, const std::string& like) {
    const std::string name = names_.make(value == 0 ? "gradient_zero" : "gradient_one");
    Tensor t(DType::Float32, {});
    t.data<float>()[0] = value;
    g_.initializers[name] = t;
    return emit("CastLike", {name, like});
  }

  std::string sum(const std::vector<std::string>& terms) {
    std::string acc = terms[0];
    for (size_t i = 1; i < terms.size(); ++i) acc = emit("Add", {acc, terms[i]});
    return acc;
  }

  std::string emit(const std::string& op, std::vector<std::string> inputs, const std::string& output = "") {
    return emit("", op, std::move(inputs), output);
  }

  std::string emit(const std::string& domain, const std::string& op, std::vector<std::string> inputs,
                   const std::string& output = "") {
    ir::Node n;
    n.domain = domain;
    n.op_type = op;
    n.opset = domain.empty() ? 17 : 1;
    n.name = names_.make("gradient/" + op);
    n.inputs = std::move(inputs);
    n.outputs = {output.empty() ? names_.make("gradient/" + op + "_out") : output};
    out_.push_back(std::move(n));
    return out_.back().outputs[0];
  }

  ir::Graph& g_;
  FreshNames& names_;
  std::map<std::string, size_t> producer_;
  std::set<std::string> stop_;
  std::vector<ir::Node> out_;
};

void expand_in(ir::Graph& g, FreshNames& names) {
  for (ir::Node& n : g.nodes)
    for (auto& [key, a] : n.attrs) {
      if (a.g) expand_in(*a.g, names);
      for (auto& sg : a.graphs) expand_in(*sg, names);
    }
  auto is_gradient = [](const ir::Node& n) {
    return n.domain == "ai.onnx.preview.training" && n.op_type == "Gradient";
  };
  if (std::none_of(g.nodes.begin(), g.nodes.end(), is_gradient)) return;
  std::vector<ir::Node> out;
  for (const ir::Node& n : g.nodes) {
    if (!is_gradient(n)) {
      out.push_back(n);
      continue;
    }
    std::vector<ir::Node> expanded = GradientExpander(g, names).expand(n);
    out.insert(out.end(), std::make_move_iterator(expanded.begin()), std::make_move_iterator(expanded.end()));
  }
  g.nodes = std::move(out);
}

}  // namespace

void expand_gradients(ir::Graph& graph) {
  FreshNames names(graph);
  expand_in(graph, names);
}

}  // namespace kiln
