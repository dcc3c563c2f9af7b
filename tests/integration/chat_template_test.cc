// Oracle test of the chat-template renderer: every template in llama.cpp's
// models/templates (and our ChatML) rendered with several message sets by
// engine::chat::ChatTemplate and by python3-jinja2 configured as Hugging Face's
// apply_chat_template (tests/oracle/render_chat_template.py) must give byte-identical
// text, or both fail.

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/strings.h"
#include "common/subprocess.h"
#include "engine/chat/chat_template.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/llama_cpp_source.h"
#include "testing/engine_process.h"

namespace triplane::engine::chat {
namespace {

using nlohmann::json;

// Templates that must render like jinja2 with every message set.
const std::set<std::string> kMustPass = {
    "meta-llama-Llama-3.1-8B-Instruct",
    "meta-llama-Llama-3.2-3B-Instruct",
    "Qwen-Qwen2.5-7B-Instruct",
    "Qwen-Qwen3-0.6B",
    "mistralai-Mistral-Nemo-Instruct-2407",
    "Mistral-Small-3.2-24B-Instruct-2506",
    "microsoft-Phi-3.5-mini-instruct",
    "google-gemma-2-2b-it",
    "chatml",
};

// Templates known not to render like jinja2 yet, with the reason. The test fails when
// one of these starts to pass (remove it here) or when any other template fails.
const std::map<std::string, std::string> kKnownFailures = {
    {"llama-cpp-deepseek-r1",
     "with tools: jinja2's map() returns a generator, which tojson cannot serialise (a TypeError "
     "there); our filters return lists, so we render"},
    {"meetkai-functionary-medium-v3.1",
     "with tools: `'text'|safe + str` makes a Markup that HTML-escapes the str in jinja2 "
     "(&#34; for quotes); we have no Markup strings"},
};

// 2024-07-26 12:00:00 UTC, given to strftime_now() on both sides.
constexpr int64_t kFixedNow = 1721995200;

struct Case {
  std::string name;
  json messages;
  bool add_generation_prompt;
  json extra_context = json::object();
};

std::vector<Case> Cases() {
  const json system_user = json::array({
      {{"role", "system"}, {"content", "You are a helpful assistant."}},
      {{"role", "user"}, {"content", "Hello! How are you?"}},
  });
  const json multi_turn = json::array({
      {{"role", "user"}, {"content", "Hi there"}},
      {{"role", "assistant"}, {"content", "Hello! How can I help you today?"}},
      {{"role", "user"}, {"content", "What is 2+2?"}},
  });
  const json assistant_last = json::array({
      {{"role", "user"}, {"content", "Tell me a joke."}},
      {{"role", "assistant"}, {"content", "Why did the chicken cross the road?"}},
  });
  const json unicode = json::array({
      {{"role", "system"}, {"content", "你是一个乐于助人的助手。"}},
      {{"role", "user"}, {"content", "什么是量子计算? 🤔🚀 Ünïcödé \"quotes\" and \\ backslash"}},
  });
  // Two user turns in a row: several templates raise_exception on this.
  const json not_alternating = json::array({
      {{"role", "user"}, {"content", "first"}},
      {{"role", "user"}, {"content", "second"}},
  });
  const json tools = json::array({
      {{"type", "function"},
       {"function",
        {{"name", "get_weather"},
         {"description", "Get the current weather in a city."},
         {"parameters",
          {{"type", "object"},
           {"properties", {{"city", {{"type", "string"}, {"description", "City name"}}}}},
           {"required", json::array({"city"})}}}}}},
  });
  const json tool_call_turns = json::array({
      {{"role", "user"}, {"content", "What's the weather in Paris?"}},
      {{"role", "assistant"},
       {"content", ""},
       {"tool_calls", json::array({{{"id", "call_1"},
                                    {"type", "function"},
                                    {"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}}}}})}},
      {{"role", "tool"}, {"tool_call_id", "call_1"}, {"name", "get_weather"}, {"content", "22°C and sunny"}},
  });
  std::vector<Case> cases;
  for (bool gen : {true, false}) {
    const std::string suffix = gen ? "+gen" : "";
    cases.push_back({"system_user" + suffix, system_user, gen});
    cases.push_back({"multi_turn" + suffix, multi_turn, gen});
    cases.push_back({"unicode" + suffix, unicode, gen});
  }
  cases.push_back({"assistant_last", assistant_last, false});
  cases.push_back({"not_alternating", not_alternating, true});
  cases.push_back({"tools", system_user, true, {{"tools", tools}}});
  cases.push_back({"tool_call", tool_call_turns, true, {{"tools", tools}}});
  cases.push_back({"no_thinking", multi_turn, true, {{"enable_thinking", false}}});
  return cases;
}

using testing::ReadWholeFile;

struct Outcome {
  bool ok = false;
  std::string text;  // rendered text, or the error
};

TEST(ChatTemplateOracleTest, RendersLikeJinja2) {
  const std::filesystem::path dir = testing::LlamaCppSourceDir() / "models" / "templates";
  ASSERT_TRUE(std::filesystem::is_directory(dir))
      << dir << " is missing. Run scripts/setup, then "
      << "`export TRIPLANE_LLAMA_CPP_SOURCE=$(scripts/llama-cpp-source)`.";
  std::vector<std::pair<std::string, std::string>> templates;  // name, source
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".jinja") continue;
    templates.emplace_back(entry.path().stem().string(), ReadWholeFile(entry.path()));
  }
  std::sort(templates.begin(), templates.end());
  templates.emplace_back("chatml", std::string(ChatTemplate::ChatMlSource()));
  ASSERT_GE(templates.size(), 10u);
  for (const std::string& name : kMustPass) {
    ASSERT_TRUE(std::any_of(templates.begin(), templates.end(), [&](const auto& t) { return t.first == name; }))
        << "template " << name << " is missing from " << dir;
  }

  const std::vector<Case> cases = Cases();
  const std::string bos = "<s>";
  const std::string eos = "</s>";

  // One python run renders every template and case.
  json request = {{"now", kFixedNow}, {"jobs", json::array()}};
  for (const auto& [name, source] : templates) {
    json job = {{"template", source}, {"bos_token", bos}, {"eos_token", eos}, {"cases", json::array()}};
    for (const Case& c : cases) {
      job["cases"].push_back({{"messages", c.messages},
                              {"add_generation_prompt", c.add_generation_prompt},
                              {"extra_context", c.extra_context}});
    }
    request["jobs"].push_back(std::move(job));
  }
  const std::filesystem::path work =
      std::filesystem::temp_directory_path() / ("chat_template_oracle_" + std::to_string(::getpid()));
  std::filesystem::create_directories(work);
  const std::filesystem::path request_path = work / "request.json";
  const std::filesystem::path response_path = work / "response.json";
  const std::filesystem::path log_path = work / "python.log";
  std::ofstream(request_path, std::ios::binary) << request.dump();

  const std::string script = std::string(TRIPLANE_SOURCE_DIR) + "/tests/oracle/render_chat_template.py";
  auto process = common::Subprocess::Spawn({.argv = {"/usr/bin/python3", script, request_path.string(),
                                                     response_path.string()},
                                            .stdout_path = log_path.string(),
                                            .stderr_path = log_path.string()});
  ASSERT_TRUE(process.ok()) << process.status();
  const std::optional<common::ExitStatus> exit = (*process)->Wait(std::chrono::minutes(5));
  ASSERT_TRUE(exit.has_value()) << "python oracle timed out";
  ASSERT_TRUE(exit->ok()) << "python oracle failed (" << exit->ToString() << "); is python3-jinja2 installed "
                          << "(scripts/setup)?\n"
                          << ReadWholeFile(log_path);
  const json response = json::parse(ReadWholeFile(response_path));
  ASSERT_EQ(response.size(), templates.size());
  std::filesystem::remove_all(work);

  std::vector<std::string> passing;
  std::vector<std::string> failing;
  for (size_t t = 0; t < templates.size(); ++t) {
    const auto& [name, source] = templates[t];
    std::vector<std::string> mismatches;
    absl::StatusOr<ChatTemplate> tmpl = ChatTemplate::Create(source, bos, eos);
    for (size_t i = 0; i < cases.size(); ++i) {
      const json& expected = response[t][i];
      Outcome ours;
      if (tmpl.ok()) {
        ChatTemplateOptions options{.add_generation_prompt = cases[i].add_generation_prompt,
                                    .extra_context = cases[i].extra_context,
                                    .now = std::chrono::system_clock::from_time_t(kFixedNow)};
        absl::StatusOr<std::string> text = tmpl->Render(cases[i].messages, options);
        ours = text.ok() ? Outcome{true, *text} : Outcome{false, std::string(common::ToStd(text.status().message()))};
      } else {
        ours = {false, std::string(common::ToStd(tmpl.status().message()))};
      }
      const bool python_ok = expected["ok"].get<bool>();
      if (python_ok && ours.ok && expected["text"].get<std::string>() == ours.text) continue;
      if (!python_ok && !ours.ok) continue;
      std::string detail = fmt::format("  case {}: ", cases[i].name);
      if (python_ok && ours.ok) {
        detail += fmt::format("text differs\n    jinja2: {}\n    ours:   {}", json(expected["text"]).dump(),
                              json(ours.text).dump());
      } else if (python_ok) {
        detail += fmt::format("we failed: {}", ours.text);
      } else {
        detail += fmt::format("jinja2 failed ({}) but we rendered {}", expected["error"].get<std::string>(),
                              json(ours.text).dump());
      }
      mismatches.push_back(std::move(detail));
    }
    const bool known = kKnownFailures.count(name) > 0;
    if (mismatches.empty()) {
      passing.push_back(name);
      EXPECT_FALSE(known) << name << " now renders like jinja2: remove it from kKnownFailures";
      continue;
    }
    failing.push_back(name);
    std::string report = fmt::format("{} differs from jinja2:\n", name);
    for (const std::string& m : mismatches) report += m + "\n";
    if (kMustPass.count(name) > 0 || !known) {
      ADD_FAILURE() << report;
    } else {
      std::cout << "[ known   ] " << name << ": " << kKnownFailures.at(name) << "\n";
    }
  }
  std::cout << "[ oracle  ] " << passing.size() << " of " << templates.size()
            << " templates render like jinja2 with all " << cases.size() << " message sets\n";
  for (const std::string& name : failing) std::cout << "[ differs ] " << name << "\n";
}

}  // namespace
}  // namespace triplane::engine::chat
