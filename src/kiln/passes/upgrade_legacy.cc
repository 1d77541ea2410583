// Rewrites old-opset semantics into what the modern kernels compute, so that kernels carry
// only the current rules. Runs at session creation for every optimization level, in subgraphs
// too.
//   Add, Sub, Mul, Div, Pow, And, Or, Xor, Equal, Greater, Less before opset 7: `broadcast=1`
//     with `axis` aligned B's dimensions with A's from `axis` on; a kiln::LegacyBroadcast view
//     of B gives numpy broadcasting the same alignment. Without `axis` (suffix alignment) and
//     with `broadcast=0` (equal shapes) numpy's rule already agrees. The nodes then run as
//     opset 7.
//   PRelu before opset 7: a slope of one value per channel (axis 1), aligned the same way.
// Everything else the old opsets meant is read by the kernels themselves (BatchNormalization's
// spatial, Gemm's broadcast, Concat's default axis, the attribute forms of Reshape, Slice,
// Pad, TopK...).
#include <set>
#include <string>

#include "kiln/ir/fresh_names.h"
#include "kiln/passes/passes.h"

namespace kiln {
namespace {

const std::set<std::string> kAxisBroadcastOps = {"Add", "Sub", "Mul",   "Div",     "Pow", "And",
                                                 "Or",  "Xor", "Equal", "Greater", "Less"};

class Upgrader {
 public:
  explicit Upgrader(const ir::Graph& root) : names_(root) {}

  void run(ir::Graph& g) {
    std::vector<ir::Node> out;
    out.reserve(g.nodes.size());
    for (ir::Node& n : g.nodes) {
      for (auto& [key, a] : n.attrs) {
        if (a.g) run(*a.g);
        for (auto& sg : a.graphs) run(*sg);
      }
      if (n.domain.empty() && n.opset < 7) {
        if (kAxisBroadcastOps.count(n.op_type)) {
          if (n.attr_int("broadcast", 0) != 0 && n.has_attr("axis") && n.has_input(0) && n.has_input(1))
            align(n, n.attr_int("axis", 0), out);
          n.attrs.erase("broadcast");
          n.attrs.erase("axis");
          n.opset = 7;
        } else if (n.op_type == "PRelu") {
          if (n.has_input(0) && n.has_input(1)) align(n, 1, out);
          n.opset = 7;
        }
      }
      out.push_back(std::move(n));
    }
    g.nodes = std::move(out);
  }

 private:
  // Replaces n's input 1 with a LegacyBroadcast view of it aligned to input 0 at `axis`.
  void align(ir::Node& n, int64_t axis, std::vector<ir::Node>& out) {
    ir::Node view;
    view.op_type = "LegacyBroadcast";
    view.domain = "kiln";
    view.opset = 1;
    view.name = fresh(n.name.empty() ? n.op_type + "_legacy_broadcast" : n.name + "_legacy_broadcast");
    view.inputs = {n.inputs[0], n.inputs[1]};
    view.outputs = {fresh(n.inputs[1] + "_aligned")};
    ir::Attribute a;
    a.kind = ir::Attribute::Kind::Int;
    a.i = axis;
    view.attrs["axis"] = a;
    n.inputs[1] = view.outputs[0];
    out.push_back(std::move(view));
  }

  std::string fresh(const std::string& base) { return names_.make(base); }

  FreshNames names_;
};

}  // namespace

void upgrade_legacy_ops(ir::Graph& graph) { Upgrader(graph).run(graph); }

}  // namespace kiln
