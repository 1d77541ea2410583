#include "kiln/exec/arena.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "kiln/core/tensor.h"

namespace kiln {

namespace {
size_t page_size() { return size_t(::sysconf(_SC_PAGESIZE)); }
size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
}  // namespace

std::shared_ptr<Arena> Arena::reserve(size_t capacity) {
  capacity = round_up(std::max<size_t>(capacity, 1), page_size());
  void* p = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  return std::shared_ptr<Arena>(new Arena(static_cast<char*>(p), capacity));
}

Arena::Arena(char* base, size_t capacity) : base_(base), capacity_(capacity) { free_[0] = capacity; }

Arena::~Arena() { ::munmap(base_, capacity_); }

std::shared_ptr<void> Arena::take(size_t bytes) {
  bytes = round_up(std::max<size_t>(bytes, 1), 64);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < bytes) continue;
    const size_t offset = it->first, rest = it->second - bytes;
    free_.erase(it);
    if (rest) free_[offset + bytes] = rest;
    touched_ = std::max(touched_, offset + bytes);
    std::shared_ptr<Arena> self = shared_from_this();
    return std::shared_ptr<void>(base_ + offset, [self, offset, bytes](void*) { self->give_back(offset, bytes); });
  }
  return nullptr;
}

void Arena::give_back(size_t offset, size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto next = free_.lower_bound(offset);
  if (next != free_.end() && offset + bytes == next->first) {
    bytes += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      prev->second += bytes;
      return;
    }
  }
  free_[offset] = bytes;
}

void Arena::keep(size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t needed = std::min(round_up(bytes, page_size()), capacity_);
  if (touched_ > 2 * needed) {
    release_pages(base_ + needed, touched_ - needed);
    touched_ = needed;
  }
  touched_ = std::max(touched_, needed);
}

}  // namespace kiln
