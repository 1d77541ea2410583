// Layout (level all): oneDNN runs fp32 convolutions channels-last on this CPU, so values that
// flow from convolution to convolution are stored NHWC, also through the layout-agnostic ops
// between them (activations, residual and squeeze-excite arithmetic, pools, channel Concat,
// global average pooling), instead of a reorder to NCHW and back around every convolution.
//
// Values that must share a layout are grouped: an op's input and output when the op computes
// position by position (elementwise, pools, Concat), and a FusedConv's Z with its Y. A group is
// stored NHWC when a convolution writes into it, every value in it is written by a convolution,
// a global average pool or one of those ops, and every read is one of them, a convolution's X
// or a global average pool's X. Tensor shapes stay logical (NCHW); the nodes say what they read
// and write: kiln_x_nhwc / kiln_y_nhwc on convolutions, kiln_nhwc on the others. A [N, C, 1, 1]
// value (a squeeze-excite scale) has the same bytes in both layouts, so a constant of that
// shape joins any group.
#include <map>
#include <set>

#include "kiln/ir/graph_view.h"
#include "kiln/passes/passes.h"

namespace kiln {

namespace {

bool is_conv2d(const ir::Node& n, const GraphView& view) {
  if (!ir::is_conv(n) || n.inputs.size() < 2 || n.outputs.size() != 1) return false;
  const Tensor* w = view.constant(n.inputs[1]);
  return w && w->dtype() == DType::Float32 && w->rank() == 4;
}

// Ops whose output element depends only on input elements at the same position (or, for the
// pools and Concat, whose kernels were taught NHWC): input slots that share the output's layout.
enum class Role { Other, Conv, GlobalAverage, Unary, Binary, Pool, Concat };

Role role_of(const ir::Node& n, const GraphView& view) {
  if (is_conv2d(n, view)) return Role::Conv;
  if (!n.domain.empty() || n.outputs.size() != 1) return Role::Other;
  static const std::set<std::string> kUnary = {"Relu",     "Sigmoid",   "Tanh", "HardSigmoid", "HardSwish",
                                               "LeakyRelu", "Clip",     "Elu",  "Selu",        "Softplus",
                                               "Erf",       "Identity", "Neg",  "Abs",         "Exp"};
  static const std::set<std::string> kBinary = {"Add", "Sub", "Mul", "Div"};
  const std::string& t = n.op_type;
  if (t == "GlobalAveragePool") return Role::GlobalAverage;
  if (kUnary.count(t)) return Role::Unary;
  if (kBinary.count(t) && n.inputs.size() == 2) return Role::Binary;
  if ((t == "MaxPool" || t == "AveragePool") && n.attr_ints("kernel_shape").size() == 2) return Role::Pool;
  if (t == "Concat") {
    const int64_t axis = n.attr_int("axis", 1);
    return axis == 1 || axis == -3 ? Role::Concat : Role::Other;
  }
  return Role::Other;
}

// A constant whose bytes read the same as NCHW and NHWC: rank <= 4, last two dims of size 1.
bool pointlike_constant(const Tensor* t) {
  if (!t || t->rank() > 4) return false;
  for (int64_t d = std::max<int64_t>(0, t->rank() - 2); d < t->rank(); ++d)
    if (t->dim(d) != 1) return false;
  return true;
}

// The input slots of `n` that share its output's layout.
std::vector<size_t> linked_inputs(const ir::Node& n, Role role, const GraphView& view) {
  std::vector<size_t> slots;
  switch (role) {
    case Role::Conv:
      if (n.has_input(3)) slots.push_back(3);
      break;
    case Role::Unary:
    case Role::Pool:
      slots.push_back(0);
      for (size_t k = 1; k < n.inputs.size(); ++k)  // Clip's bounds: scalars
        if (n.has_input(k) && !pointlike_constant(view.constant(n.inputs[k]))) slots.push_back(k);
      break;
    case Role::Binary:
    case Role::Concat:
      for (size_t k = 0; k < n.inputs.size(); ++k)
        if (n.has_input(k) && !(role == Role::Binary && pointlike_constant(view.constant(n.inputs[k]))))
          slots.push_back(k);
      break;
    default:
      break;
  }
  return slots;
}

void set_flag(ir::Node& n, const char* key) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::Int;
  a.i = 1;
  n.attrs[key] = a;
}

struct Groups {
  std::map<std::string, int> id;
  std::vector<int> parent;
  int of(const std::string& v) {
    auto [it, fresh] = id.try_emplace(v, int(parent.size()));
    if (fresh) parent.push_back(int(parent.size()));
    return find(it->second);
  }
  int find(int a) { return parent[size_t(a)] == a ? a : parent[size_t(a)] = find(parent[size_t(a)]); }
  void join(const std::string& a, const std::string& b) { parent[size_t(of(a))] = of(b); }
};

}  // namespace

void choose_conv_layouts(ir::Graph& g) {
  GraphView view(g);
  std::vector<Role> role(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) role[i] = role_of(g.nodes[i], view);

  Groups groups;
  std::map<std::string, int> node_reads;  // reads by this graph's nodes
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    for (const auto& in : n.inputs)
      if (!in.empty()) ++node_reads[in];
    if (role[i] == Role::Other) continue;
    groups.of(n.outputs[0]);
    for (size_t k : linked_inputs(n, role[i], view)) groups.join(n.inputs[k], n.outputs[0]);
  }

  // A group fails when any member is written or read by something that does not know NHWC.
  std::set<int> failed, written_by_conv;
  for (const auto& [v, unused] : groups.id) {
    const int p = view.producer(v);
    const int gid = groups.of(v);
    if (p < 0 || role[size_t(p)] == Role::Other || view.is_graph_output(v) || view.readers(v) != node_reads[v])
      failed.insert(gid);
    else if (role[size_t(p)] == Role::Conv)
      written_by_conv.insert(gid);
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    const std::vector<size_t> linked = linked_inputs(n, role[i], view);
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      if (n.inputs[k].empty() || !groups.id.count(n.inputs[k])) continue;
      const bool own_x = (role[i] == Role::Conv || role[i] == Role::GlobalAverage) && k == 0;
      if (!own_x && std::find(linked.begin(), linked.end(), k) == linked.end()) failed.insert(groups.of(n.inputs[k]));
    }
  }
  auto nhwc = [&](const std::string& v) {
    if (!groups.id.count(v)) return false;
    const int gid = groups.of(v);
    return !failed.count(gid) && written_by_conv.count(gid);
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& n = g.nodes[i];
    switch (role[i]) {
      case Role::Conv:
        if (nhwc(n.inputs[0])) set_flag(n, "kiln_x_nhwc");
        if (nhwc(n.outputs[0])) set_flag(n, "kiln_y_nhwc");
        break;
      case Role::GlobalAverage:
        if (nhwc(n.inputs[0])) set_flag(n, "kiln_nhwc");
        break;
      case Role::Binary:
      case Role::Pool:
      case Role::Concat:
        if (nhwc(n.outputs[0])) set_flag(n, "kiln_nhwc");
        break;
      default:
        break;
    }
  }
}

}  // namespace kiln
