#include "kiln/import/onnx_export.h"

#include <onnx/onnx_pb.h>

#include <set>

namespace kiln {

namespace {

void export_tensor(const std::string& name, const Tensor& t, onnx::TensorProto& tp) {
  tp.set_name(name);
  tp.set_data_type(int(t.dtype()));
  for (int64_t d : t.shape()) tp.add_dims(d);
  if (t.dtype() == DType::String) {
    for (int64_t i = 0; i < t.size(); ++i) tp.add_string_data(t.data<std::string>()[i]);
  } else {
    tp.set_raw_data(std::string(static_cast<const char*>(t.raw()), t.bytes()));
  }
}

void export_type(const ir::TypeInfo& t, onnx::TypeProto& tp) {
  switch (t.kind) {
    case ir::ValueKind::Sequence:
      if (t.elem) export_type(*t.elem, *tp.mutable_sequence_type()->mutable_elem_type());
      return;
    case ir::ValueKind::Optional:
      if (t.elem) export_type(*t.elem, *tp.mutable_optional_type()->mutable_elem_type());
      return;
    default:
      break;
  }
  auto* tt = tp.mutable_tensor_type();
  tt->set_elem_type(int(t.dtype));
  if (!t.shape) return;
  auto* sp = tt->mutable_shape();
  for (const auto& d : *t.shape) {
    auto* dim = sp->add_dim();
    if (d.value) dim->set_dim_value(*d.value);
    else if (!d.symbol.empty()) dim->set_dim_param(d.symbol);
  }
}

void export_value_info(const ir::ValueInfo& v, onnx::ValueInfoProto& vp) {
  vp.set_name(v.name);
  if (!v.doc_string.empty()) vp.set_doc_string(v.doc_string);
  if (v.type.kind != ir::ValueKind::Unknown) export_type(v.type, *vp.mutable_type());
}

void export_graph(const ir::Graph& g, onnx::GraphProto& gp, std::set<std::string>& domains);

void export_attribute(const std::string& name, const ir::Attribute& a, onnx::AttributeProto& ap,
                      std::set<std::string>& domains) {
  using K = ir::Attribute::Kind;
  ap.set_name(name);
  switch (a.kind) {
    case K::Float: ap.set_type(onnx::AttributeProto::FLOAT); ap.set_f(a.f); break;
    case K::Int: ap.set_type(onnx::AttributeProto::INT); ap.set_i(a.i); break;
    case K::String: ap.set_type(onnx::AttributeProto::STRING); ap.set_s(a.s); break;
    case K::Tensor: ap.set_type(onnx::AttributeProto::TENSOR); export_tensor("", a.t, *ap.mutable_t()); break;
    case K::Graph: ap.set_type(onnx::AttributeProto::GRAPH); export_graph(*a.g, *ap.mutable_g(), domains); break;
    case K::Floats:
      ap.set_type(onnx::AttributeProto::FLOATS);
      for (float f : a.floats) ap.add_floats(f);
      break;
    case K::Ints:
      ap.set_type(onnx::AttributeProto::INTS);
      for (int64_t i : a.ints) ap.add_ints(i);
      break;
    case K::Strings:
      ap.set_type(onnx::AttributeProto::STRINGS);
      for (const auto& s : a.strings) ap.add_strings(s);
      break;
    case K::Tensors:
      ap.set_type(onnx::AttributeProto::TENSORS);
      for (const auto& t : a.tensors) export_tensor("", t, *ap.add_tensors());
      break;
    case K::Graphs:
      ap.set_type(onnx::AttributeProto::GRAPHS);
      for (const auto& sg : a.graphs) export_graph(*sg, *ap.add_graphs(), domains);
      break;
    case K::Type:
      ap.set_type(onnx::AttributeProto::TYPE_PROTO);
      if (a.type) export_type(*a.type, *ap.mutable_tp());
      break;
  }
}

void export_graph(const ir::Graph& g, onnx::GraphProto& gp, std::set<std::string>& domains) {
  gp.set_name(g.name);
  if (!g.doc_string.empty()) gp.set_doc_string(g.doc_string);
  for (const auto& [name, t] : g.initializers) export_tensor(name, t, *gp.add_initializer());
  for (const auto& v : g.inputs) export_value_info(v, *gp.add_input());
  for (const auto& v : g.outputs) export_value_info(v, *gp.add_output());
  for (const auto& v : g.value_info) export_value_info(v, *gp.add_value_info());
  for (const auto& n : g.nodes) {
    auto* np = gp.add_node();
    np->set_name(n.name);
    np->set_op_type(n.op_type);
    if (!n.domain.empty()) np->set_domain(n.domain);
    domains.insert(n.domain);
    for (const auto& i : n.inputs) np->add_input(i);
    for (const auto& o : n.outputs) np->add_output(o);
    for (const auto& [k, a] : n.attrs) export_attribute(k, a, *np->add_attribute(), domains);
  }
}

}  // namespace

std::string export_model(const ir::Model& m) {
  onnx::ModelProto mp;
  mp.set_ir_version(m.ir_version);
  mp.set_producer_name(m.producer_name);
  mp.set_producer_version(m.producer_version);
  mp.set_domain(m.domain);
  mp.set_model_version(m.model_version);
  if (!m.doc_string.empty()) mp.set_doc_string(m.doc_string);
  for (const auto& [k, v] : m.metadata) {
    auto* p = mp.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  std::set<std::string> domains;
  export_graph(m.graph, *mp.mutable_graph(), domains);
  std::map<std::string, int64_t> opsets = m.opsets;
  for (const auto& d : domains)
    if (!opsets.count(d)) opsets[d] = 1;  // Kiln's fused ops: domain "kiln", version 1
  for (const auto& [d, v] : opsets) {
    auto* op = mp.add_opset_import();
    op->set_domain(d);
    op->set_version(v);
  }
  std::string out;
  mp.SerializeToString(&out);
  return out;
}

}  // namespace kiln
