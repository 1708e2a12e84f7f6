#include "command_line.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <sstream>
#include <utility>
#include <vector>

#include "command_table.h"

#ifndef TINYFLEET_VERSION
#define TINYFLEET_VERSION "unknown"
#endif

namespace tinyfleet::fleetctl {

namespace {

const char* kFooter = R"(
Connection: --endpoint, --token, --ca-file, or $FLEETCTL_ENDPOINT / $FLEETCTL_TOKEN /
$FLEETCTL_CA_FILE, or the config file ($FLEETCTL_CONFIG, default ~/.config/tinyfleet/fleetctl.json):
  {"endpoint": "127.0.0.1:7443", "token": "...", "ca_file": "ca.pem"}

Exit codes: 0 ok, 1 failed (compile refused, rollout rolled back), 2 usage, 3 not found,
4 rejected (invalid or not allowed now), 5 fleetd unreachable, 6 not authorized,
7 rollout paused.
'fleetctl GROUP VERB --help' describes one command.)";

const CLI::Validator& number_check() {
  static const CLI::Validator check(
      [](std::string& s) {
        char* end = nullptr;
        std::strtod(s.c_str(), &end);
        return s.empty() || *end != '\0' ? "takes a number, not '" + s + "'" : std::string();
      },
      "NUMBER");
  return check;
}

// The options and positionals CLI11 fills, kept to copy into Args after parsing.
struct Bound {
  std::deque<std::string> values;  // stable addresses for CLI11
  std::vector<std::pair<CLI::Option*, const OptionSpec*>> options;
  std::vector<CLI::Option*> positionals;  // in order
};

void add_options(CLI::App* app, const std::vector<OptionSpec>& specs, Bound* b) {
  for (const auto& o : specs) {
    const std::string flag = std::string("--") + o.name;
    CLI::Option* opt = nullptr;
    if (o.kind == OptionSpec::kFlag) {
      opt = app->add_flag(flag, o.help);
    } else {
      opt = app->add_option(flag, b->values.emplace_back(), o.help);
      if (o.kind == OptionSpec::kNumber) opt->check(number_check());
    }
    b->options.emplace_back(opt, &o);
  }
}

void add_positionals(CLI::App* app, const std::string& spec, Bound* b) {
  std::istringstream in(spec);
  for (std::string name; in >> name;) {
    const bool optional = name.front() == '[';
    if (optional) name = name.substr(1, name.size() - 2);
    CLI::Option* opt = app->add_option(name, b->values.emplace_back());
    if (!optional) opt->required();
    if (name == "N") opt->check(number_check());
    b->positionals.push_back(opt);
  }
}

// The CLI11 tree of command_table(): app -> group -> verb.
void build(CLI::App& app, Bound* b) {
  app.set_version_flag("--version", TINYFLEET_VERSION);
  app.footer(kFooter);
  app.require_subcommand(1);
  add_options(&app, global_options(), b);
  for (const auto& g : command_table()) {
    CLI::App* group = app.add_subcommand(g.name, g.summary);
    group->fallthrough();
    if (std::string(g.name) == "rollouts") group->alias("rollout");
    if (g.verbs.size() == 1 && *g.verbs[0].name == '\0') {
      add_options(group, g.verbs[0].options, b);
      continue;
    }
    group->require_subcommand(g.default_verb ? 0 : 1, 1);
    for (const auto& v : g.verbs) {
      CLI::App* verb = group->add_subcommand(v.name, v.summary);
      verb->fallthrough();
      add_positionals(verb, v.positionals, b);
      add_options(verb, v.options, b);
    }
  }
}

// The first word that is not an option (or a global option's value) must name a group;
// CLI11 alone would only say that a subcommand is required.
std::string unknown_group(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("-", 0) == 0) {
      for (const auto& o : global_options()) {
        if (a == std::string("--") + o.name && o.kind != OptionSpec::kFlag) ++i;  // its value
      }
      continue;
    }
    if (a == "rollout") return "";
    for (const auto& g : command_table()) {
      if (a == g.name) return "";
    }
    return a;
  }
  return "";
}

