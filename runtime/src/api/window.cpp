// Shared windows (the compiled half of window.hpp): the node's region, as a shared
// segment or a file.
//
// Layout of a region: a 4 KiB header page, then the slices in node-rank order, each
// starting on a 64-byte line. The header (used in files; zero in segments):
//   "IPCWIN1\0", u32 version, u32 element size, u32 slices, u32 0, u64 bytes,
//   char type[128], u64 counts[slices]
#include "ipc/window.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "base/errors.hpp"
#include "base/mapping.hpp"
#include "base/names.hpp"

namespace ipc::detail {
namespace {

constexpr std::size_t kHeader = 4096, kLine = 64;
constexpr char kMagic[8] = {'I', 'P', 'C', 'W', 'I', 'N', '1', '\0'};
constexpr std::uint32_t kVersion = 1;

struct FileHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t elem_size;
  std::uint32_t slices;
  std::uint32_t zero;
  std::uint64_t bytes;
  char type[128];
  std::uint64_t counts[1];  // slices of them
};
constexpr std::size_t kMaxSlices = (kHeader - offsetof(FileHeader, counts)) / sizeof(std::uint64_t);

std::atomic<std::uint64_t> g_windows{0};  // this process's windows, for segment names

struct FileMap {
  void* base = MAP_FAILED;
  std::size_t bytes = 0;
  ~FileMap() {
    if (base != MAP_FAILED) ::munmap(base, bytes);
  }
};

void flush_file(const WindowRegion& r) {
  auto* m = static_cast<FileMap*>(r.keep.get());
  if (::msync(m->base, m->bytes, MS_SYNC) != 0) throw Error(std::string("window: msync: ") + std::strerror(errno));
}

// What differs between the file's header and this window, "" when nothing.
std::string differs(const FileHeader& h, std::size_t elem, const std::string& type,
                    const std::vector<std::size_t>& counts) {
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return "it is not a window file";
  if (h.version != kVersion) return "its format version is " + std::to_string(h.version) + ", not " + std::to_string(kVersion);
  std::string t(h.type, strnlen(h.type, sizeof h.type));
  if (t != type) return "it holds elements of type " + t + ", not " + type;
  if (h.elem_size != elem)
    return "its elements are " + std::to_string(h.elem_size) + " bytes, not " + std::to_string(elem);
  if (h.slices != counts.size())
    return "it has " + std::to_string(h.slices) + " slices (ranks on the node), not " + std::to_string(counts.size());
  for (std::size_t k = 0; k < counts.size(); ++k)
    if (h.counts[k] != counts[k])
      return "its slice " + std::to_string(k) + " has " + std::to_string(h.counts[k]) + " elements, not " +
             std::to_string(counts[k]);
  return "";
}

}  // namespace

void window_not_here(int rank, int size) {
  throw UsageError("window: rank " + std::to_string(rank) + " (of " + std::to_string(size) +
                   ") does not share this node's region");
}

void window_index_out(std::size_t i, std::size_t n) {
  throw UsageError("window: element " + std::to_string(i) + " of a slice of " + std::to_string(n));
}

std::shared_ptr<WindowRegion> make_window(const Communicator& comm, std::size_t elem, std::size_t count,
                                          const std::string& type, const WindowFile* file) {
  Communicator node = comm.split_by_node();
  auto region = std::make_shared<WindowRegion>();
  region->node_ranks = node.allgather(comm.rank());
  region->node_rank = node.rank();
  auto counts64 = node.allgather(static_cast<std::uint64_t>(count));
  region->counts.assign(counts64.begin(), counts64.end());
  std::size_t at = 0;
  for (std::size_t c : region->counts) {
    region->offsets.push_back(at);
    at += (c * elem + kLine - 1) / kLine * kLine;
  }
  const std::size_t bytes = kHeader + std::max<std::size_t>(at, kLine);
  const bool first = node.rank() == 0;
  std::string error;  // node rank 0's, sent to all so that every rank throws the same
  auto agree = [&](bool fine_here) { return node.allreduce(fine_here ? 1 : 0, op::min{}) == 1; };

  if (!file) {
    std::uint64_t number = node.allreduce(g_windows.load(), op::max{});
    g_windows.store(number + 1);
    std::string name = "/ipc-" + CommAccess::job(comm) + "-w" + std::to_string(number) + "-" +
                       std::to_string(CommAccess::job_rank(node, 0));
    auto map = std::make_shared<base::Mapping>();
    if (first) {
      try {
        *map = base::Mapping::create(name, bytes, false);
      } catch (const Error& e) {
        error = without_origin(e.what());
      }
    }
    node.bcast(error, 0);
    if (!error.empty()) throw Error("window: " + error);
    bool opened = true;
    if (!first) {
      try {
        *map = base::Mapping::open(name, bytes, false);
      } catch (const Error& e) {
        opened = false;
        error = without_origin(e.what());
      }
    }
    bool all = agree(opened);
    if (first) map->unlink();
    if (!all) throw Error("window: a rank of this node could not map the region" + (error.empty() ? "" : ": " + error));
    region->base = map->base() + kHeader;
    region->keep = map;
    return region;
  }

  // File-backed: node rank 0 creates or checks the file, then every rank maps it.
  if (region->counts.size() > kMaxSlices)
    throw UsageError("window: a file holds at most " + std::to_string(kMaxSlices) + " ranks' slices");
  if (first) {
    int fd = ::open(file->path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) {
      error = "cannot open " + file->path + ": " + std::strerror(errno);
    } else if (st.st_size == 0) {  // new: zeroed, with its header
      std::vector<char> head(kHeader, 0);
      auto* h = reinterpret_cast<FileHeader*>(head.data());
      std::memcpy(h->magic, kMagic, sizeof kMagic);
      h->version = kVersion;
      h->elem_size = static_cast<std::uint32_t>(elem);
      h->slices = static_cast<std::uint32_t>(region->counts.size());
      h->bytes = bytes;
      std::strncpy(h->type, type.c_str(), sizeof h->type - 1);
      for (std::size_t k = 0; k < region->counts.size(); ++k) h->counts[k] = region->counts[k];
      if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0 || ::pwrite(fd, head.data(), kHeader, 0) != static_cast<ssize_t>(kHeader))
        error = "cannot write " + file->path + ": " + std::strerror(errno);
    } else {
      std::vector<char> head(kHeader, 0);
      if (::pread(fd, head.data(), kHeader, 0) != static_cast<ssize_t>(kHeader)) {
        error = file->path + " is not a window file (shorter than its header)";
      } else {
        std::string why = differs(*reinterpret_cast<const FileHeader*>(head.data()), elem, type, region->counts);
        if (!why.empty()) error = "reopening " + file->path + ": " + why;
        else if (static_cast<std::size_t>(st.st_size) < bytes) error = file->path + " is cut short";
      }
    }
    if (fd >= 0) ::close(fd);
  }
  node.bcast(error, 0);
  if (!error.empty()) throw UsageError("window: " + error);
  auto map = std::make_shared<FileMap>();
  bool mapped = false;
  int fd = ::open(file->path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    map->base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    map->bytes = bytes;
    mapped = map->base != MAP_FAILED;
    ::close(fd);
  }
  if (!agree(mapped)) throw Error("window: a rank of this node could not map " + file->path);
  region->base = static_cast<std::byte*>(map->base) + kHeader;
  region->keep = map;
  region->flush = &flush_file;
  return region;
}

}  // namespace ipc::detail
