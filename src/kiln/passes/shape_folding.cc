// Shape-computation folding (level basic, before constant folding). Exporters compute
// Reshape targets, Expand shapes and initial RNN states from Shape(x) at run time, even where
// x's shape is fixed. Shapes are propagated here from the declared graph inputs (every run
// checks feeds against their static dims) and the initializers through the ops such chains
// pass; a dim is a number, a symbol ("batch") or unknown. The elements of small int64 values
// (Shape's output and what is built from it) are tracked the same way, so Gather(Shape(x), 1)
// folds when x's dim 1 is fixed even if its batch dim is not. A node whose int64 result is then
// fully known becomes an initializer; constant folding evaluates what depended on it.
#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "kiln/passes/passes.h"
#include "kiln/plan/execution_plan.h"

namespace kiln {

namespace {

// A dim, or an element of a shape value (where -1 and 0 also occur, as Reshape targets).
struct Dim {
  std::optional<int64_t> value;  // known
  std::string symbol;            // else a named symbolic dim, or unknown when empty
  bool known() const { return value.has_value(); }
  bool same(const Dim& o) const {
    return known() ? o.known() && *value == *o.value : !symbol.empty() && symbol == o.symbol && !o.known();
  }
};
using Dims = std::vector<Dim>;

Dim num(int64_t v) { return Dim{v, {}}; }
bool is(const Dim& d, int64_t v) { return d.known() && *d.value == v; }

bool all_known(const Dims& d) {
  return std::all_of(d.begin(), d.end(), [](const Dim& x) { return x.known(); });
}

class Folder {
 public:
  explicit Folder(ir::Graph& g) : g_(g) {
    std::set<std::string> overridable;
    for (const auto& v : g.inputs) {
      overridable.insert(v.name);
      if (v.type.kind != ir::ValueKind::Tensor || !v.type.shape) continue;
      Dims d;
      for (const auto& x : *v.type.shape) d.push_back(x.value ? num(*x.value) : Dim{std::nullopt, x.symbol});
      shape_[v.name] = d;
    }
    for (const auto& [name, t] : g.initializers)
      if (!overridable.count(name)) know_constant(name, t);
  }

  void run() {
    const ExecutionPlan plan = build_execution_plan(g_);
    std::set<size_t> folded;
    for (const Step& step : plan.steps) {
      const ir::Node& n = g_.nodes[size_t(step.node)];
      if (!n.domain.empty()) continue;
      infer(n);
      if (n.outputs.size() != 1 || !int64_.count(n.outputs[0]) || !values_.count(n.outputs[0])) continue;
      const Dims& v = values_[n.outputs[0]];
      const Dims& s = shape_[n.outputs[0]];
      if (!all_known(v) || !all_known(s) || g_.initializers.count(n.outputs[0])) continue;
      Tensor t(DType::Int64, s.empty() ? Shape{} : Shape{int64_t(v.size())});
      for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = *v[i].value;
      g_.initializers[n.outputs[0]] = t;
      folded.insert(size_t(step.node));
    }
    ir::erase_nodes(g_, folded);
  }

 private:
  // A constant's shape, and its elements when it is a small int64 vector or scalar.
  void know_constant(const std::string& name, const Tensor& t) {
    Dims d;
    for (int64_t x : t.shape()) d.push_back(num(x));
    shape_[name] = d;
    if (t.dtype() != DType::Int64 || t.rank() > 1 || t.size() > 64) return;
    Dims v;
    for (int64_t x : t.to_int64s()) v.push_back(num(x));
    values_[name] = v;
    int64_.insert(name);
  }

  const Dims* shape(const ir::Node& n, size_t i) const {
    if (!n.has_input(i)) return nullptr;
    auto it = shape_.find(n.inputs[i]);
    return it == shape_.end() ? nullptr : &it->second;
  }
  const Dims* values(const ir::Node& n, size_t i) const {
    if (!n.has_input(i)) return nullptr;
    auto it = values_.find(n.inputs[i]);
    return it == values_.end() ? nullptr : &it->second;
  }
  // A constant list of ints: the attribute `key` (older opsets) or the fully known input i.
  bool ints(const ir::Node& n, const char* key, size_t i, std::vector<int64_t>& out) const {
    if (n.has_attr(key)) {
      out = n.attr_ints(key);
      return true;
    }
    const Dims* v = values(n, i);
    if (!v || !all_known(*v)) return false;
    out.clear();
    for (const Dim& d : *v) out.push_back(*d.value);
    return true;
  }
  static bool axis_in(int64_t& axis, size_t rank) {
    if (axis < 0) axis += int64_t(rank);
    return axis >= 0 && axis < int64_t(rank);
  }
  void set(const ir::Node& n, size_t out, Dims s) {
    if (out < n.outputs.size() && !n.outputs[out].empty()) shape_[n.outputs[out]] = std::move(s);
  }
  // The elements of output 0; `int64`: it is an int64 tensor (else bool: 0 and 1), foldable.
  void set_values(const ir::Node& n, Dims v, bool int64 = true) {
    if (n.outputs.empty() || n.outputs[0].empty()) return;
    values_[n.outputs[0]] = std::move(v);
    if (int64) int64_.insert(n.outputs[0]);
  }
  bool int64(const ir::Node& n, size_t i) const { return n.has_input(i) && int64_.count(n.inputs[i]); }

