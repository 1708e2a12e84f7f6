#include "tinyfleet/device_agent/linux/file_stores.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace tinyfleet::device_agent::linux_port {

namespace {

bool write_all(int fd, const uint8_t* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool pread_all(int fd, uint64_t offset, uint8_t* out, size_t size) {
  while (size > 0) {
    const ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    out += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

long file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<long>(st.st_size);
}

}  // namespace

long FileRecordStore::load(const char* name, uint8_t* out, size_t capacity) {
  const std::string path = dir_ + "/" + name;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st {};
  long result = -1;
  if (::fstat(fd, &st) == 0 && static_cast<size_t>(st.st_size) <= capacity &&
      pread_all(fd, 0, out, static_cast<size_t>(st.st_size))) {
    result = static_cast<long>(st.st_size);
  }
  ::close(fd);
  return result;
}

bool FileRecordStore::save(const char* name, const uint8_t* data, size_t size) {
  const std::string path = dir_ + "/" + name;
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = write_all(fd, data, size) && (!durable_ || ::fsync(fd) == 0);
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) return false;
  return !durable_ || sync_dir(dir_);
}

FileSlotStore::FileSlotStore(std::string dir, bool durable)
    : dir_(std::move(dir)), durable_(durable) {
  // A partial slot from before a power cut is never used: discard it.
  ::unlink((slot_path(0) + ".partial").c_str());
  ::unlink((slot_path(1) + ".partial").c_str());
}

FileSlotStore::~FileSlotStore() {
  unmap(0);
  unmap(1);
  for (int fd : writing_fd_) {
    if (fd >= 0) ::close(fd);
  }
}

std::string FileSlotStore::slot_path(int slot) const {
  return dir_ + "/slot-" + std::to_string(slot) + ".tfa";
}

void FileSlotStore::unmap(int slot) {
  if (map_[slot]) ::munmap(const_cast<uint8_t*>(map_[slot]), map_size_[slot]);
  map_[slot] = nullptr;
  map_size_[slot] = 0;
}

bool FileSlotStore::begin_slot(int slot) {
  if (slot < 0 || slot > 1) return false;
  if (writing_fd_[slot] >= 0) ::close(writing_fd_[slot]);
  writing_fd_[slot] = ::open((slot_path(slot) + ".partial").c_str(),
                             O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  return writing_fd_[slot] >= 0;
}

bool FileSlotStore::append_slot(int slot, const uint8_t* data, size_t size) {
  return slot >= 0 && slot <= 1 && writing_fd_[slot] >= 0 &&
         write_all(writing_fd_[slot], data, size);
}

bool FileSlotStore::commit_slot(int slot) {
  if (slot < 0 || slot > 1 || writing_fd_[slot] < 0) return false;
  bool ok = !durable_ || ::fsync(writing_fd_[slot]) == 0;
  ok = (::close(writing_fd_[slot]) == 0) && ok;
  writing_fd_[slot] = -1;
  unmap(slot);
  if (!ok || ::rename((slot_path(slot) + ".partial").c_str(), slot_path(slot).c_str()) != 0) {
    return false;
  }
  return !durable_ || sync_dir(dir_);
}

long FileSlotStore::slot_size(int slot) {
  if (slot < 0 || slot > 1) return -1;
  return file_size(slot_path(slot));
}

bool FileSlotStore::read_slot(int slot, uint64_t offset, uint8_t* out, size_t size) {
  if (slot < 0 || slot > 1) return false;
  const int fd = ::open(slot_path(slot).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = pread_all(fd, offset, out, size);
  ::close(fd);
  return ok;
}

const uint8_t* FileSlotStore::map_slot(int slot) {
  if (slot < 0 || slot > 1) return nullptr;
  if (map_[slot]) return map_[slot];
  const int fd = ::open(slot_path(slot).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size == 0) {
    ::close(fd);
    return nullptr;
  }
  void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return nullptr;
  map_[slot] = static_cast<const uint8_t*>(p);
  map_size_[slot] = static_cast<size_t>(st.st_size);
  return map_[slot];
}

long FileSlotStore::staging_size() {
  const long n = file_size(dir_ + "/staging.bin");
  return n < 0 ? 0 : n;
}

bool FileSlotStore::staging_append(uint64_t offset, const uint8_t* data, size_t size) {
  const std::string path = dir_ + "/staging.bin";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) == offset &&
            ::lseek(fd, static_cast<off_t>(offset), SEEK_SET) >= 0 && write_all(fd, data, size) &&
            (!durable_ || ::fdatasync(fd) == 0);
  ok = (::close(fd) == 0) && ok;
  return ok;
}

bool FileSlotStore::staging_read(uint64_t offset, uint8_t* out, size_t size) {
  const int fd = ::open((dir_ + "/staging.bin").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = pread_all(fd, offset, out, size);
  ::close(fd);
  return ok;
}

bool FileSlotStore::staging_clear() {
  if (::unlink((dir_ + "/staging.bin").c_str()) != 0 && errno != ENOENT) return false;
  return true;
}

}  // namespace tinyfleet::device_agent::linux_port
