// Kiln's own IR, independent of protobuf: a model holds a graph of nodes that name their
// input and output values. Subgraphs (If/Loop/Scan bodies) hang off node attributes and may
// read values of the enclosing scopes by name.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "kiln/core/tensor.h"

namespace kiln::ir {

struct Graph;

// One dimension of a declared shape: a number, a symbol ("batch"), or unknown.
struct Dim {
  std::optional<int64_t> value;
  std::string symbol;
};

enum class ValueKind { Tensor, Sequence, Optional, Map, SparseTensor, Unknown };

struct TypeInfo {
  ValueKind kind = ValueKind::Tensor;
  DType dtype = DType::Undefined;
  std::optional<std::vector<Dim>> shape;  // nullopt: rank unknown
  std::shared_ptr<TypeInfo> elem;         // element type of a sequence or optional
};

struct ValueInfo {
  std::string name;
  TypeInfo type;
  std::string doc_string;
};

struct Attribute {
  enum class Kind { Float, Int, String, Tensor, Graph, Floats, Ints, Strings, Tensors, Graphs, Type };
  Kind kind = Kind::Int;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::shared_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;
  std::shared_ptr<TypeInfo> type;  // Kind::Type (Optional's `type`, SequenceEmpty-like ops)
  // Inside a function body: the caller's attribute this one takes its value from.
  std::string ref;
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" is ai.onnx
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;  // "" marks an omitted optional output
  std::map<std::string, Attribute> attrs;
  int opset = 0;  // the model's opset version for this node's domain

  bool has_attr(const std::string& key) const { return attrs.count(key) != 0; }
  int64_t attr_int(const std::string& key, int64_t fallback) const;
  float attr_float(const std::string& key, float fallback) const;
  std::string attr_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& key, std::vector<int64_t> fallback = {}) const;
  std::vector<float> attr_floats(const std::string& key, std::vector<float> fallback = {}) const;
  std::vector<std::string> attr_strings(const std::string& key) const;
  const Attribute* attr(const std::string& key) const;
  // "name (OpType)" for error messages.
  std::string label() const;
  bool has_input(size_t i) const { return i < inputs.size() && !inputs[i].empty(); }
};

struct Graph {
  std::string name;
  std::string doc_string;
  std::vector<Node> nodes;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<ValueInfo> value_info;
  std::map<std::string, Tensor> initializers;
};

// Removes the nodes at the indices in `dead`, keeping the others in order.
void erase_nodes(Graph& g, const std::set<size_t>& dead);
// Removes the nodes in `dead` as erase_nodes does, and puts the nodes of inserted[i] where
// node i is, ahead of it (node i itself stays unless it is dead).
void splice_nodes(Graph& g, const std::set<size_t>& dead, std::map<size_t, std::vector<Node>>& inserted);

// Whether `n` is the default-domain (ONNX) op `op`.
inline bool is_op(const Node& n, const char* op) { return n.domain.empty() && n.op_type == op; }

// Whether `n` is a convolution: ONNX's Conv, or the kiln::FusedConv the optimizer makes of one.
inline bool is_conv(const Node& n) { return is_op(n, "Conv") || (n.domain == "kiln" && n.op_type == "FusedConv"); }

// A Conv as a FusedConv with nothing fused yet (the same computation), for rewrites that give
// it what only FusedConv takes; a FusedConv stays as it is.
inline void as_fused_conv(Node& conv) {
  if (!conv.domain.empty()) return;
  conv.domain = "kiln";
  conv.op_type = "FusedConv";
  conv.opset = 1;
}

struct Model {
  int64_t ir_version = 0;
  std::map<std::string, int64_t> opsets;  // domain -> version
  std::string producer_name, producer_version, domain, doc_string;
  int64_t model_version = 0;
  std::map<std::string, std::string> metadata;
  std::string path;  // file it came from, or "" for bytes
  std::string checker_message;  // what ONNX's checker objected to, if it ran and did
  Graph graph;
};

}  // namespace kiln::ir