  // numpy broadcasting; unknown where it cannot tell.
  static std::optional<Dims> broadcast(const std::vector<const Dims*>& in) {
    size_t rank = 0;
    for (const Dims* d : in) {
      if (!d) return std::nullopt;
      rank = std::max(rank, d->size());
    }
    Dims out(rank);
    for (size_t i = 0; i < rank; ++i) {
      std::vector<Dim> ds;
      for (const Dims* d : in)
        if (i + d->size() >= rank) ds.push_back((*d)[i + d->size() - rank]);
      Dim r = num(1);
      bool ok = true;
      for (const Dim& d : ds) {
        if (is(d, 1)) continue;
        if (is(r, 1)) r = d;
        else if (!r.same(d)) ok = false;
      }
      out[i] = ok ? r : Dim{};
    }
    return out;
  }

  void infer(const ir::Node& n) {
    static const std::set<std::string> kSame = {
        "Relu", "Sigmoid", "Tanh", "Erf", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Softmax", "LogSoftmax",
        "LeakyRelu", "Clip", "Gelu", "HardSigmoid", "HardSwish", "Not", "Floor", "Ceil", "Round", "Sign", "Elu",
        "Selu", "Softplus", "Mish", "LayerNormalization", "BatchNormalization", "InstanceNormalization", "Dropout",
        "Identity", "Cast", "CumSum"};
    static const std::set<std::string> kBroadcast = {"Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater",
                                                     "LessOrEqual", "GreaterOrEqual", "And", "Or", "Where", "Max",
                                                     "Min", "PRelu", "Mod"};
    const std::string& op = n.op_type;
    if (n.outputs.empty()) return;
    if (kSame.count(op)) {
      if (const Dims* s = shape(n, 0)) set(n, 0, *s);
      const Dims* v = values(n, 0);
      if (v && op == "Identity") set_values(n, *v, int64(n, 0));
      if (v && op == "Cast" && n.attr_int("to", 0) == 7) set_values(n, *v);  // TensorProto INT64
      return;
    }
    if (kBroadcast.count(op)) {
      std::vector<const Dims*> in;
      for (size_t i = 0; i < n.inputs.size(); ++i) in.push_back(shape(n, i));
      if (auto b = broadcast(in)) set(n, 0, *b);
      arithmetic(n);
      return;
    }
    if (op == "Constant") {
      if (const ir::Attribute* a = n.attr("value"); a && a->kind == ir::Attribute::Kind::Tensor && !n.outputs[0].empty())
        know_constant(n.outputs[0], a->t);
    } else if (op == "Shape") {
      const Dims* s = shape(n, 0);
      if (!s) return;
      int64_t r = int64_t(s->size()), start = n.attr_int("start", 0), end = n.attr_int("end", r);
      if (start < 0) start += r;
      if (end < 0) end += r;
      start = std::clamp<int64_t>(start, 0, r), end = std::clamp<int64_t>(end, start, r);
      set(n, 0, {num(end - start)});
      set_values(n, Dims(s->begin() + start, s->begin() + end));
    } else if (op == "Size") {
      const Dims* s = shape(n, 0);
      set(n, 0, {});
      if (s && all_known(*s)) {
        int64_t p = 1;
        for (const Dim& d : *s) p *= *d.value;
        set_values(n, {num(p)});
      }
    } else if (op == "Gather") {
      const Dims *s = shape(n, 0), *is = shape(n, 1);
      int64_t axis = n.attr_int("axis", 0);
      if (!s || !is || !axis_in(axis, s->size())) return;
      Dims out(s->begin(), s->begin() + axis);
      out.insert(out.end(), is->begin(), is->end());
      out.insert(out.end(), s->begin() + axis + 1, s->end());
      set(n, 0, out);
      const Dims *v = values(n, 0), *idx = values(n, 1);
      if (v && idx && all_known(*idx) && s->size() == 1) {
        Dims picked;
        for (const Dim& i : *idx) {
          const int64_t k = *i.value < 0 ? *i.value + int64_t(v->size()) : *i.value;
          if (k < 0 || k >= int64_t(v->size())) return;
          picked.push_back((*v)[size_t(k)]);
        }
        set_values(n, picked, int64(n, 0));
      }
    } else if (op == "Unsqueeze" || op == "Squeeze") {
      const Dims* s = shape(n, 0);
      std::vector<int64_t> axes;
      const bool has_axes = ints(n, "axes", 1, axes);
      if (!s) return;
      Dims out;
      if (op == "Unsqueeze") {
        if (!has_axes) return;
        const size_t rank = s->size() + axes.size();
        std::vector<bool> at(rank, false);
        for (int64_t a : axes) {
          if (!axis_in(a, rank)) return;
          at[size_t(a)] = true;
        }
        size_t j = 0;
        for (size_t i = 0; i < rank; ++i) out.push_back(at[i] ? num(1) : (*s)[j++]);
      } else {
        std::vector<bool> drop(s->size(), false);
        if (has_axes) {
          for (int64_t a : axes) {
            if (!axis_in(a, s->size())) return;
            drop[size_t(a)] = true;
          }
        } else {
          for (size_t i = 0; i < s->size(); ++i) {
            if (!(*s)[i].known()) return;  // whether it is 1 decides
            drop[i] = is((*s)[i], 1);
          }
        }
        for (size_t i = 0; i < s->size(); ++i)
          if (!drop[i]) out.push_back((*s)[i]);
      }
      set(n, 0, out);
      if (const Dims* v = values(n, 0)) set_values(n, *v, int64(n, 0));
    } else if (op == "Concat") {
      int64_t axis = n.attr_int("axis", 0);
      const Dims* first = shape(n, 0);
      if (!first || !axis_in(axis, first->size())) return;
      Dims out = *first;
      Dims vals;
      bool values_ok = axis == 0 && first->size() == 1;
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        const Dims* s = shape(n, i);
        if (!s || s->size() != first->size()) return;
        if (i > 0) {
          Dim& d = out[size_t(axis)];
          d = d.known() && (*s)[size_t(axis)].known() ? num(*d.value + *(*s)[size_t(axis)].value) : Dim{};
        }
        const Dims* v = values(n, i);
        if (v) vals.insert(vals.end(), v->begin(), v->end());
        else values_ok = false;
      }
      set(n, 0, out);
      if (values_ok) set_values(n, vals, int64(n, 0));
    } else if (op == "Reshape") {
      const Dims *s = shape(n, 0), *target = values(n, 1);
      if (!target) return;
      Dims out;
      int minus = -1;
      for (size_t i = 0; i < target->size(); ++i) {
        const Dim& t = (*target)[i];
        if (!t.known() && t.symbol.empty()) return;
        if (is(t, 0) && n.attr_int("allowzero", 0) == 0) {
          if (!s || i >= s->size()) return;
          out.push_back((*s)[i]);
        } else if (is(t, -1)) {
          minus = int(i);
          out.push_back(Dim{});
        } else if (t.known() && *t.value < 0) {
          return;
        } else {
          out.push_back(t);
        }
      }
      if (minus >= 0 && s && all_known(*s)) {
        int64_t total = 1, rest = 1;
        for (const Dim& d : *s) total *= *d.value;
        bool ok = true;
        for (size_t i = 0; i < out.size(); ++i)
          if (int(i) != minus) ok = ok && out[i].known(), rest *= ok ? *out[i].value : 1;
        if (ok && rest > 0 && total % rest == 0) out[size_t(minus)] = num(total / rest);
      }
      set(n, 0, out);
    } else if (op == "Expand") {
      const Dims *s = shape(n, 0), *target = values(n, 1);
      if (target)
        if (auto b = broadcast({s, target})) set(n, 0, *b);
    } else if (op == "ConstantOfShape") {
      const Dims* target = values(n, 0);
      if (!target) return;
      set(n, 0, *target);
      const ir::Attribute* a = n.attr("value");
      if (target->size() == 1 && (*target)[0].known() && *(*target)[0].value >= 0 && *(*target)[0].value <= 64 && a &&
          a->kind == ir::Attribute::Kind::Tensor && a->t.dtype() == DType::Int64 && a->t.size() == 1)
        set_values(n, Dims(size_t(*(*target)[0].value), num(a->t.data<int64_t>()[0])));
    } else if (op == "Transpose") {
      const Dims* s = shape(n, 0);
      if (!s) return;
      std::vector<int64_t> perm = n.attr_ints("perm");
      if (perm.empty())
        for (size_t i = s->size(); i-- > 0;) perm.push_back(int64_t(i));
      if (perm.size() != s->size()) return;
      Dims out;
      for (int64_t p : perm) {
        if (!axis_in(p, s->size())) return;
        out.push_back((*s)[size_t(p)]);
      }
      set(n, 0, out);
    } else if (op == "MatMul") {
      const Dims *a = shape(n, 0), *b = shape(n, 1);
      if (!a || !b || a->size() < 2 || b->size() < 2) return;
      Dims ba(a->begin(), a->end() - 2), bb(b->begin(), b->end() - 2);
      auto batch = broadcast({&ba, &bb});
      if (!batch) return;
      batch->push_back((*a)[a->size() - 2]);
      batch->push_back(b->back());
      set(n, 0, *batch);
    } else if (op == "Slice") {
      const Dims* s = shape(n, 0);
      if (!s) return;
      Dims out = *s;
      std::vector<int64_t> starts, ends, axes, steps;
      const bool known = ints(n, "starts", 1, starts) && ints(n, "ends", 2, ends);
      if (!ints(n, "axes", 3, axes)) {
        if (n.has_input(3) || n.has_attr("axes")) return;
        for (size_t i = 0; i < starts.size(); ++i) axes.push_back(int64_t(i));
      }
      if (!ints(n, "steps", 4, steps)) {
        if (n.has_input(4)) return;
        steps.assign(axes.size(), 1);
      }
      if (known && (starts.size() != axes.size() || ends.size() != axes.size() || steps.size() != axes.size())) return;
      for (size_t i = 0; i < axes.size(); ++i) {
        int64_t a = axes[i];
        if (!axis_in(a, s->size())) return;
        Dim& d = out[size_t(a)];
        if (!known || !d.known() || steps[i] == 0) {
          d = Dim{};
          continue;
        }
        // ONNX's clamping of starts and ends, then the count of steps between them.
        const int64_t len = *d.value, step = steps[i];
        auto clampi = [&](int64_t v, int64_t lo, int64_t hi) { return std::clamp(v < 0 ? v + len : v, lo, hi); };
        const int64_t b = step > 0 ? clampi(starts[i], 0, len) : clampi(starts[i], -1, len - 1);
        const int64_t e = step > 0 ? clampi(ends[i], 0, len) : clampi(ends[i], -1, len - 1);
        d = num(step > 0 ? std::max<int64_t>(0, (e - b + step - 1) / step) : std::max<int64_t>(0, (b - e - step - 1) / -step));
      }
      set(n, 0, out);
      if (known && s->size() == 1 && axes.size() == 1 && steps[0] == 1 && out[0].known())
        if (const Dims* v = values(n, 0)) {
          const int64_t len = int64_t(v->size());
          const int64_t b = std::clamp(starts[0] < 0 ? starts[0] + len : starts[0], int64_t(0), len);
          set_values(n, Dims(v->begin() + b, v->begin() + b + *out[0].value), int64(n, 0));
        }
    } else if (op == "Flatten") {
      const Dims* s = shape(n, 0);
      int64_t axis = n.attr_int("axis", 1);
      if (!s || (axis != int64_t(s->size()) && !axis_in(axis, s->size()))) return;
      auto product = [&](size_t b, size_t e) {
        int64_t p = 1;
        for (size_t i = b; i < e; ++i) {
          if (!(*s)[i].known()) return Dim{};
          p *= *(*s)[i].value;
        }
        return num(p);
      };
      set(n, 0, {product(0, size_t(axis)), product(size_t(axis), s->size())});
    } else if (op == "Gemm") {
      const Dims *a = shape(n, 0), *b = shape(n, 1);
      if (!a || !b || a->size() != 2 || b->size() != 2) return;
      set(n, 0, {(*a)[n.attr_int("transA", 0) ? 1 : 0], (*b)[n.attr_int("transB", 0) ? 0 : 1]});
    } else if (op == "Conv" || op == "MaxPool" || op == "AveragePool") {
      const Dims* x = shape(n, 0);
      const Dims* w = op == "Conv" ? shape(n, 1) : nullptr;
      if (!x || x->size() < 3 || (op == "Conv" && (!w || w->size() != x->size()))) return;
      const size_t sp = x->size() - 2;
      std::vector<int64_t> kernel = n.attr_ints("kernel_shape");
      if (kernel.empty() && w)
        for (size_t i = 0; i < sp; ++i) kernel.push_back((*w)[i + 2].known() ? *(*w)[i + 2].value : -1);
      const std::vector<int64_t> strides = n.attr_ints("strides", std::vector<int64_t>(sp, 1));
      const std::vector<int64_t> dil = n.attr_ints("dilations", std::vector<int64_t>(sp, 1));
      const std::vector<int64_t> pads = n.attr_ints("pads", std::vector<int64_t>(2 * sp, 0));
      const std::string pad = n.attr_string("auto_pad", "NOTSET");
      if (kernel.size() != sp || strides.size() != sp || dil.size() != sp || pads.size() != 2 * sp) return;
      if (n.attr_int("ceil_mode", 0) != 0) return;
      Dims out{(*x)[0], w ? (*w)[0] : (*x)[1]};
      for (size_t i = 0; i < sp; ++i) {
        const Dim& in = (*x)[i + 2];
        if (!in.known() || kernel[i] <= 0 || strides[i] <= 0) {
          out.push_back(Dim{});
          continue;
        }
        const int64_t extent = (kernel[i] - 1) * dil[i] + 1, len = *in.value, st = strides[i];
        int64_t o;
        if (pad == "SAME_UPPER" || pad == "SAME_LOWER") o = (len + st - 1) / st;
        else if (pad == "VALID") o = len >= extent ? (len - extent) / st + 1 : 0;
        else if (pad == "NOTSET") o = len + pads[i] + pads[i + sp] >= extent ? (len + pads[i] + pads[i + sp] - extent) / st + 1 : 0;
        else return;
        out.push_back(num(o));
      }
      set(n, 0, out);
    } else if (op == "GlobalAveragePool" || op == "GlobalMaxPool") {
      const Dims* x = shape(n, 0);
      if (!x || x->size() < 3) return;
      Dims out{(*x)[0], (*x)[1]};
      out.resize(x->size(), num(1));
      set(n, 0, out);
    } else if (op == "LSTM" || op == "GRU" || op == "RNN") {
      const Dims *x = shape(n, 0), *r = shape(n, 2);
      if (!x || !r || x->size() != 3 || r->size() != 3) return;
      const bool batch_major = n.attr_int("layout", 0) != 0;
      const Dim seq = (*x)[batch_major ? 1 : 0], batch = (*x)[batch_major ? 0 : 1], dirs = (*r)[0];
      const Dim hidden = n.has_attr("hidden_size") ? num(n.attr_int("hidden_size", 0)) : (*r)[2];
      set(n, 0, batch_major ? Dims{batch, seq, dirs, hidden} : Dims{seq, dirs, batch, hidden});
      const Dims state = batch_major ? Dims{batch, dirs, hidden} : Dims{dirs, batch, hidden};
      set(n, 1, state);
      if (op == "LSTM") set(n, 2, state);
    }
  }

