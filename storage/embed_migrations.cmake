# Writes OUT: a C++ file defining builtin_migrations() from the SQL FILES.
set(body "")
string(REPLACE "|" ";" FILES "${FILES}")
foreach(f ${FILES})
  get_filename_component(base ${f} NAME_WE)
  string(REGEX MATCH "^([0-9]+)_(.*)$" _ ${base})
  math(EXPR version "${CMAKE_MATCH_1}")
  set(name ${CMAKE_MATCH_2})
  file(READ ${f} sql)
  string(APPEND body "      {${version}, \"${name}\", R\"tfsql(${sql})tfsql\"},\n")
endforeach()
file(WRITE ${OUT} "// Generated from storage/migrations/*.sql; do not edit.
#include \"tinyfleet/storage/migrations.h\"

namespace tinyfleet::storage {

const std::vector<Migration>& builtin_migrations() {
  static const std::vector<Migration> kMigrations = {
${body}  };
  return kMigrations;
}

}  // namespace tinyfleet::storage
")
