// Packed constant weights are shared: every kernel packing the same tensor into the same layout
// (the kernels of concurrent runs) gets one copy, and the copy holds the weight's values.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

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

// reorder_into packs plain weights into column panels itself: byte for byte what oneDNN's
// reorder makes, zero padding included, for rows or columns contiguous and ragged K and N.
TEST(PackedWeights, PanelsAsOneDnnPacksThem) {
  using tag = dnnl::memory::format_tag;
  const auto f32 = dnnl::memory::data_type::f32;
  for (const auto& [k, n] : {std::pair<int64_t, int64_t>{64, 96}, {37, 100}, {16, 16}, {5, 7}, {200, 48}})
    for (const bool nk : {false, true})
      for (const tag t : {tag::BA16a16b, tag::BA16a32b, tag::BA16a48b, tag::BA16a64b}) {
        SCOPED_TRACE(std::to_string(k) + "x" + std::to_string(n) + (nk ? " stored [N, K]" : "") + " width " +
                     std::to_string(PanelLayout::of(dnnl::memory::desc({k, n}, f32, t))->width));
        std::vector<float> w(size_t(k * n));
        for (size_t i = 0; i < w.size(); ++i) w[i] = float(i % 1009) - 500.f;
        const dnnl::memory::desc plain =
            nk ? dnnl::memory::desc({k, n}, f32, dnnl::memory::dims{1, k}) : plain_desc({k, n}, DType::Float32);
        const dnnl::memory::desc panels({k, n}, f32, t);
        dnnl::memory ours(panels, dnnl_engine()), theirs(panels, dnnl_engine());
        std::memset(ours.get_data_handle(), 0x7f, panels.get_size());  // no byte left unwritten
        reorder_into(plain, w.data(), ours);
        dnnl::memory src = wrap(plain, w.data());
        dnnl::reorder(src, theirs).execute(dnnl_stream(), src, theirs);
        dnnl_stream().wait();
        EXPECT_EQ(std::memcmp(ours.get_data_handle(), theirs.get_data_handle(), panels.get_size()), 0);
      }
}

}  // namespace kiln::test
