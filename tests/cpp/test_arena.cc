// A frame's arena: recording runs take ranges first fit and give them back when their tensors
// die; a plan keeps the pages it needs and hands back a much larger tail. Buffers outside it
// are aligned and the large ones recycled.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "kiln/core/tensor.h"
#include "kiln/exec/arena.h"

namespace kiln::test {

namespace {
size_t offset(const std::shared_ptr<Arena>& a, const std::shared_ptr<void>& p) {
  return size_t(static_cast<char*>(p.get()) - a->data());
}

// Resident pages of [p, p + bytes).
size_t resident_pages(char* p, size_t bytes) {
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((bytes + page - 1) / page);
  EXPECT_EQ(::mincore(p, bytes, vec.data()), 0);
  size_t n = 0;
  for (unsigned char v : vec) n += v & 1;
  return n;
}
}  // namespace

TEST(Arena, FirstFitReusesAndCoalescesFreedRanges) {
  auto arena = Arena::reserve(4096);
  ASSERT_TRUE(arena);
  auto a = arena->take(100);  // rounded to 128
  auto b = arena->take(64);
  auto c = arena->take(256);
  EXPECT_EQ(offset(arena, a), 0u);
  EXPECT_EQ(offset(arena, b), 128u);
  EXPECT_EQ(offset(arena, c), 192u);

  a.reset();
  EXPECT_EQ(offset(arena, arena->take(1)), 0u);  // the lowest free range that fits (dies at once)
  auto d = arena->take(200);                      // does not fit in the 128 freed at 0
  EXPECT_EQ(offset(arena, d), 448u);
  b.reset();  // 0..192 free again, one range
  auto e = arena->take(192);
  EXPECT_EQ(offset(arena, e), 0u);

  EXPECT_FALSE(arena->take(4096));  // no free range that large
  e.reset();
  c.reset();
  d.reset();
  EXPECT_EQ(offset(arena, arena->take(4096)), 0u);  // all of it coalesced back into one range
}

TEST(Arena, RangesKeepTheArenaAlive) {
  auto arena = Arena::reserve(1 << 16);
  std::shared_ptr<void> held = arena->take(1000);
  std::weak_ptr<Arena> watch = arena;
  arena.reset();
  ASSERT_FALSE(watch.expired());
  static_cast<char*>(held.get())[999] = 1;  // still mapped
  held.reset();
  EXPECT_TRUE(watch.expired());
}

TEST(Arena, KeepHandsBackAMuchLargerTail) {
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  auto arena = Arena::reserve(64 * page);
  {
    auto big = arena->take(32 * page);
    std::fill_n(static_cast<char*>(big.get()), 32 * page, 1);
  }
  EXPECT_EQ(resident_pages(arena->data(), 32 * page), 32u);
  arena->keep(20 * page);  // less than twice the plan resident: the pages stay for the next shape
  EXPECT_EQ(resident_pages(arena->data(), 32 * page), 32u);
  arena->keep(4 * page);  // the plan shrank to an eighth: the tail goes back
  EXPECT_EQ(resident_pages(arena->data(), 4 * page), 4u);
  EXPECT_EQ(resident_pages(arena->data() + 4 * page, 28 * page), 0u);
}

}  // namespace kiln::test

namespace kiln::test {

// Buffers outside the arena (graph outputs, scratch): 64-byte aligned, and a large one handed
// back serves the next of about its size, whose pages are then already resident.
TEST(AlignedBuffer, LargeBuffersAreRecycled) {
  release_free_memory();  // no blocks kept from earlier tests
  for (size_t bytes : {size_t(1), size_t(100), size_t(3) << 20})
    EXPECT_EQ(reinterpret_cast<uintptr_t>(aligned_buffer(bytes).get()) % 64, 0u) << bytes;

  const size_t big = size_t(6) << 20;
  std::shared_ptr<void> a = aligned_buffer(big);
  std::memset(a.get(), 1, big);
  void* first = a.get();
  std::shared_ptr<void> b = aligned_buffer(big);  // while `a` is alive: another block
  EXPECT_NE(b.get(), first);
  a.reset();
  std::shared_ptr<void> c = aligned_buffer(big - 4096);  // a's block, its pages resident
  EXPECT_EQ(c.get(), first);
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  char* inside = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(c.get()) + page - 1) / page * page);
  EXPECT_EQ(resident_pages(inside, size_t(4) << 20), (size_t(4) << 20) / page);
  c.reset();
  EXPECT_NE(aligned_buffer(big / 2).get(), first);  // far smaller: not served from it
  release_free_memory();  // the kept blocks go back to the heap
  b.reset();
}

}  // namespace kiln::test