  // Elementwise arithmetic on fully known values: Add, Sub, Mul, Div of int64 values, Equal
  // (to 0/1), Where.
  void arithmetic(const ir::Node& n) {
    const std::string& op = n.op_type;
    const bool where = op == "Where";
    if (op != "Add" && op != "Sub" && op != "Mul" && op != "Div" && op != "Equal" && !where) return;
    std::vector<const Dims*> in;
    size_t len = 1;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const Dims* v = values(n, i);
      if (!v || !all_known(*v)) return;
      in.push_back(v);
      len = std::max(len, v->size());
    }
    for (const Dims* v : in)
      if (v->size() != len && v->size() != 1) return;
    if (in.size() != (where ? 3u : 2u)) return;
    auto at = [&](size_t k, size_t i) { return *(*in[k])[in[k]->size() == 1 ? 0 : i].value; };
    Dims out;
    for (size_t i = 0; i < len; ++i) {
      const int64_t x = at(0, i), y = at(1, i);
      int64_t r;
      if (where) r = x ? y : at(2, i);
      else if (op == "Equal") r = x == y;
      else if (op == "Add") r = x + y;
      else if (op == "Sub") r = x - y;
      else if (op == "Mul") r = x * y;
      else if (y == 0 || x < 0 || y < 0) return;  // ONNX's Div truncates; keep to where that is floor
      else r = x / y;
      out.push_back(num(r));
    }
    const bool int64_out = where ? int64(n, 1) && int64(n, 2) : op != "Equal" && int64(n, 0) && int64(n, 1);
    set_values(n, out, int64_out);
  }

  ir::Graph& g_;
  std::map<std::string, Dims> shape_, values_;
  std::set<std::string> int64_;
};

}  // namespace

void fold_shape_computations(ir::Graph& graph) { Folder(graph).run(); }

}  // namespace kiln
