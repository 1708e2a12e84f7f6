// tinyfleet-db: the storage room's operator tool.
//   tinyfleet-db migrate            apply pending migrations (a no-op when up to date)
//   tinyfleet-db status             applied migrations and row counts per table
//   tinyfleet-db put-blob FILE...   store files content-addressed; prints sha256 and
//                                   whether the bytes were new
// The database comes from --uri or TINYFLEET_PG_URI.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/storage/migrations.h"

namespace {

using tinyfleet::storage::Database;
using tinyfleet::storage::Error;

int usage() {
  std::cerr << "usage: tinyfleet-db [--uri URI] migrate | status | put-blob FILE...\n"
               "  the database defaults to $TINYFLEET_PG_URI\n";
  return 2;
}

int report(const Error& e) {
  std::cerr << "tinyfleet-db: " << to_string(e.code) << ": " << e.message << "\n";
  return 1;
}

int run_migrate(Database& db) {
  auto applied = tinyfleet::storage::migrate(db);
  if (!applied) return report(applied.error());
  std::cout << "migrations applied: " << *applied << " (of "
            << tinyfleet::storage::builtin_migrations().size() << " known)\n";
  return 0;
}

int run_status(Database& db) {
  auto lines = db.transact([](pqxx::work& w) {
    std::vector<std::string> out;
    for (const auto& row : w.exec("SELECT version, name, applied_at::text FROM schema_migrations "
                                  "ORDER BY version")) {
      out.push_back("migration " + row[0].as<std::string>() + " " + row[1].as<std::string>() +
                    " applied " + row[2].as<std::string>());
    }
    // Row counts of the ordinary and partitioned tables (not of each partition).
    for (const auto& row :
         w.exec("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
                "ORDER BY c.relname")) {
      const auto table = row[0].as<std::string>();
      const auto count = w.exec1("SELECT count(*) FROM " + w.quote_name(table))[0].as<long>();
      std::ostringstream line;
      line << "table " << table << std::string(table.size() < 20 ? 20 - table.size() : 1, ' ')
           << count << " rows";
      out.push_back(line.str());
    }
    return out;
  });
  if (!lines) return report(lines.error());
  for (const auto& line : *lines) std::cout << line << "\n";
  return 0;
}

int put_blobs(Database& db, const std::vector<std::string>& files) {
  tinyfleet::storage::PgBlobStore blobs(db);
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::cerr << "tinyfleet-db: cannot read " << path << "\n";
      return 1;
    }
    const std::string bytes{std::istreambuf_iterator<char>(in), {}};
    const auto sha = tinyfleet::storage::sha256_hex(bytes);
    auto existed = blobs.contains(sha);
    if (!existed) return report(existed.error());
    auto stored = blobs.put(bytes);
    if (!stored) return report(stored.error());
    std::cout << *stored << "  " << bytes.size() << " bytes  "
              << (*existed ? "already stored" : "stored") << "  " << path << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string uri = std::getenv("TINYFLEET_PG_URI") ? std::getenv("TINYFLEET_PG_URI") : "";
  if (args.size() >= 2 && args[0] == "--uri") {
    uri = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.empty()) return usage();
  if (uri.empty()) {
    std::cerr << "tinyfleet-db: no database: pass --uri or set TINYFLEET_PG_URI\n";
    return 2;
  }
  auto db = Database::open({uri, 1, 5});
  if (!db) return report(db.error());
  const auto& command = args[0];
  if (command == "migrate" && args.size() == 1) return run_migrate(**db);
  if (command == "status" && args.size() == 1) return run_status(**db);
  if (command == "put-blob" && args.size() >= 2) {
    return put_blobs(**db, std::vector<std::string>(args.begin() + 1, args.end()));
  }
  return usage();
}
