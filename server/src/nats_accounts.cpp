#include "tinyfleet/server/nats_accounts.h"

#include <cctype>
#include <optional>

#include "tinyfleet/server/nats_subject.h"

namespace tinyfleet::server {

namespace {
using storage::Error;
using storage::ErrorCode;

Error bad(const std::string& what) { return Error{ErrorCode::kInvalidArgument, what}; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool is_comment(std::string_view t) {
  return t.empty() || t[0] == '#' || (t.size() >= 2 && t[0] == '/' && t[1] == '/');
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A cursor over one entry line (NATS configuration syntax, the part entries use).
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  size_t pos = 0;
  bool done() const { return pos >= s_.size(); }
  char peek() const { return s_[pos]; }
  std::string_view rest() const { return s_.substr(pos); }
  bool skip_blank() {  // true if it skipped anything
    const size_t start = pos;
    while (!done() && (peek() == ' ' || peek() == '\t')) ++pos;
    return pos != start;
  }
  std::optional<Error> quoted(std::string* out, bool* escaped);
  std::optional<Error> key(std::string* out);
  std::optional<Error> value(std::string* out, bool* scalar);
  std::optional<Error> block();

 private:
  std::string col() const { return "column " + std::to_string(pos + 1); }
  std::string_view s_;
};

std::optional<Error> Scanner::quoted(std::string* out, bool* escaped) {
  const char quote = peek();
  const size_t start = ++pos;
  for (; !done() && peek() != quote; ++pos) {
    if (quote == '"' && peek() == '\\') {
      *escaped = true;
      ++pos;  // the escaped character
      if (done()) break;
    }
  }
  if (done()) return bad("a string is not closed on this line");
  *out = std::string(s_.substr(start, pos - start));
  ++pos;
  return std::nullopt;
}

std::optional<Error> Scanner::key(std::string* out) {
  if (!done() && (peek() == '"' || peek() == '\'')) {
    bool escaped = false;
    return quoted(out, &escaped);
  }
  const size_t start = pos;
  while (!done() &&
         (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_' || peek() == '-')) {
    ++pos;
  }
  if (pos == start) return bad("expected a key at " + col());
  *out = std::string(s_.substr(start, pos - start));
  return std::nullopt;
}

// A `{...}` or `[...]` value, with strings and nesting, closed on this line.
std::optional<Error> Scanner::block() {
  std::string closers;
  do {
    const char c = peek();
    if (c == '{' || c == '[') {
      if (closers.size() == kNatsAccountsMaxDepth) {
        return bad("blocks nested deeper than " + std::to_string(kNatsAccountsMaxDepth));
      }
      closers.push_back(c == '{' ? '}' : ']');
      ++pos;
    } else if (c == '}' || c == ']') {
      if (c != closers.back()) return bad("'" + std::string(1, c) + "' does not match at " + col());
      closers.pop_back();
      ++pos;
    } else if (c == '"' || c == '\'') {
      std::string ignored;
      bool escaped = false;
      if (auto e = quoted(&ignored, &escaped)) return e;
    } else {
      ++pos;
    }
  } while (!closers.empty() && !done());
  if (!closers.empty()) return bad("a block is not closed on this line");
  return std::nullopt;
}

std::optional<Error> Scanner::value(std::string* out, bool* scalar) {
  if (done()) return bad("expected a value at " + col());
  *scalar = true;
  if (peek() == '"' || peek() == '\'') {
    bool escaped = false;
    if (auto e = quoted(out, &escaped)) return e;
    if (escaped) *scalar = false;  // not a plain name
    return std::nullopt;
  }
  if (peek() == '{' || peek() == '[') {
    *scalar = false;
    return block();
  }
  const size_t start = pos;
  while (!done() && std::string_view(" \t,}]#").find(peek()) == std::string_view::npos) ++pos;
  if (pos == start) return bad("expected a value at " + col());
  *out = std::string(s_.substr(start, pos - start));
  return std::nullopt;
}

bool users_open(std::string_view t) {
  if (t.size() < 5 || lower(std::string(t.substr(0, 5))) != "users") return false;
  Scanner s(t.substr(5));
  const bool blank = s.skip_blank();
  if (!s.done() && (s.peek() == ':' || s.peek() == '=')) {
    ++s.pos;
    s.skip_blank();
  } else if (!blank) {
    return false;
  }
  if (s.done() || s.peek() != '[') return false;
  ++s.pos;
  return is_comment(trim(s.rest()));
}

bool closes(std::string_view t) {
  if (t.empty() || t[0] != ']') return false;
  t = trim(t.substr(1));
  if (!t.empty() && t[0] == ',') t = trim(t.substr(1));
  return is_comment(t);
}
}  // namespace

std::string nats_account_entry(const std::string& user, const std::string& fleet,
                               const std::string& hash) {
  // The topics of update/topics.h, as nats-server's MQTT listener names them.
  const std::string prefix = "tinyfleet/v1/" + fleet + "/" + user + "/";
  const auto subject = [&](const char* kind) {
    return "\"" + mqtt_filter_to_subject(prefix + kind) + "\"";
  };
  return "  { user: \"" + user + "\", password: \"" + hash + "\", permissions: { publish: [" +
         subject("chunk/req") + ", " + subject("status") + ", " + subject("telemetry") + ", " +
         subject("presence") + ", \"$MQTT.>\"], subscribe: [" + subject("offer") + ", " +
         subject("chunk") + ", " + subject("presence") + ", \"$MQTT.>\"] } }";
}

storage::Expected<std::string> nats_entry_user(std::string_view line) {
  if (line.size() > kNatsAccountsMaxLine) {
    return bad("longer than " + std::to_string(kNatsAccountsMaxLine) + " bytes");
  }
  const std::string_view t = trim(line);
  if (t.empty() || t[0] != '{') return bad("an entry starts with '{'");
  Scanner s(t);
  s.pos = 1;
  std::optional<std::string> user;
  for (;;) {
    while (!s.done() && (s.peek() == ' ' || s.peek() == '\t' || s.peek() == ',')) ++s.pos;
    if (s.done()) return bad("the entry is not closed on this line (one entry, one line)");
    if (s.peek() == '}') break;
    std::string key, value;
    if (auto e = s.key(&key)) return *e;
    const bool blank = s.skip_blank();
    if (!s.done() && (s.peek() == ':' || s.peek() == '=')) {
      ++s.pos;
      s.skip_blank();
    } else if (!blank) {
      return bad("expected ':' after '" + key + "'");
    }
    bool scalar = false;
    if (auto e = s.value(&value, &scalar)) return *e;
    const std::string k = lower(key);
    if (k != "user" && k != "username") continue;
    if (user) return bad("the entry names its user twice");
    if (!scalar || value.empty()) return bad("the entry's user is not a plain name");
    user = std::move(value);
  }
  ++s.pos;
  std::string_view rest = trim(s.rest());
  if (!rest.empty() && rest[0] == ',') rest = trim(rest.substr(1));
  if (!is_comment(rest)) return bad("unexpected '" + std::string(rest.substr(0, 20)) + "'");
  if (!user) return bad("the entry has no user");
  return *user;
}

storage::Expected<NatsAccountsIndex> parse_nats_accounts(const std::vector<std::string>& lines) {
  enum class At { kBefore, kInside, kAfter } at = At::kBefore;
  NatsAccountsIndex index;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string where = "line " + std::to_string(i + 1) + ": ";
    if (lines[i].size() > kNatsAccountsMaxLine) {
      return bad(where + "longer than " + std::to_string(kNatsAccountsMaxLine) + " bytes");
    }
    const std::string_view t = trim(lines[i]);
    if (is_comment(t)) continue;
    if (at == At::kBefore) {
      if (!users_open(t)) return bad(where + "expected 'users = [' before anything else");
      at = At::kInside;
    } else if (at == At::kAfter) {
      return bad(where + "only comments may follow the closing ']'");
    } else if (closes(t)) {
      index.close = i;
      at = At::kAfter;
    } else if (t[0] == '{') {
      auto user = nats_entry_user(t);
      if (!user) return bad(where + user.error().message);
      const auto [it, fresh] = index.users.emplace(*user, i);
      if (!fresh) {
        return bad(where + "user '" + *user + "' is already on line " +
                   std::to_string(it->second + 1));
      }
    } else {
      return bad(where + "expected an entry '{ user: NAME, ... }' on one line, or ']'");
    }
  }
  if (at == At::kBefore) return bad("no 'users = [' line (expected: 'users = [', entries, ']')");
  if (at == At::kInside) return bad("no closing ']' after the entries");
  return index;
}

}  // namespace tinyfleet::server
