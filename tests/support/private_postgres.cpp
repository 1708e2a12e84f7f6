#include "tinyfleet/testing/private_postgres.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "tinyfleet/testing/free_port.h"

namespace tinyfleet::testing {

namespace fs = std::filesystem;

namespace {

const char* kBin = "/usr/lib/postgresql/15/bin";

}  // namespace

PrivatePostgres::PrivatePostgres() {
  static int serial = 0;
  dir_ = fs::temp_directory_path() /
         ("tf-pg-" + std::to_string(getpid()) + "-" + std::to_string(serial++));
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  // PostgreSQL refuses to run as root.
  user_ = getuid() == 0 ? "postgres" : "";
  if (!user_.empty()) {
    if (std::system("id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres") !=
        0) {
      throw std::runtime_error("no user postgres");
    }
    if (std::system(("chown postgres '" + dir_.string() + "'").c_str()) != 0) {
      throw std::runtime_error("cannot chown " + dir_.string());
    }
  }
  if (!run(std::string(kBin) + "/initdb -N -D '" + (dir_ / "data").string() +
           "' -U tinyfleet --auth=trust -E UTF8 --locale=C.UTF-8 >'" +
           (dir_ / "initdb.log").string() + "' 2>&1")) {
    throw std::runtime_error("initdb failed: see " + (dir_ / "initdb.log").string());
  }
  port_ = free_loopback_port();
  std::ofstream conf(dir_ / "data" / "postgresql.conf", std::ios::app);
  conf << "listen_addresses = '127.0.0.1'\nport = " << port_ << "\nunix_socket_directories = '"
       << dir_.string()
       << "'\nmax_connections = 60\nshared_buffers = 32MB\nfsync = off\n"
          "max_locks_per_transaction = 256\ntimezone = 'UTC'\n";
}

PrivatePostgres::~PrivatePostgres() {
  stop(/*immediate=*/true);
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

bool PrivatePostgres::run(const std::string& command) const {
  const std::string line = user_.empty() ? command : "runuser -u " + user_ + " -- " + command;
  return std::system(line.c_str()) == 0;
}

bool PrivatePostgres::start() {
  if (!run(std::string(kBin) + "/pg_ctl -D '" + (dir_ / "data").string() + "' -l '" +
           (dir_ / "server.log").string() + "' -w -t 60 start >/dev/null")) {
    return false;
  }
  if (!created_) {
    created_ = run(std::string(kBin) + "/createdb -h 127.0.0.1 -p " + std::to_string(port_) +
                   " -U tinyfleet tinyfleet");
  }
  return created_;
}

bool PrivatePostgres::stop(bool immediate) {
  if (!fs::exists(dir_ / "data" / "postmaster.pid")) return true;
  return run(std::string(kBin) + "/pg_ctl -D '" + (dir_ / "data").string() + "' -m " +
             (immediate ? "immediate" : "fast") + " -w stop >/dev/null 2>&1");
}

}  // namespace tinyfleet::testing