void collect(CLI::App& app, const Bound& b, Args* out) {
  CLI::App* group = app.get_subcommands().front();
  out->positional.push_back(group->get_name());
  const GroupSpec* spec = nullptr;
  for (const auto& g : command_table()) {
    if (g.name == group->get_name()) spec = &g;
  }
  if (!group->get_subcommands().empty()) {
    out->positional.push_back(group->get_subcommands().front()->get_name());
  } else if (spec && spec->default_verb && *spec->default_verb) {
    out->positional.push_back(spec->default_verb);
  }
  for (const CLI::Option* p : b.positionals) {
    if (p->count() > 0) out->positional.push_back(p->as<std::string>());
  }
  for (const auto& [opt, o] : b.options) {
    if (opt->count() == 0) continue;
    out->options[o->name] = o->kind == OptionSpec::kFlag ? "" : opt->as<std::string>();
  }
}

}  // namespace

int parse_command_line(int argc, char** argv, Args* out) {
  CLI::App app{"fleetctl: operate a tinyfleet fleet", "fleetctl"};
  Bound bound;
  build(app, &bound);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(app.help().c_str(), stderr);
    return kUsage;
  }
  if (args[0] == "help") {  // fleetctl help [GROUP [VERB]]
    args.erase(args.begin());
    args.push_back("--help");
  }
  if (const std::string bad = unknown_group(args); !bad.empty()) {
    std::fprintf(stderr, "fleetctl: unknown command '%s' (see 'fleetctl help')\n", bad.c_str());
    return kUsage;
  }
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 pops the back
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "fleetctl: %s (see 'fleetctl help')\n", e.what());
    return kUsage;
  }
  collect(app, bound, out);
  return -1;
}

std::string bash_completion() {
  std::string groups, verbs, opts;
  std::string globals;
  for (const auto& o : global_options()) globals += std::string(" --") + o.name;
  auto option_words = [](const std::vector<OptionSpec>& specs) {
    std::string w;
    for (const auto& o : specs) w += std::string(" --") + o.name;
    return w;
  };
  for (const auto& g : command_table()) {
    groups += std::string(" ") + g.name;
    std::string names;
    for (const auto& v : g.verbs) {
      if (*v.name == '\0') {
        opts += std::string("    \"") + g.name + " \"*) o=\"" + option_words(v.options) + "\";;\n";
        continue;
      }
      names += std::string(" ") + v.name;
      opts += std::string("    \"") + g.name + " " + v.name + "\") o=\"" + option_words(v.options) +
              "\";;\n";
    }
    if (!names.empty()) verbs += std::string("    ") + g.name + ") v=\"" + names + "\";;\n";
  }
  return "# bash completion for fleetctl (generated by 'fleetctl completion bash')\n"
         "_fleetctl() {\n"
         "  local cur=${COMP_WORDS[COMP_CWORD]} g=${COMP_WORDS[1]} v= o=\n"
         "  COMPREPLY=()\n"
         "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
         "    COMPREPLY=($(compgen -W \"" +
         groups +
         " help --version --help\" -- \"$cur\"))\n"
         "    return\n"
         "  fi\n"
         "  case \"$g\" in\n" +
         verbs +
         "  esac\n"
         "  if [ \"$COMP_CWORD\" -eq 2 ] && [ -n \"$v\" ] && [[ \"$cur\" != -* ]]; then\n"
         "    COMPREPLY=($(compgen -W \"$v\" -- \"$cur\"))\n"
         "    return\n"
         "  fi\n"
         "  case \"$g ${COMP_WORDS[2]}\" in\n" +
         opts +
         "  esac\n"
         "  if [[ \"$cur\" == -* ]]; then\n"
         "    COMPREPLY=($(compgen -W \"$o" +
         globals +
         " --help\" -- \"$cur\"))\n"
         "  fi\n"
         "}\n"
         "complete -o default -F _fleetctl fleetctl\n";
}

}  // namespace tinyfleet::fleetctl
