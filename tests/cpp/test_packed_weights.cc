// Packed constant weights are shared: every kernel packing the same tensor into the same layout
// (the kernels of concurrent runs) gets one copy, and the copy holds the weight's values.
#include <gtest/gtest.h>

#include "kiln/ops/common/dnnl.h"

namespace kiln::test {

TEST(PackedWeights, OneCopyPerTensorAndLayout) {
  Tensor w(DType::Float32, {8, 4});
  for (int64_t i = 0; i < w.size(); ++i) w.data<float>()[i] = float(i);
  const auto plain = plain_desc(w.shape(), DType::Float32);
  const dnnl::memory::desc transposed({8, 4}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ba);

  PackedWeights a, b, c, none;
  a.pack(&w, plain, transposed);
  b.pack(&w, plain, transposed);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a.memory().get_data_handle(), b.memory().get_data_handle());
  const float* t = static_cast<const float*>(a.memory().get_data_handle());
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(t[j * 8 + i], float(i * 4 + j));

  Tensor other = w.clone();  // same values, another tensor: its own copy
  c.pack(&other, plain, transposed);
  EXPECT_NE(a.memory().get_data_handle(), c.memory().get_data_handle());

  none.pack(&w, plain, plain);  // the layout it already has: nothing to pack
  EXPECT_FALSE(none);
  none.pack(nullptr, plain, transposed);  // not constant
  EXPECT_FALSE(none);
}

}  // namespace kiln::test
