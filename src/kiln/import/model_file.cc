#include "kiln/import/model_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream.h>
#include <memory>
#include <mutex>
#include <thread>

#include "kiln/core/error.h"

namespace kiln {

namespace fs = std::filesystem;

namespace {

const size_t kPage = size_t(::sysconf(_SC_PAGESIZE));

// Drops the whole pages of [begin, end) of a read-only file mapping from memory; they are read
// from the file again if touched.
void drop_pages(const char* base, size_t begin, size_t end) {
  begin = (begin + kPage - 1) / kPage * kPage;
  end = end / kPage * kPage;
  if (end > begin) ::madvise(const_cast<char*>(base) + begin, end - begin, MADV_DONTNEED);
}

// The model file mapped read-only, handed to the parser in pieces of at most `piece` bytes.
// The parser copies what it keeps, so the pages of pieces it has moved past are dropped as it
// goes: the file's bytes are never all resident beside the parsed weights.
class MappedFileStream : public google::protobuf::io::ZeroCopyInputStream {
 public:
  explicit MappedFileStream(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(ErrorCode::NoSuchFile, "Load model from ", path, " failed: cannot open the file");
    struct stat st {};
    if (::fstat(fd, &st) == 0) size_ = size_t(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      base_ = p == MAP_FAILED ? nullptr : static_cast<const char*>(p);
    }
    ::close(fd);
    if (size_ > 0 && !base_) fail(ErrorCode::NoSuchFile, "Load model from ", path, " failed: cannot map the file");
  }
  ~MappedFileStream() override {
    if (base_) ::munmap(const_cast<char*>(base_), size_);
  }
  MappedFileStream(const MappedFileStream&) = delete;
  MappedFileStream& operator=(const MappedFileStream&) = delete;

  const char* base() const { return base_; }
  size_t size() const { return size_; }
  void set_piece(size_t bytes) { piece_ = bytes; }

  bool Next(const void** data, int* size) override {
    if (pos_ > released_ + piece_) {
      drop_pages(base_, released_, pos_);
      released_ = pos_ / kPage * kPage;
    }
    if (pos_ >= size_) return false;
    const size_t n = std::min(piece_, size_ - pos_);
    *data = base_ + pos_;
    *size = int(n);
    pos_ += n;
    return true;
  }
  void BackUp(int count) override { pos_ -= size_t(count); }
  bool Skip(int count) override {
    const size_t n = std::min(size_t(count), size_ - pos_);
    pos_ += n;
    return n == size_t(count);
  }
  int64_t ByteCount() const override { return int64_t(pos_); }

 private:
  const char* base_ = nullptr;
  size_t size_ = 0, pos_ = 0, released_ = 0, piece_ = size_t(4) << 20;
};

// While the parser reads a mapping given to it whole, a thread finds how far it has read (the
// end of the run of present pages behind it, from /proc/self/pagemap) and drops the pages well
// behind it.
class ReleaseBehind {
 public:
  ReleaseBehind(const char* base, size_t size) : base_(base), size_(size) {
#if defined(__linux__)
    pagemap_ = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
#endif
    if (pagemap_ >= 0 && !readable(0)) {  // entries unreadable here: nothing to follow with
      ::close(pagemap_);
      pagemap_ = -1;
    }
    if (pagemap_ >= 0) thread_ = std::thread([this] { follow(); });
  }
  ~ReleaseBehind() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
    if (pagemap_ >= 0) ::close(pagemap_);
  }
  ReleaseBehind(const ReleaseBehind&) = delete;
  ReleaseBehind& operator=(const ReleaseBehind&) = delete;

  bool following() const { return pagemap_ >= 0; }

 private:
  static constexpr size_t kMargin = size_t(8) << 20;  // left mapped behind the parser
  static constexpr size_t kHuge = size_t(2) << 20;

  // Whether the mapping's page `p` has a readable pagemap entry.
  bool readable(size_t p) const { return present_run(p, 1) >= 0; }

  // How many pages from page `first` on, at most `limit`, are in memory without a gap; -1 if
  // the entries cannot be read. Pages ahead of the parser may be present too (memcpy reads a
  // long string's last bytes first, a fault maps a whole folio), so the parser's position is
  // where the run starting behind it ends, not the last present page.
  long present_run(size_t first, size_t limit) const {
    uint64_t entries[512];
    size_t n = 0;
    while (n < limit) {
      const size_t want = std::min(limit - n, std::size(entries));
      const off_t at = off_t((reinterpret_cast<uintptr_t>(base_) / kPage + first + n) * sizeof entries[0]);
      const ssize_t got = ::pread(pagemap_, entries, want * sizeof entries[0], at);
      if (got <= 0) return n == 0 ? -1 : long(n);
      for (size_t i = 0; i < size_t(got) / sizeof entries[0]; ++i, ++n)
        if (!(entries[i] >> 63)) return long(n);
    }
    return long(n);
  }

  void follow() {
    size_t released = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::milliseconds(1), [this] { return stop_; })) {
      const size_t pages = (size_ + kPage - 1) / kPage, first = released / kPage;
      const size_t reached = (first + size_t(std::max(0L, present_run(first, pages - first)))) * kPage;
      if (reached < released + 2 * kMargin) continue;
      // Dropping part of a huge page's mapping unmaps all of it, so a drop ends on a 2 MB
      // boundary: the run of present pages then still starts at `released`.
      const uintptr_t base = reinterpret_cast<uintptr_t>(base_);
      const size_t to = (base + reached - kMargin) / kHuge * kHuge - base;
      drop_pages(base_, released, to);
      released = to;
    }
  }

  const char* base_;
  size_t size_;
  int pagemap_ = -1;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

// protobuf copies a string that runs past the end of a piece by reserving at most 50 MB and
// then doubling: GPT-2's two 147 MB weights touched 300 MB of pages more than they hold, a third
// of its parse and more. A file that can hold such a string goes to the parser whole, which
// copies every string at once, while ReleaseBehind keeps the file's pages from all staying
// resident.
constexpr size_t kWholeFrom = size_t(48) << 20;

}  // namespace

void parse_model_file(const std::string& path, onnx::ModelProto& mp) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(ErrorCode::NoSuchFile, "Load model from ", path, " failed: file does not exist");
  if (fs::is_directory(path, ec)) fail(ErrorCode::NoSuchFile, "Load model from ", path, " failed: it is a directory");
  MappedFileStream file(path);
  if (file.size() >= size_t(INT32_MAX))
    fail(ErrorCode::InvalidProtobuf, "Load model from ", path, " failed: ", file.size(),
         " bytes is over protobuf's 2 GB limit; store the weights as external data");
  bool parsed = false;
  {
    std::unique_ptr<ReleaseBehind> behind;
    if (file.size() >= kWholeFrom) behind = std::make_unique<ReleaseBehind>(file.base(), file.size());
    if (behind && behind->following()) file.set_piece(file.size());
    google::protobuf::io::CodedInputStream in(&file);
    in.SetTotalBytesLimit(INT32_MAX);
    parsed = mp.ParseFromCodedStream(&in) && in.ConsumedEntireMessage();
  }
  if (!parsed)
    fail(ErrorCode::InvalidProtobuf, "Load model from ", path,
         " failed: the file is not a valid ONNX model (protobuf parsing failed)");
}

}  // namespace kiln
