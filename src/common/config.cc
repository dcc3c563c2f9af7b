#include "common/config.h"

#include <cctype>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace triplane::common {
namespace {

constexpr std::string_view kConfigFlag = "--config";

// Joins the values of an array onto one string for Option::default_val, which takes a
// single string; the option splits it again at this character.
constexpr char kArrayDelimiter = '\x1f';  // ASCII unit separator: never in a value

// Options that describe the invocation itself and never come from the environment or
// a config file.
bool IsMetaOption(CLI::App& app, const CLI::Option* option) {
  if (option == app.get_help_ptr() || option == app.get_help_all_ptr() ||
      option == app.get_version_ptr()) {
    return true;
  }
  for (const std::string& name : option->get_lnames()) {
    if (name == "config" || name == "help" || name == "help-all" || name == "version") return true;
  }
  return false;
}

// The named (not option-group) subcommand `name` of `app`, or null.
CLI::App* FindSubcommand(CLI::App& app, const std::string& name) {
  std::vector<CLI::App*> found = app.get_subcommands(
      [&name](CLI::App* sub) { return !sub->get_name().empty() && sub->check_name(name); });
  return found.empty() ? nullptr : found.front();
}

// The option of `app` (or its option groups) whose long name is `key`, where `_` may
// stand for `-`; null when there is none or it is a meta option.
CLI::Option* FindOption(CLI::App& app, const std::string& key) {
  if (key.empty() || key.front() == '-') return nullptr;
  CLI::Option* option = app.get_option_no_throw(absl::StrCat("--", key));
  if (option == nullptr) {
    std::string dashed = key;
    for (char& c : dashed) {
      if (c == '_') c = '-';
    }
    option = app.get_option_no_throw(absl::StrCat("--", dashed));
  }
  if (option == nullptr) return nullptr;
  // `app` may reach meta options of its own; those of option groups are never meta.
  return IsMetaOption(app, option) ? nullptr : option;
}

// Makes `values` the default of `option` and runs its callback now, so the bound
// variable holds the value and conversion or validation errors surface here.
// Throws CLI::Error (as CLI11 does) on a rejected value.
void SetDefault(CLI::Option& option, const std::vector<std::string>& values) {
  const bool run_callback_for_default = option.get_run_callback_for_default();
  option.run_callback_for_default(true);
  struct Restore {
    CLI::Option& option;
    bool run_callback_for_default;
    ~Restore() { option.run_callback_for_default(run_callback_for_default); }
  } restore{option, run_callback_for_default};

  if (values.size() == 1) {
    option.default_val(values.front());
  } else {
    const char delimiter = option.get_delimiter();
    option.delimiter(kArrayDelimiter);
    try {
      option.default_val(absl::StrJoin(values, std::string(1, kArrayDelimiter)));
    } catch (...) {
      option.delimiter(delimiter);
      throw;
    }
    option.delimiter(delimiter);
  }
  // The file has supplied the value, so a required option is satisfied.
  option.required(false);
}

}  // namespace

std::string EnvVarName(std::string_view long_option_name) {
  std::string name(kEnvPrefix);
  for (char c : long_option_name) {
    name.push_back(c == '-' || c == '.'
                       ? '_'
                       : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return name;
}

void BindEnvironment(CLI::App& app) {
  for (CLI::Option* option : app.get_options()) {
    if (IsMetaOption(app, option) || option->get_lnames().empty()) continue;
    if (!option->get_envname().empty()) continue;
    option->envname(EnvVarName(option->get_lnames().front()));
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    BindEnvironment(*sub);
  }
}

absl::Status ApplyConfigFile(CLI::App& app, const std::string& path) {
  const std::string where = absl::StrCat("config file ", path);
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": no such file"));
  }
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": not a regular file"));
  }

  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(path);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", e.what()));
  }

  for (const CLI::ConfigItem& item : items) {
    // The parser marks section boundaries with these names and no values.
    if ((item.name == "--" || item.name == "++") && item.inputs.empty()) continue;

    const std::string section =
        item.parents.empty() ? "" : absl::StrCat("[", absl::StrJoin(item.parents, "."), "] ");
    CLI::App* target = &app;
    for (const std::string& parent : item.parents) {
      target = FindSubcommand(*target, parent);
      if (target == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": unknown section [", absl::StrJoin(item.parents, "."), "]"));
      }
    }

    CLI::Option* option = FindOption(*target, item.name);
    if (option == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", section, item.name, ": unknown key"));
    }
    if (item.inputs.size() > 1 && option->get_items_expected_max() <= 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", section, item.name, ": expects one value, got ",
                       item.inputs.size(), " (quote a value with spaces or commas)"));
    }
    try {
      SetDefault(*option, item.inputs);
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", section, item.name, ": ", e.what()));
    }
  }
  return absl::OkStatus();
}

std::optional<std::string> FindConfigFile(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i] == nullptr ? std::string_view() : argv[i];
    if (arg == "--") break;
    if (arg == kConfigFlag) {
      if (i + 1 < argc && argv[i + 1] != nullptr) return std::string(argv[i + 1]);
      return std::nullopt;  // CLI11 reports the missing value when it parses
    }
    if (arg.size() > kConfigFlag.size() && arg.substr(0, kConfigFlag.size()) == kConfigFlag &&
        arg[kConfigFlag.size()] == '=') {
      return std::string(arg.substr(kConfigFlag.size() + 1));
    }
  }
  const char* env = std::getenv(kConfigEnvVar);
  if (env != nullptr && *env != '\0') return std::string(env);
  return std::nullopt;
}

}  // namespace triplane::common
