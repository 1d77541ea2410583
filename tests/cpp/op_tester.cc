#include "op_tester.h"

#include <sstream>

namespace kiln::test {

OpTester::OpTester(std::string op_type, int opset, std::string domain) : opset_(opset) {
  node_.op_type = std::move(op_type);
  node_.domain = std::move(domain);
  node_.name = "test_" + node_.op_type;
  node_.opset = opset;
}

OpTester& OpTester::add_input(const std::string& name, Tensor t, bool constant) {
  node_.inputs.push_back(name);
  if (constant) constants_[name] = std::move(t);
  else feeds_.emplace_back(name, std::move(t));
  return *this;
}

OpTester& OpTester::omitted_input() {
  node_.inputs.push_back("");
  return *this;
}

OpTester& OpTester::add_output(const std::string& name, Tensor expected) {
  node_.outputs.push_back(name);
  expected_.emplace_back(name, std::move(expected));
  return *this;
}

OpTester& OpTester::omitted_output() {
  node_.outputs.push_back("");
  return *this;
}

namespace {
ir::Attribute make_attr(ir::Attribute::Kind kind) {
  ir::Attribute a;
  a.kind = kind;
  return a;
}
}  // namespace

OpTester& OpTester::attr(const std::string& name, int64_t v) {
  auto a = make_attr(ir::Attribute::Kind::Int);
  a.i = v;
  node_.attrs[name] = a;
  return *this;
}
OpTester& OpTester::attr(const std::string& name, float v) {
  auto a = make_attr(ir::Attribute::Kind::Float);
  a.f = v;
  node_.attrs[name] = a;
  return *this;
}
OpTester& OpTester::attr(const std::string& name, const std::string& v) {
  auto a = make_attr(ir::Attribute::Kind::String);
  a.s = v;
  node_.attrs[name] = a;
  return *this;
}
OpTester& OpTester::attr(const std::string& name, std::vector<int64_t> v) {
  auto a = make_attr(ir::Attribute::Kind::Ints);
  a.ints = std::move(v);
  node_.attrs[name] = a;
  return *this;
}
OpTester& OpTester::attr(const std::string& name, std::vector<float> v) {
  auto a = make_attr(ir::Attribute::Kind::Floats);
  a.floats = std::move(v);
  node_.attrs[name] = a;
  return *this;
}
OpTester& OpTester::attr(const std::string& name, std::vector<std::string> v) {
  auto a = make_attr(ir::Attribute::Kind::Strings);
  a.strings = std::move(v);
  node_.attrs[name] = a;
  return *this;
}
OpTester& OpTester::attr(const std::string& name, Tensor v) {
  auto a = make_attr(ir::Attribute::Kind::Tensor);
  a.t = std::move(v);
  node_.attrs[name] = a;
  return *this;
}

OpTester& OpTester::tolerance(double rtol, double atol) {
  rtol_ = rtol;
  atol_ = atol;
  return *this;
}

std::shared_ptr<ir::Model> OpTester::model() const {
  auto m = std::make_shared<ir::Model>();
  m->ir_version = 8;
  m->opsets[node_.domain] = opset_;
  if (!node_.domain.empty()) m->opsets[""] = 17;
  m->graph.name = "op_test";
  m->graph.nodes.push_back(node_);
  for (const auto& [name, value] : feeds_) {
    ir::ValueInfo v;
    v.name = name;
    v.type.dtype = value.tensor().dtype();
    m->graph.inputs.push_back(v);
  }
  m->graph.initializers = constants_;
  for (const auto& [name, t] : expected_) {
    if (name.empty()) continue;
    ir::ValueInfo v;
    v.name = name;
    v.type.dtype = t.dtype();
    m->graph.outputs.push_back(v);
  }
  return m;
}

std::vector<Value> OpTester::outputs() {
  SessionConfig config;
  config.optimization = OptLevel::Disabled;  // test the kernel, not constant folding
  Session session(model(), config);
  return session.run(feeds_, {});
}

void OpTester::run() {
  SessionConfig config;
  config.optimization = OptLevel::Disabled;
  Session session(model(), config);
  for (int round = 0; round < 2; ++round) {
    std::vector<Value> got = session.run(feeds_, {});
    size_t k = 0;
    for (const auto& [name, want] : expected_) {
      if (name.empty()) continue;
      EXPECT_TRUE(tensors_close(want, got[k].tensor(), rtol_, atol_)) << "output '" << name << "', run " << round + 1;
      ++k;
    }
  }
}

void OpTester::expect_failure(const std::string& substring) {
  try {
    SessionConfig config;
    config.optimization = OptLevel::Disabled;
    Session session(model(), config);
    session.run(feeds_, {});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(substring), std::string::npos)
        << "error was: " << e.what() << "\nexpected it to contain: " << substring;
    return;
  }
  ADD_FAILURE() << "expected a failure containing '" << substring << "', but the op ran";
}

::testing::AssertionResult tensors_close(const Tensor& expected, const Tensor& got, double rtol, double atol) {
  if (expected.dtype() != got.dtype())
    return ::testing::AssertionFailure() << "dtype: expected " << dtype_name(expected.dtype()) << ", got "
                                         << dtype_name(got.dtype());
  if (expected.shape() != got.shape())
    return ::testing::AssertionFailure() << "shape: expected " << shape_str(expected.shape()) << ", got "
                                         << shape_str(got.shape());
  if (expected.dtype() == DType::String) {
    for (int64_t i = 0; i < expected.size(); ++i)
      if (expected.data<std::string>()[i] != got.data<std::string>()[i])
        return ::testing::AssertionFailure() << "element " << i << ": expected '" << expected.data<std::string>()[i]
                                             << "', got '" << got.data<std::string>()[i] << "'";
    return ::testing::AssertionSuccess();
  }
  auto as_double = [](const Tensor& t, int64_t i) -> double {
    if (t.dtype() == DType::Float16) return half_to_float(static_cast<const uint16_t*>(t.raw())[i]);
    if (t.dtype() == DType::BFloat16) return bfloat16_to_float(static_cast<const uint16_t*>(t.raw())[i]);
    return dispatch(NumericTypes{}, t.dtype(), "compare", [&]<typename T>() { return double(t.data<T>()[i]); });
  };
  for (int64_t i = 0; i < expected.size(); ++i) {
    double e, g;
    if (expected.dtype() == DType::Bool) {
      e = expected.data<bool>()[i];
      g = got.data<bool>()[i];
    } else {
      e = as_double(expected, i);
      g = as_double(got, i);
    }
    if (std::isnan(e) && std::isnan(g)) continue;
    if (e == g) continue;
    if (std::abs(e - g) > atol + rtol * std::abs(e))
      return ::testing::AssertionFailure() << "element " << i << ": expected " << e << ", got " << g
                                           << " (rtol " << rtol << ", atol " << atol << ")";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace kiln::test
