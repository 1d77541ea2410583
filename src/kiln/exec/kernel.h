// The kernel interface. One kernel object serves one node in one execution frame, so it may
// keep per-shape state between runs without locks: concurrent runs use separate frames.
//
//   prepare(ctx)  shape-time work, called when an input shape (or a value the kernel reads at
//                 shape time) changes: output dtypes and shapes, primitive creation, scratch.
//   compute(ctx)  fills the outputs; called on every run.
//
// An op file holds the kernel and one registration line:
//   const OpRegistration kRelu{"Relu", make_kernel<Relu>};
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/core/tensor.h"
#include "kiln/core/value.h"
#include "kiln/ir/graph.h"

namespace kiln {

class Frame;
class Subgraph;

class OpContext {
 public:
  OpContext(Frame& frame, int node_index) : frame_(frame), node_(node_index) {}

  const ir::Node& node() const;
  int num_inputs() const;
  bool has_input(int i) const;
  const Tensor& input(int i) const;
  // compute(): input i, which the kernel may overwrite, when it is an intermediate that dies
  // at this node and nothing else holds its buffer; else null (and the input is read only).
  Tensor* consumable_input(int i);
  // The input as a value: sequence and optional ops read these.
  const Value& input_value(int i) const;
  int num_outputs() const;
  // False when the graph omits this optional output (its name is "").
  bool has_output(int i) const;

  // prepare(): declares an output that compute() will find allocated through output(i).
  void set_output(int i, DType dtype, Shape shape);
  // compute(): the buffer for an output declared in prepare().
  Tensor& output(int i);
  // compute(): allocates an output whose shape depends on values (NonZero, Unique...).
  Tensor& allocate_output(int i, DType dtype, Shape shape);
  // compute(): the output is `t` itself, usually a view of an input (Reshape, Identity).
  void set_output_tensor(int i, Tensor t);
  // compute(): a sequence or an empty optional (or a tensor) as output i.
  void set_output_value(int i, Value v);

  // Subgraph runs (If/Loop/Scan) see the values of this frame by name.
  Frame& frame() { return frame_; }

 private:
  Frame& frame_;
  int node_;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void prepare(OpContext& ctx) = 0;
  virtual void compute(OpContext& ctx) = 0;
  // Inputs whose values (not just shapes) prepare() reads, such as Reshape's shape: a change of
  // value prepares the kernel again.
  virtual std::vector<int> value_inputs() const { return {}; }
  // An input whose buffer output 0 may take over (elementwise ops), or -1. The frame does so
  // only when the types and shapes match and nothing else holds or reads that input later.
  virtual int inplace_input() const { return -1; }
  // When a run's inputs scale the batch of the shapes this kernel last prepared for by num/den:
  // work its prepare() will do for the new batch that touches nothing of the kernel's, done
  // before the run beside other kernels' on the session's threads (making a oneDNN primitive,
  // which lands in oneDNN's cache); none by default.
  virtual std::function<void()> ahead(int64_t /*num*/, int64_t /*den*/) const { return {}; }
  // Before the second run at new shapes, when the first made do with what earlier shapes had
  // made (a convolution runs its primitive on each half of a doubled batch): work that makes what
  // these shapes run best with, done beside other kernels' on the session's threads. It may
  // change this kernel and nothing else; none by default.
  virtual std::function<void()> settle() { return {}; }
};

struct KernelInit {
  const ir::Node& node;
  // Per input: the initializer it is bound to, or null. Kernels may pack these once (weights).
  std::vector<const Tensor*> constants;
  const Tensor* constant(int i) const { return size_t(i) < constants.size() ? constants[size_t(i)] : nullptr; }
};

using KernelFactory = std::function<std::unique_ptr<Kernel>(const KernelInit&)>;

// Builds K from K(const KernelInit&) when it has that constructor, else from K(const ir::Node&).
template <typename K>
std::unique_ptr<Kernel> make_kernel(const KernelInit& init) {
  if constexpr (std::is_constructible_v<K, const KernelInit&>) return std::make_unique<K>(init);
  else return std::make_unique<K>(init.node);
}

// Finds kernels the static registrations cannot list, such as ops written in Python; returns
// an empty factory for nodes it does not know.
using KernelResolver = std::function<KernelFactory(const ir::Node&)>;

class KernelRegistry {
 public:
  static KernelRegistry& global();
  void add(const std::string& domain, const std::string& op_type, int since_version, KernelFactory f);
  void add_resolver(KernelResolver r);
  // The registration with the highest since_version <= opset, or null.
  const KernelFactory* find(const std::string& domain, const std::string& op_type, int opset) const;
  // A static registration for the node, else a resolver's; empty if neither knows it.
  KernelFactory lookup(const ir::Node& node) const;
  std::vector<std::string> op_types(const std::string& domain) const;

 private:
  struct Entry {
    int since_version;
    KernelFactory factory;
  };
  std::map<std::pair<std::string, std::string>, std::vector<Entry>> entries_;
  std::vector<KernelResolver> resolvers_;
};

// Where one session finds its kernels: ops given to that session only, then the registry.
struct KernelSource {
  std::map<std::pair<std::string, std::string>, KernelFactory> session_ops;  // (domain, op_type)
  KernelFactory find(const ir::Node& node) const;
  static const KernelSource& registry_only();
};

// Load-time weight packing an op file owns. After the optimizer, `pack` may give the op's nodes
// their constant weights in the layout the kernel computes with, dropping the plain copy so a
// session holds each weight once; `unpack` restores plain weights in a copy of the graph that
// is to be written out as ONNX.
struct WeightPacking {
  using Rewrite = void (*)(ir::Graph&);
  WeightPacking(Rewrite pack, Rewrite unpack);
  static void pack_all(ir::Graph& graph);
  static void unpack_all(ir::Graph& graph);
};

// Registers a kernel at static-initialization time; the op's file holds the only mention.
struct OpRegistration {
  OpRegistration(const std::string& op_type, KernelFactory f) : OpRegistration("", op_type, 1, std::move(f)) {}
  OpRegistration(const std::string& domain, const std::string& op_type, int since_version, KernelFactory f) {
    KernelRegistry::global().add(domain, op_type, since_version, std::move(f));
  }
};

}  // namespace kiln
