// Kiln's parallel loops: every item exactly once, in contiguous chunks of at least the grain,
// no more calls than parallel_pieces promises, on teams of one to five threads, also when a
// thread is slow and the others take its pieces.
#include "kiln/core/parallel.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace kiln::test {
namespace {

struct Calls {
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  void add(int64_t begin, int64_t end) {
    std::lock_guard<std::mutex> lock(mu);
    chunks.emplace_back(begin, end);
  }
  // Each of [0, n) once.
  void expect_cover(int64_t n) {
    std::vector<int> seen(size_t(n), 0);
    for (auto [b, e] : chunks) {
      ASSERT_LT(b, e);
      ASSERT_GE(b, 0);
      ASSERT_LE(e, n);
      for (int64_t i = b; i < e; ++i) ++seen[size_t(i)];
    }
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[size_t(i)], 1) << "item " << i;
  }
};

}  // namespace

TEST(Parallel, ForCoversEveryItemOnceInChunksOfTheGrain) {
  for (int threads : {1, 2, 3, 5})
    for (int64_t n : {0, 1, 7, 64, 1000, 4099})
      for (int64_t grain : {1, 3, 100}) {
        SCOPED_TRACE(testing::Message() << "threads " << threads << " n " << n << " grain " << grain);
        ThreadLimit limit(threads);
        Calls calls;
        parallel_for(n, grain, [&](int64_t b, int64_t e) { calls.add(b, e); });
        calls.expect_cover(n);
        EXPECT_LE(int64_t(calls.chunks.size()), std::max<int64_t>(1, parallel_pieces(n, grain)));
        if (n >= grain) {
          for (auto [b, e] : calls.chunks) EXPECT_GE(e - b, grain);
        }
        if (threads == 1 || n < 2 * grain) {
          EXPECT_LE(calls.chunks.size(), size_t(1));
        }
      }
}

TEST(Parallel, BalancedCoversEveryItemOnceByCost) {
  for (int threads : {1, 2, 4})
    for (int64_t n : {1, 5, 37, 600}) {
      SCOPED_TRACE(testing::Message() << "threads " << threads << " n " << n);
      ThreadLimit limit(threads);
      Calls calls;
      auto cost = [](int64_t i) { return i % 7 == 0 ? 10 : 1; };
      parallel_for_balanced(n, cost, [&](int64_t b, int64_t e) { calls.add(b, e); });
      calls.expect_cover(n);
    }
}

TEST(Parallel, OtherThreadsTakeASlowThreadsPieces) {
  // The thread that starts on piece 0 stalls; the rest of the work is done meanwhile by the
  // others, so the stalled thread ends having done at most its first piece and whatever is left.
  ThreadLimit limit(2);
  Calls calls;
  const int64_t n = 2 * kPiecesPerThread;
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    if (b == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    calls.add(b, e);
  });
  calls.expect_cover(n);
  EXPECT_EQ(calls.chunks.back().first, 0) << "the stalled piece ends last: the others took the rest";
}

}  // namespace kiln::test
