// A fluent single-node test, after ONNX Runtime's OpTester:
//
//   OpTester("Add").input<float>("A", {2}, {1, 2}).input<float>("B", {1}, {3})
//       .output<float>("C", {2}, {4, 5}).run();
//
// It builds a one-node model in Kiln's IR and runs it through a real Session, so the test goes
// through the same planner, kernels and memory plan as a model file.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kiln/exec/session.h"
#include "kiln/ops/common/vec.h"

namespace kiln::test {

// Kiln's own convolution kernels but the depthwise and Winograd ones (pointwise, stem and the
// fused expansion) are AVX-512 code; a build for a machine without it runs those layers on
// oneDNN, which the FusedConv tests and the models cover there. Their kernel-level tests skip
// such a build.
#if defined(__AVX512F__)
inline constexpr bool kAvx512Build = true;
#else
inline constexpr bool kAvx512Build = false;
#endif
// The depthwise and Winograd kernels have AVX2 forms too (kiln/ops/common/vec.h's KILN_VEC):
// their tests skip only a build with neither.
#if defined(KILN_VEC)
inline constexpr bool kVectorBuild = true;
#else
inline constexpr bool kVectorBuild = false;
#endif

// `count` floats in [-bound, bound) from a linear congruential generator seeded with `seed`:
// the same test data on every machine and standard library.
inline std::vector<float> uniform_values(int64_t count, uint32_t seed, float bound = 1.f) {
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = float(seed >> 8) / float(1 << 24) * (2 * bound) - bound;
  }
  return v;
}

// Every got[i] within tol + tol * |want[i]| of want[i] (a NaN is never close); the first five
// misses are reported.
inline void expect_close(const std::vector<float>& want, const std::vector<float>& got, float tol) {
  ASSERT_EQ(want.size(), got.size());
  size_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i)
    if (!(std::abs(want[i] - got[i]) <= tol + tol * std::abs(want[i])) && bad++ < 5)
      ADD_FAILURE() << "at " << i << ": want " << want[i] << ", got " << got[i];
  EXPECT_EQ(bad, 0u);
}

// What `write(float* y)` leaves in a buffer of `size` floats, checked not to have written past
// its end: the 16 floats after it must keep the value they were given.
template <typename Write>
std::vector<float> written_within(size_t size, Write&& write) {
  std::vector<float> y(size + 16, -99.f);
  write(y.data());
  for (size_t i = size; i < y.size(); ++i) EXPECT_EQ(y[i], -99.f) << "written past the output at " << i;
  y.resize(size);
  return y;
}

template <typename T>
Tensor make_tensor(Shape shape, const std::vector<T>& values) {
  Tensor t(dtype_of<T>(), shape);
  EXPECT_EQ(int64_t(values.size()), t.size()) << "test data does not match shape " << shape_str(shape);
  T* p = t.data<T>();
  for (size_t i = 0; i < values.size() && int64_t(i) < t.size(); ++i) p[i] = values[i];
  return t;
}

class OpTester {
 public:
  explicit OpTester(std::string op_type, int opset = 17, std::string domain = "");

  template <typename T>
  OpTester& input(const std::string& name, Shape shape, const std::vector<T>& values, bool constant = false) {
    return add_input(name, make_tensor<T>(std::move(shape), values), constant);
  }
  // An initializer rather than a fed input (weights, axes...).
  template <typename T>
  OpTester& constant(const std::string& name, Shape shape, const std::vector<T>& values) {
    return input<T>(name, std::move(shape), values, true);
  }
  OpTester& omitted_input();
  OpTester& add_input(const std::string& name, Tensor t, bool constant);

  template <typename T>
  OpTester& output(const std::string& name, Shape shape, const std::vector<T>& values) {
    return add_output(name, make_tensor<T>(std::move(shape), values));
  }
  OpTester& add_output(const std::string& name, Tensor expected);
  OpTester& omitted_output();

  OpTester& attr(const std::string& name, int64_t v);
  OpTester& attr(const std::string& name, int v) { return attr(name, int64_t(v)); }
  OpTester& attr(const std::string& name, float v);
  OpTester& attr(const std::string& name, const std::string& v);
  OpTester& attr(const std::string& name, const char* v) { return attr(name, std::string(v)); }
  OpTester& attr(const std::string& name, std::vector<int64_t> v);
  OpTester& attr(const std::string& name, std::vector<float> v);
  OpTester& attr(const std::string& name, std::vector<std::string> v);
  OpTester& attr(const std::string& name, Tensor v);
  OpTester& tolerance(double rtol, double atol);

  // Runs twice (the second run replays the memory plan) and compares every output.
  void run();
  // Expects session creation or the run to fail with a message containing `substring`.
  void expect_failure(const std::string& substring);
  // Runs and returns the outputs without comparing (for property tests).
  std::vector<Value> outputs();

 private:
  std::shared_ptr<ir::Model> model() const;

  ir::Node node_;
  int opset_;
  std::vector<std::pair<std::string, Value>> feeds_;
  std::map<std::string, Tensor> constants_;
  std::vector<std::pair<std::string, Tensor>> expected_;
  double rtol_ = 1e-5, atol_ = 1e-6;
};

// Compares two tensors elementwise (NaN equals NaN); names the first mismatch.
::testing::AssertionResult tensors_close(const Tensor& expected, const Tensor& got, double rtol, double atol);

}  // namespace kiln::test
