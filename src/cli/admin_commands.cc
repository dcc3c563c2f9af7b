// The admin subcommands: thin clients of the admin API (docs/api.md "Admin API").
//   triplane models add|pull|ls|inspect|rm     the model repository
//   triplane deploy | scale | undeploy | ps    deployments and their instances
//   triplane config ls|get|set|rm              the config center
//   triplane audit ls|verify                   the audit log
//   triplane keys create|ls|revoke, teams create|ls|rm
//   triplane usage [--by key|team|model|day] [--csv]   the usage ledger
//   triplane backends set|ls|rm                external OpenAI-compatible backends
//   triplane rollout NAME|promote|abort|status, rollback NAME, events NAME
// Tables for people, --json for scripts; errors are one line on stderr and exit code 1.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "absl/time/time.h"
#include "cli/admin_client.h"
#include "cli/commands.h"
#include "common/strings.h"
#include "fmt/format.h"

namespace triplane::cli {
namespace {

using common::HttpMethod;
using nlohmann::json;

// Runs the first parsed child of `parent`, or prints the parent's help.
Command ParentCommand(CLI::App* parent, std::vector<Command> children) {
  parent->require_subcommand(1);
  return {parent, [children = std::move(children)] {
            for (const Command& child : children) {
              if (child.app->parsed()) return child.run();
            }
            return 2;
          }};
}

// Every admin subcommand: its flags, and a body that gets a client and returns an exit code.
template <typename Body>
Command AdminCommand(CLI::App* app, std::shared_ptr<AdminFlags> flags, Body body) {
  AddAdminFlags(*app, *flags);
  std::string name = app->get_parent() != nullptr && app->get_parent()->get_parent() != nullptr
                         ? app->get_parent()->get_name() + " " + app->get_name()
                         : app->get_name();
  return {app, [flags, body, name] {
            AdminClient client(*flags);
            absl::StatusOr<int> code = body(client, *flags);
            return code.ok() ? *code : CommandFailed(name, code.status());
          }};
}

std::string ModelPath(std::string_view model) { return "/admin/v1/models/" + PathSegment(model); }

std::string VersionLine(const json& v) {
  const json& g = v["gguf"];
  return fmt::format("{}:{} ({} {}, {} parameters, {}, sha256 {})", Cell(v["model"]),
                     Cell(v["version"]), Cell(g["architecture"]), Cell(g["file_type"]),
                     HumanCount(g.value("parameter_count", int64_t{0})),
                     HumanBytes(v.value("size_bytes", int64_t{0})),
                     v.value("sha256", std::string()).substr(0, 12));
}

// ---- models ----------------------------------------------------------------------

Command ModelsAdd(CLI::App& parent) {
  struct Args { std::string name, path, version, description; };
  auto args = std::make_shared<Args>();
  CLI::App* app = parent.add_subcommand("add", "Register a local GGUF file as a new version of a model");
  app->add_option("NAME", args->name, "Model name (created when new)")->required();
  app->add_option("PATH", args->path, "GGUF file on the server's machine")->required();
  app->add_option("--version", args->version, "Version name (default: 1, 2, ...)");
  app->add_option("--description", args->description, "Description of a new model");
  return AdminCommand(app, std::make_shared<AdminFlags>(), [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    json body = {{"path", std::filesystem::absolute(args->path).string()}};
    if (!args->version.empty()) body["version"] = args->version;
    if (!args->description.empty()) body["description"] = args->description;
    absl::StatusOr<json> v = c.Call(HttpMethod::kPost, ModelPath(args->name) + "/versions", body);
    if (!v.ok()) return v.status();
    if (f.json) return PrintJson(*v);
    std::printf("added %s\n", VersionLine(*v).c_str());
    return 0;
  });
}

void DrawProgress(const json& job, bool final) {
  const int64_t done = job.value("bytes_done", int64_t{0});
  const int64_t total = job.value("bytes_total", int64_t{-1});
  std::string bar;
  if (total > 0) {
    const int filled = static_cast<int>(30 * std::min<int64_t>(done, total) / total);
    bar = fmt::format("[{}{}] {:3d}% {} / {}", std::string(filled, '#'), std::string(30 - filled, '.'),
                      static_cast<int>(100 * std::min<int64_t>(done, total) / total),
                      HumanBytes(done), HumanBytes(total));
  } else {
    bar = fmt::format("{} downloaded", HumanBytes(done));
  }
  std::fprintf(stderr, "\r%s%s", bar.c_str(), final ? "\n" : "");
  std::fflush(stderr);
}

Command ModelsPull(CLI::App& parent) {
  struct Args { std::string name, url, version, sha256, description; bool detach = false; };
  auto args = std::make_shared<Args>();
  CLI::App* app = parent.add_subcommand("pull", "Download a GGUF file (http(s):// or hf://ORG/REPO/FILE.gguf) as a new version");
  app->add_option("NAME", args->name, "Model name (created when new)")->required();
  app->add_option("URL", args->url, "http(s):// URL or hf://ORG/REPO/FILE.gguf[@REVISION]")->required();
  app->add_option("--version", args->version, "Version name (default: 1, 2, ...)");
  app->add_option("--sha256", args->sha256, "Expected SHA-256 of the file");
  app->add_option("--description", args->description, "Description of a new model");
  app->add_flag("--detach", args->detach, "Start the download and return (see GET /admin/v1/pulls)");
  return AdminCommand(app, std::make_shared<AdminFlags>(), [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    json body = {{"model", args->name}, {"url", args->url}};
    if (!args->version.empty()) body["version"] = args->version;
    if (!args->sha256.empty()) body["sha256"] = args->sha256;
    if (!args->description.empty()) body["description"] = args->description;
    absl::StatusOr<json> job = c.Call(HttpMethod::kPost, "/admin/v1/pulls", body);
    if (!job.ok()) return job.status();
    const std::string path = "/admin/v1/pulls/" + PathSegment((*job)["id"].get<std::string>());
    const bool tty = ::isatty(STDERR_FILENO) && !f.json;
    while (!args->detach) {
      const std::string state = (*job).value("state", "");
      if (state == "succeeded" || state == "failed" || state == "cancelled") break;
      if (tty) DrawProgress(*job, false);
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      job = c.Call(HttpMethod::kGet, path);
      if (!job.ok()) return job.status();
    }
    if (f.json) return PrintJson(*job);
    const std::string state = (*job).value("state", "");
    if (tty) DrawProgress(*job, true);
    if (args->detach) {
      std::printf("pull %s %s\n", Cell((*job)["id"]).c_str(), state.c_str());
      return 0;
    }
    if (state != "succeeded") {
      return absl::AbortedError(fmt::format("pull {}: {}", state, Cell((*job)["error"])));
    }
    std::printf("pulled %s\n", VersionLine((*job)["result"]).c_str());
    return 0;
  });
}

Command ModelsList(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand("ls", "List models and their versions");
  return AdminCommand(app, std::make_shared<AdminFlags>(), [](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> list = c.Call(HttpMethod::kGet, "/admin/v1/models");
    if (!list.ok()) return list.status();
    if (f.json) return PrintJson(*list);
    std::vector<std::vector<std::string>> rows;
    for (const json& m : (*list)["data"]) {
      if (m["versions"].empty()) rows.push_back({Cell(m["name"]), "-", "-", "-", "-", "-", "-", HumanAge(m["created_at"])});
      for (const json& v : m["versions"]) {
        const json& g = v["gguf"];
        rows.push_back({Cell(m["name"]), Cell(v["version"]), Cell(g["architecture"]), Cell(g["file_type"]),
                        HumanCount(g.value("parameter_count", int64_t{0})),
                        HumanBytes(v.value("size_bytes", int64_t{0})), Cell(g["context_length"]),
                        HumanAge(v["created_at"])});
      }
    }
    std::fputs(FormatTable({"MODEL", "VERSION", "ARCH", "TYPE", "PARAMS", "SIZE", "CONTEXT", "AGE"}, rows).c_str(), stdout);
    return 0;
  });
}

Command ModelsInspect(CLI::App& parent) {
  auto ref = std::make_shared<std::string>();
  CLI::App* app = parent.add_subcommand("inspect", "Show a model or one version in full");
  app->add_option("MODEL[:VERSION]", *ref, "Model, or model:version")->required();
  return AdminCommand(app, std::make_shared<AdminFlags>(), [ref](AdminClient& c, const AdminFlags&) -> absl::StatusOr<int> {
    auto [model, version] = SplitModelVersion(*ref);
    std::string path = ModelPath(model);
    if (!version.empty()) path += "/versions/" + PathSegment(version);
    absl::StatusOr<json> answer = c.Call(HttpMethod::kGet, path);
    if (!answer.ok()) return answer.status();
    return PrintJson(*answer);  // nested metadata reads best as JSON
  });
}

Command ModelsRemove(CLI::App& parent) {
  auto ref = std::make_shared<std::string>();
  CLI::App* app = parent.add_subcommand("rm", "Delete a model (all versions) or one version, unless a deployment uses it");
  app->add_option("MODEL[:VERSION]", *ref, "Model, or model:version")->required();
  return AdminCommand(app, std::make_shared<AdminFlags>(), [ref](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    auto [model, version] = SplitModelVersion(*ref);
    std::string path = ModelPath(model);
    if (!version.empty()) path += "/versions/" + PathSegment(version);
    absl::StatusOr<json> answer = c.Call(HttpMethod::kDelete, path);
    if (!answer.ok()) return answer.status();
    if (f.json) return PrintJson(*answer);
    std::printf("deleted %s\n", ref->c_str());
    return 0;
  });
}

// ---- deployments -----------------------------------------------------------------

std::string DeploymentPath(std::string_view name) { return "/admin/v1/deployments/" + PathSegment(name); }

// Polls until the deployment has converged (running with every replica ready), or
// fails for a failed deployment or at the deadline.
absl::StatusOr<json> WaitReady(AdminClient& c, const std::string& name, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (true) {
    absl::StatusOr<json> d = c.Call(HttpMethod::kGet, DeploymentPath(name));
    if (!d.ok()) return d.status();
    const json& status = (*d)["status"];
    // Running (every replica, and a canary's instances, ready) for the current spec.
    const bool converged = status.value("observed_generation", int64_t{0}) >= d->value("generation", int64_t{0}) &&
                           status.value("ready_replicas", 0) >= d->value("replicas", 0) &&
                           status.value("phase", "") == "running";
    // Instances of the old shape must be gone too (scale-down drains them).
    size_t live = 0;
    for (const json& i : (*d)["instances"]) live += i.value("state", "") != "stopped";
    if (converged && live == static_cast<size_t>(status.value("ready_replicas", 0))) return d;
    if (status.value("phase", "") == "failed") {
      return absl::FailedPreconditionError(fmt::format("deployment {} failed: {}", name, Cell(status["reason"])));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(fmt::format(
          "deployment {} not ready after {}s: {} ({}/{} ready)", name, timeout_s, Cell(status["phase"]),
          status.value("ready_replicas", 0), d->value("replicas", 0)) +
          (status.value("reason", "").empty() ? "" : ": " + status.value("reason", "")));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

void PrintDeploymentLine(const json& d) {
  std::printf("deployment %s: %s:%s, %d/%d ready, %s%s\n", Cell(d["name"]).c_str(), Cell(d["model"]).c_str(),
              Cell(d["version"]).c_str(), d["status"].value("ready_replicas", 0), d.value("replicas", 0),
              Cell(d["status"]["phase"]).c_str(),
              d["status"].value("reason", "").empty() ? "" : (" (" + d["status"].value("reason", "") + ")").c_str());
}

struct WaitArgs {
  bool wait = false;
  double timeout_s = 300;
};

void AddWaitFlags(CLI::App* app, WaitArgs& wait) {
  app->add_flag("--wait", wait.wait, "Wait until every replica is ready (and surplus ones stopped)");
  app->add_option("--timeout", wait.timeout_s, "Seconds --wait waits")->capture_default_str();
}

absl::StatusOr<int> Finish(AdminClient& c, const AdminFlags& f, const WaitArgs& wait, json d) {
  if (wait.wait) {
    absl::StatusOr<json> ready = WaitReady(c, d["name"].get<std::string>(), wait.timeout_s);
    if (!ready.ok()) return ready.status();
    d = *ready;
  }
  if (f.json) return PrintJson(d);
  PrintDeploymentLine(d);
  return 0;
}

Command Deploy(CLI::App& root) {
  struct Args {
    std::string name, model;
    int32_t replicas = 1;
    int32_t threads = 0, ctx = 0, max_batch_tokens = 0;
    int64_t kv_memory = 0;
    std::string kv_type;
    WaitArgs wait;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("deploy", "Create a deployment of a model version, or change an existing one");
  app->add_option("NAME", args->name, "Deployment name")->required();
  app->add_option("--model", args->model, "MODEL or MODEL:VERSION (default version: the newest)")->required();
  CLI::Option* replicas = app->add_option("--replicas", args->replicas, "Engine instances")->check(CLI::Range(0, 1024))->capture_default_str();
  app->add_option("--threads", args->threads, "Compute threads per instance (0 = the server's default)")->check(CLI::Range(0, 1024));
  app->add_option("--ctx", args->ctx, "Context length per sequence (0 = the model's)")->check(CLI::Range(0, 1 << 20));
  app->add_option("--kv-memory", args->kv_memory, "KV cache bytes per instance, units allowed (0 = automatic)")->transform(CLI::AsSizeValue(false));
  app->add_option("--max-batch-tokens", args->max_batch_tokens, "Tokens per scheduler step (0 = default)")->check(CLI::Range(0, 1 << 20));
  app->add_option("--kv-type", args->kv_type, "KV cache entries of the engines: f16 or q8_0 (default: the engine's, f16)")->check(CLI::IsMember({"f16", "q8_0"}));
  AddWaitFlags(app, args->wait);
  return AdminCommand(app, std::make_shared<AdminFlags>(), [args, replicas](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    auto [model, version] = SplitModelVersion(args->model);
    json engine = json::object();
    if (args->threads > 0) engine["threads"] = args->threads;
    if (args->ctx > 0) engine["context_length"] = args->ctx;
    if (args->kv_memory > 0) engine["kv_memory_bytes"] = args->kv_memory;
    if (args->max_batch_tokens > 0) engine["max_batch_tokens"] = args->max_batch_tokens;
    if (!args->kv_type.empty()) engine["kv_type"] = args->kv_type;
    absl::StatusOr<json> existing = c.Call(HttpMethod::kGet, DeploymentPath(args->name));
    if (existing.ok()) {
      if ((*existing)["model"] != model) {
        return absl::FailedPreconditionError(fmt::format(
            "deployment {} serves model {}; delete it (triplane undeploy) to deploy another model",
            args->name, Cell((*existing)["model"])));
      }
      json patch = json::object();
      if (!version.empty()) patch["version"] = version;
      if (replicas->count() > 0) patch["replicas"] = args->replicas;
      if (!engine.empty()) patch["engine"] = engine;
      absl::StatusOr<json> d = c.Call(HttpMethod::kPatch, DeploymentPath(args->name), patch);
      if (!d.ok()) return d.status();
      return Finish(c, f, args->wait, *d);
    }
    if (!absl::IsNotFound(existing.status())) return existing.status();
    json body = {{"name", args->name}, {"model", model}, {"replicas", args->replicas}, {"engine", engine}};
    if (!version.empty()) body["version"] = version;
    absl::StatusOr<json> d = c.Call(HttpMethod::kPost, "/admin/v1/deployments", body);
    if (!d.ok()) return d.status();
    return Finish(c, f, args->wait, *d);
  });
}

Command Scale(CLI::App& root) {
  struct Args { std::string name; int32_t replicas = 0; WaitArgs wait; };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("scale", "Change a deployment's number of replicas");
  app->add_option("NAME", args->name, "Deployment name")->required();
  app->add_option("REPLICAS", args->replicas, "Engine instances")->required()->check(CLI::Range(0, 1024));
  AddWaitFlags(app, args->wait);
  return AdminCommand(app, std::make_shared<AdminFlags>(), [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> d = c.Call(HttpMethod::kPatch, DeploymentPath(args->name), json{{"replicas", args->replicas}});
    if (!d.ok()) return d.status();
    return Finish(c, f, args->wait, *d);
  });
}

Command Undeploy(CLI::App& root) {
  auto name = std::make_shared<std::string>();
  CLI::App* app = root.add_subcommand("undeploy", "Delete a deployment (its instances drain and stop)");
  app->add_option("NAME", *name, "Deployment name")->required();
  return AdminCommand(app, std::make_shared<AdminFlags>(), [name](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> answer = c.Call(HttpMethod::kDelete, DeploymentPath(*name));
    if (!answer.ok()) return answer.status();
    if (f.json) return PrintJson(*answer);
    std::printf("deleted deployment %s\n", name->c_str());
    return 0;
  });
}

Command Ps(CLI::App& root) {
  auto name = std::make_shared<std::string>();
  CLI::App* app = root.add_subcommand("ps", "List deployments and their engine instances");
  app->add_option("NAME", *name, "Only this deployment");
  return AdminCommand(app, std::make_shared<AdminFlags>(), [name](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> list = name->empty() ? c.Call(HttpMethod::kGet, "/admin/v1/deployments")
                                              : c.Call(HttpMethod::kGet, DeploymentPath(*name));
    if (!list.ok()) return list.status();
    if (f.json) return PrintJson(*list);
    const json deployments = name->empty() ? (*list)["data"] : json::array({*list});
    std::vector<std::vector<std::string>> rows, instances;
    for (const json& d : deployments) {
      const json& s = d["status"];
      rows.push_back({Cell(d["name"]), Cell(d["model"]) + ":" + Cell(d["version"]),
                      fmt::format("{}/{}", s.value("ready_replicas", 0), d.value("replicas", 0)),
                      AutoscaleSummary(d.value("autoscale", json())), Cell(s["phase"]), Cell(s["reason"]),
                      HumanAge(d["created_at"])});
      for (const json& i : d["instances"]) {
        instances.push_back({Cell(i["id"]), Cell(i["deployment"]), Cell(i["version"]), Cell(i["state"]),
                             Cell(i["url"]), Cell(i["pid"]), Cell(i["restarts"]), HumanAge(i["created_at"]),
                             Cell(i["last_error"])});
      }
    }
    std::fputs(FormatTable({"DEPLOYMENT", "MODEL", "READY", "AUTOSCALE", "PHASE", "REASON", "AGE"}, rows).c_str(), stdout);
    if (!instances.empty()) {
      std::fputs("\n", stdout);
      std::fputs(FormatTable({"INSTANCE", "DEPLOYMENT", "VERSION", "STATE", "URL", "PID", "RESTARTS", "AGE", "LAST ERROR"},
                             instances).c_str(), stdout);
    }
    return 0;
  });
}

// ---- config ------------------------------------------------------------------------

std::string ConfigPath(std::string_view key) { return "/admin/v1/config/" + PathSegment(key); }

Command Config(CLI::App& root) {
  CLI::App* parent = root.add_subcommand("config", "Read and change the config center's values");
  auto key = std::make_shared<std::string>();
  auto value = std::make_shared<std::string>();

  CLI::App* ls = parent->add_subcommand("ls", "List config entries");
  ls->add_option("PREFIX", *key, "Only keys starting with this");
  Command list = AdminCommand(ls, std::make_shared<AdminFlags>(), [key](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> all = c.Call(HttpMethod::kGet, "/admin/v1/config?prefix=" + PathSegment(*key));
    if (!all.ok()) return all.status();
    if (f.json) return PrintJson(*all);
    std::vector<std::vector<std::string>> rows;
    for (const json& e : (*all)["data"]) {
      rows.push_back({Cell(e["key"]), e["value"].dump(), Cell(e["revision"]), Cell(e["updated_by"]), HumanAge(e["updated_at"])});
    }
    std::printf("revision %s\n", Cell((*all)["revision"]).c_str());
    std::fputs(FormatTable({"KEY", "VALUE", "REVISION", "BY", "AGE"}, rows).c_str(), stdout);
    return 0;
  });

  CLI::App* get = parent->add_subcommand("get", "Print one value (as JSON)");
  get->add_option("KEY", *key, "Config key")->required();
  Command get_command = AdminCommand(get, std::make_shared<AdminFlags>(), [key](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> e = c.Call(HttpMethod::kGet, ConfigPath(*key));
    if (!e.ok()) return e.status();
    return PrintJson(f.json ? *e : (*e)["value"]);
  });

  CLI::App* set = parent->add_subcommand("set", "Set a value (JSON, or else taken as a string)");
  set->add_option("KEY", *key, "Config key")->required();
  set->add_option("VALUE", *value, "JSON value, e.g. 42, true, {\"rpm\": 60}, or plain text")->required();
  Command set_command = AdminCommand(set, std::make_shared<AdminFlags>(), [key, value](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    json parsed = json::parse(*value, nullptr, false);
    if (parsed.is_discarded()) parsed = *value;
    absl::StatusOr<json> e = c.Call(HttpMethod::kPut, ConfigPath(*key), json{{"value", parsed}});
    if (!e.ok()) return e.status();
    if (f.json) return PrintJson(*e);
    std::printf("%s = %s (revision %s)\n", key->c_str(), (*e)["value"].dump().c_str(), Cell((*e)["revision"]).c_str());
    return 0;
  });

  CLI::App* rm = parent->add_subcommand("rm", "Delete a key");
  rm->add_option("KEY", *key, "Config key")->required();
  Command rm_command = AdminCommand(rm, std::make_shared<AdminFlags>(), [key](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> answer = c.Call(HttpMethod::kDelete, ConfigPath(*key));
    if (!answer.ok()) return answer.status();
    if (f.json) return PrintJson(*answer);
    std::printf("deleted %s (revision %s)\n", key->c_str(), Cell((*answer)["revision"]).c_str());
    return 0;
  });
  return ParentCommand(parent, {list, get_command, set_command, rm_command});
}

// ---- audit -------------------------------------------------------------------------

Command Audit(CLI::App& root) {
  CLI::App* parent = root.add_subcommand("audit", "Read and verify the audit log");
  struct Args { int limit = 50; std::string actor, action, target; };
  auto args = std::make_shared<Args>();
  CLI::App* ls = parent->add_subcommand("ls", "Show the newest audit rows");
  ls->add_option("--limit", args->limit, "Rows to show")->check(CLI::Range(1, 10000))->capture_default_str();
  ls->add_option("--actor", args->actor, "Only this actor (key id, system, ...)");
  ls->add_option("--action", args->action, "Only this action (deployment.create, ...)");
  ls->add_option("--target", args->target, "Only this target (deployment/demo, ...)");
  Command list = AdminCommand(ls, std::make_shared<AdminFlags>(), [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    std::string query = fmt::format("/admin/v1/audit?order=desc&limit={}", args->limit);
    if (!args->actor.empty()) query += "&actor=" + PathSegment(args->actor);
    if (!args->action.empty()) query += "&action=" + PathSegment(args->action);
    if (!args->target.empty()) query += "&target=" + PathSegment(args->target);
    absl::StatusOr<json> rows = c.Call(HttpMethod::kGet, query);
    if (!rows.ok()) return rows.status();
    if (f.json) return PrintJson(*rows);
    std::vector<std::vector<std::string>> table;
    for (const json& r : (*rows)["data"]) {
      table.push_back({Cell(r["id"]), Cell(r["time"]), Cell(r["actor"]), Cell(r["action"]), Cell(r["target"])});
    }
    std::fputs(FormatTable({"ID", "TIME", "ACTOR", "ACTION", "TARGET"}, table).c_str(), stdout);
    return 0;
  });
  CLI::App* verify = parent->add_subcommand("verify", "Check the hash chain: exit 1 when a row was edited or deleted");
  Command verify_command = AdminCommand(verify, std::make_shared<AdminFlags>(), [](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> result = c.Call(HttpMethod::kGet, "/admin/v1/audit/verify");
    if (!result.ok()) return result.status();
    const bool ok = result->value("ok", false);
    if (f.json) {
      PrintJson(*result);
    } else if (ok) {
      std::printf("audit log intact: %s rows verified\n", Cell((*result)["rows_checked"]).c_str());
    } else {
      std::printf("audit log TAMPERED at row %s: %s\n", Cell((*result)["first_bad_id"]).c_str(),
                  Cell((*result)["problem"]).c_str());
    }
    return ok ? 0 : 1;
  });
  return ParentCommand(parent, {list, verify_command});
}

// ---- keys and teams ------------------------------------------------------------------

Command Keys(CLI::App& root) {
  CLI::App* parent = root.add_subcommand("keys", "Create, list and revoke API keys");
  struct Args { std::string name, role = "user", team, expires, id; std::vector<std::string> models; };
  auto args = std::make_shared<Args>();
  CLI::App* create = parent->add_subcommand("create", "Create a key; its secret is shown this once");
  create->add_option("NAME", args->name, "A label for people")->required();
  create->add_option("--role", args->role, "admin or user")->check(CLI::IsMember({"admin", "user"}))->capture_default_str();
  create->add_option("--team", args->team, "Team the key belongs to");
  create->add_option("--models", args->models, "Models the key may use (default: all)")->delimiter(',');
  create->add_option("--expires", args->expires, "Expiry time, RFC 3339 (2027-01-01T00:00:00Z)");
  Command create_command = AdminCommand(create, std::make_shared<AdminFlags>(), [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    json body = {{"name", args->name}, {"role", args->role}};
    if (!args->team.empty()) body["team"] = args->team;
    if (!args->models.empty()) body["allowed_models"] = args->models;
    if (!args->expires.empty()) body["expires_at"] = args->expires;
    absl::StatusOr<json> key = c.Call(HttpMethod::kPost, "/admin/v1/keys", body);
    if (!key.ok()) return key.status();
    if (f.json) return PrintJson(*key);
    std::printf("created key %s (%s); its secret, shown only now:\n%s\n", Cell((*key)["id"]).c_str(),
                Cell((*key)["role"]).c_str(), Cell((*key)["key"]).c_str());
    return 0;
  });
  CLI::App* ls = parent->add_subcommand("ls", "List keys (never their secrets)");
  Command list = AdminCommand(ls, std::make_shared<AdminFlags>(), [](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> keys = c.Call(HttpMethod::kGet, "/admin/v1/keys");
    if (!keys.ok()) return keys.status();
    if (f.json) return PrintJson(*keys);
    std::vector<std::vector<std::string>> rows;
    for (const json& k : (*keys)["data"]) {
      rows.push_back({Cell(k["id"]), Cell(k["name"]), Cell(k["role"]), Cell(k["team"]),
                      k["allowed_models"].empty() ? "*" : Cell(k["allowed_models"]), Cell(k["expires_at"]),
                      Cell(k["revoked_at"]), HumanAge(k["created_at"])});
    }
    std::fputs(FormatTable({"ID", "NAME", "ROLE", "TEAM", "MODELS", "EXPIRES", "REVOKED", "AGE"}, rows).c_str(), stdout);
    return 0;
  });
  CLI::App* revoke = parent->add_subcommand("revoke", "Revoke a key");
  revoke->add_option("ID", args->id, "Key id")->required();
  Command revoke_command = AdminCommand(revoke, std::make_shared<AdminFlags>(), [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> key = c.Call(HttpMethod::kDelete, "/admin/v1/keys/" + PathSegment(args->id));
    if (!key.ok()) return key.status();
    if (f.json) return PrintJson(*key);
    std::printf("revoked key %s\n", args->id.c_str());
    return 0;
  });
  return ParentCommand(parent, {create_command, list, revoke_command});
}

Command Teams(CLI::App& root) {
  CLI::App* parent = root.add_subcommand("teams", "Create, list and delete teams");
  struct Args { std::string name, description; };
  auto args = std::make_shared<Args>();
  CLI::App* create = parent->add_subcommand("create", "Create a team");
  create->add_option("NAME", args->name, "Team name")->required();
  create->add_option("--description", args->description, "Description");
  Command create_command = AdminCommand(create, std::make_shared<AdminFlags>(), [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> team = c.Call(HttpMethod::kPost, "/admin/v1/teams",
                                       json{{"name", args->name}, {"description", args->description}});
    if (!team.ok()) return team.status();
    if (f.json) return PrintJson(*team);
    std::printf("created team %s\n", args->name.c_str());
    return 0;
  });
  CLI::App* ls = parent->add_subcommand("ls", "List teams");
  Command list = AdminCommand(ls, std::make_shared<AdminFlags>(), [](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> teams = c.Call(HttpMethod::kGet, "/admin/v1/teams");
    if (!teams.ok()) return teams.status();
    if (f.json) return PrintJson(*teams);
    std::vector<std::vector<std::string>> rows;
    for (const json& t : (*teams)["data"]) rows.push_back({Cell(t["name"]), Cell(t["description"]), HumanAge(t["created_at"])});
    std::fputs(FormatTable({"TEAM", "DESCRIPTION", "AGE"}, rows).c_str(), stdout);
    return 0;
  });
  CLI::App* rm = parent->add_subcommand("rm", "Delete a team (no key may belong to it)");
  rm->add_option("NAME", args->name, "Team name")->required();
  Command rm_command = AdminCommand(rm, std::make_shared<AdminFlags>(), [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> answer = c.Call(HttpMethod::kDelete, "/admin/v1/teams/" + PathSegment(args->name));
    if (!answer.ok()) return answer.status();
    if (f.json) return PrintJson(*answer);
    std::printf("deleted team %s\n", args->name.c_str());
    return 0;
  });
  return ParentCommand(parent, {create_command, list, rm_command});
}

// ---- external backends ---------------------------------------------------------------

// The backend's API key from --api-key-env or --api-key-file (never from the command
// line itself, where any user could read it in the process list); nullopt: keep the
// stored one.
absl::StatusOr<std::optional<std::string>> BackendKey(const std::string& env, const std::string& file) {
  if (!env.empty()) {
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) return absl::InvalidArgumentError(fmt::format("--api-key-env: ${} is not set", env));
    return std::string(value);
  }
  if (!file.empty()) {
    std::ifstream in(file);
    std::string line;
    if (!in || !std::getline(in, line)) return absl::InvalidArgumentError(fmt::format("--api-key-file: cannot read {}", file));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return line;
  }
  return std::nullopt;
}

Command Backends(CLI::App& root) {
  CLI::App* parent = root.add_subcommand("backends", "External OpenAI-compatible servers that serve a model name");
  struct Args { std::string name, model, url, remote_model, key_env, key_file; bool no_key = false; };
  auto args = std::make_shared<Args>();
  CLI::App* set = parent->add_subcommand("set", "Register (or change) an external backend for a model name");
  set->add_option("NAME", args->name, "Backend name")->required();
  set->add_option("--model", args->model, "The model name clients use")->required();
  set->add_option("--url", args->url, "API root, e.g. https://api.example.com/v1")->required();
  set->add_option("--remote-model", args->remote_model, "The model name the backend knows (default: --model)");
  set->add_option("--api-key-env", args->key_env, "Read the backend's API key from this environment variable");
  set->add_option("--api-key-file", args->key_file, "Read the backend's API key from this file's first line");
  set->add_flag("--no-api-key", args->no_key, "Send no API key (clears a stored one)");
  Command set_command = AdminCommand(set, std::make_shared<AdminFlags>(), [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    json body = {{"model", args->model}, {"base_url", args->url}, {"remote_model", args->remote_model}};
    absl::StatusOr<std::optional<std::string>> key = BackendKey(args->key_env, args->key_file);
    if (!key.ok()) return key.status();
    if (*key) body["api_key"] = **key;
    if (args->no_key) body["api_key"] = "";
    absl::StatusOr<json> backend = c.Call(HttpMethod::kPut, "/admin/v1/backends/" + PathSegment(args->name), body);
    if (!backend.ok()) return backend.status();
    if (f.json) return PrintJson(*backend);
    std::printf("backend %s serves model %s from %s (%s)\n", args->name.c_str(), args->model.c_str(), args->url.c_str(),
                (*backend).value("has_api_key", false) ? "with an API key" : "without an API key");
    return 0;
  });
  CLI::App* ls = parent->add_subcommand("ls", "List external backends (never their keys)");
  Command list = AdminCommand(ls, std::make_shared<AdminFlags>(), [](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> backends = c.Call(HttpMethod::kGet, "/admin/v1/backends");
    if (!backends.ok()) return backends.status();
    if (f.json) return PrintJson(*backends);
    std::vector<std::vector<std::string>> rows;
    for (const json& b : (*backends)["data"]) {
      rows.push_back({Cell(b["name"]), Cell(b["model"]), Cell(b["base_url"]), Cell(b["remote_model"]),
                      b.value("has_api_key", false) ? "yes" : "no", HumanAge(b["updated_at"])});
    }
    std::fputs(FormatTable({"BACKEND", "MODEL", "URL", "REMOTE MODEL", "API KEY", "UPDATED"}, rows).c_str(), stdout);
    return 0;
  });
  CLI::App* rm = parent->add_subcommand("rm", "Remove an external backend");
  rm->add_option("NAME", args->name, "Backend name")->required();
  Command rm_command = AdminCommand(rm, std::make_shared<AdminFlags>(), [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    absl::StatusOr<json> answer = c.Call(HttpMethod::kDelete, "/admin/v1/backends/" + PathSegment(args->name));
    if (!answer.ok()) return answer.status();
    if (f.json) return PrintJson(*answer);
    std::printf("removed backend %s\n", args->name.c_str());
    return 0;
  });
  return ParentCommand(parent, {set_command, list, rm_command});
}

// ---- rollouts and events -------------------------------------------------------------

// POST `path` (a rollout step of deployment `name`) and finish like deploy does.
absl::StatusOr<int> RolloutStep(AdminClient& c, const AdminFlags& f, const WaitArgs& wait, const std::string& path,
                                const json& body = json::object()) {
  absl::StatusOr<json> d = c.Call(HttpMethod::kPost, path, body);
  if (!d.ok()) return d.status();
  return Finish(c, f, wait, *d);
}

Command Rollout(CLI::App& root) {
  struct Args { std::string name, version, strategy = "rolling"; int percent = 10; WaitArgs wait; };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("rollout", "Move a deployment to another version: rolling, or as a canary");
  app->add_option("NAME", args->name, "Deployment name");
  app->add_option("--version", args->version, "The version to roll out");
  app->add_option("--strategy", args->strategy, "rolling or canary")->check(CLI::IsMember({"rolling", "canary"}))->capture_default_str();
  app->add_option("--canary-percent", args->percent, "Share of the traffic the canary gets")->check(CLI::Range(1, 99))->capture_default_str();
  AddWaitFlags(app, args->wait);
  auto flags = std::make_shared<AdminFlags>();
  std::vector<Command> steps;
  for (const char* step : {"promote", "abort", "status"}) {
    CLI::App* sub = app->add_subcommand(step, std::string(step) == "promote" ? "Make the canary the deployed version (rolling)"
                                              : std::string(step) == "abort" ? "Stop the canary; all traffic back on the deployed version"
                                                                             : "The rollout: versions, canary, error rate and latency per version");
    auto name = std::make_shared<std::string>();
    auto wait = std::make_shared<WaitArgs>();
    sub->add_option("NAME", *name, "Deployment name")->required();
    if (std::string(step) != "status") AddWaitFlags(sub, *wait);
    steps.push_back(AdminCommand(sub, std::make_shared<AdminFlags>(), [name, wait, step = std::string(step)](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
      const std::string path = DeploymentPath(*name) + "/rollout";
      if (step != "status") return RolloutStep(c, f, *wait, path + "/" + step);
      absl::StatusOr<json> r = c.Call(HttpMethod::kGet, path);
      if (!r.ok()) return r.status();
      if (f.json) return PrintJson(*r);
      std::printf("deployment %s: version %s%s; %s\n", name->c_str(), Cell((*r)["version"]).c_str(),
                  (*r)["canary"].is_null() ? "" : fmt::format(", canary {} at {}%", Cell((*r)["canary"]["version"]),
                                                              Cell((*r)["canary"]["percent"])).c_str(),
                  Cell((*r)["phase"]).c_str());
      std::vector<std::vector<std::string>> rows;
      for (const auto& [version, v] : (*r)["versions"].items()) {
        rows.push_back({version, Cell(v["requests"]), Cell(v["errors"]), fmt::format("{:.1f}%", 100 * v.value("error_rate", 0.0)),
                        fmt::format("{:.1f} ms", 1000 * v.value("p50_latency_seconds", 0.0)),
                        fmt::format("{:.1f} ms", 1000 * v.value("p99_latency_seconds", 0.0))});
      }
      std::fputs(FormatTable({"VERSION", "REQUESTS", "ERRORS", "ERROR RATE", "P50", "P99"}, rows).c_str(), stdout);
      return 0;
    }));
  }
  Command start = AdminCommand(app, flags, [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    if (args->name.empty() || args->version.empty()) {
      return absl::InvalidArgumentError("give a deployment and --version (or: rollout promote|abort|status NAME)");
    }
    json body = {{"version", args->version}, {"strategy", args->strategy}};
    if (args->strategy == "canary") body["canary_percent"] = args->percent;
    return RolloutStep(c, f, args->wait, DeploymentPath(args->name) + "/rollout", body);
  });
  return {app, [steps, start] {
            for (const Command& step : steps) {
              if (step.app->parsed()) return step.run();
            }
            return start.run();
          }};
}

Command Rollback(CLI::App& root) {
  struct Args { std::string name; WaitArgs wait; };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("rollback", "Back to the previous version in one call (a canary is aborted)");
  app->add_option("NAME", args->name, "Deployment name")->required();
  AddWaitFlags(app, args->wait);
  return AdminCommand(app, std::make_shared<AdminFlags>(), [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    return RolloutStep(c, f, args->wait, DeploymentPath(args->name) + "/rollback");
  });
}

Command Events(CLI::App& root) {
  struct Args { std::string name; bool follow = false; int limit = 50; };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("events", "What happened to a deployment: scaling, rollouts, instances");
  app->add_option("NAME", args->name, "Deployment name (default: every deployment)");
  app->add_flag("-f,--follow", args->follow, "Keep printing new events");
  app->add_option("--limit", args->limit, "Most events to print first")->check(CLI::Range(1, 1000))->capture_default_str();
  return AdminCommand(app, std::make_shared<AdminFlags>(), [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    const std::string base = args->name.empty() ? "/admin/v1/events" : DeploymentPath(args->name) + "/events";
    int64_t after = 0;
    // The newest `limit` first: page through to the end, keeping the tail.
    std::vector<json> tail;
    while (true) {
      absl::StatusOr<json> page = c.Call(HttpMethod::kGet, fmt::format("{}?after_id={}&limit=1000", base, after));
      if (!page.ok()) return page.status();
      for (const json& e : (*page)["data"]) {
        tail.push_back(e);
        after = e.value("id", after);
      }
      if ((*page)["data"].size() < 1000) break;
    }
    if (tail.size() > static_cast<size_t>(args->limit)) tail.erase(tail.begin(), tail.end() - args->limit);
    auto print = [&](const json& e) {
      if (f.json) {
        std::printf("%s\n", e.dump().c_str());
      } else {
        std::printf("%s  %-10s %-10s %-16s %s\n", Cell(e["time"]).c_str(), Cell(e["deployment"]).c_str(),
                    Cell(e["kind"]).c_str(), Cell(e["actor"]).c_str(), Cell(e["message"]).c_str());
      }
    };
    for (const json& e : tail) print(e);
    while (args->follow) {
      std::fflush(stdout);
      std::this_thread::sleep_for(std::chrono::seconds(1));
      absl::StatusOr<json> page = c.Call(HttpMethod::kGet, fmt::format("{}?after_id={}&limit=1000", base, after));
      if (!page.ok()) return page.status();
      for (const json& e : (*page)["data"]) {
        print(e);
        after = e.value("id", after);
      }
    }
    return 0;
  });
}

// ---- usage -------------------------------------------------------------------------

std::string Money(int64_t micros) { return fmt::format("{}.{:06}", micros / 1'000'000, micros % 1'000'000); }

Command Usage(CLI::App& root) {
  struct Args { std::string by = "key", from, to, key, team, model; bool csv = false; };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("usage", "Tokens, requests and cost from the usage ledger");
  app->add_option("--by", args->by, "Group by key, team, model, day or all")
      ->check(CLI::IsMember({"key", "team", "model", "day", "all"}))
      ->capture_default_str();
  app->add_option("--from", args->from, "From this time, RFC 3339 (2026-12-01T00:00:00Z)");
  app->add_option("--to", args->to, "Up to this time (exclusive), RFC 3339");
  app->add_option("--key", args->key, "Only this key id");
  app->add_option("--team", args->team, "Only this team");
  app->add_option("--model", args->model, "Only this model");
  app->add_flag("--csv", args->csv, "Print CSV (for spreadsheets)");
  return AdminCommand(app, std::make_shared<AdminFlags>(), [args](AdminClient& c, const AdminFlags& f) -> absl::StatusOr<int> {
    std::string path = "/admin/v1/usage?group_by=" + args->by;
    for (auto [name, value] : {std::pair{"from", &args->from}, std::pair{"to", &args->to}, std::pair{"key", &args->key},
                               std::pair{"team", &args->team}, std::pair{"model", &args->model}}) {
      if (!value->empty()) path += fmt::format("&{}={}", name, PathSegment(*value));
    }
    if (args->csv) {
      absl::StatusOr<std::string> csv = c.CallText(path + "&format=csv");
      if (!csv.ok()) return csv.status();
      std::fputs(csv->c_str(), stdout);
      return 0;
    }
    absl::StatusOr<json> totals = c.Call(HttpMethod::kGet, path);
    if (!totals.ok()) return totals.status();
    if (f.json) return PrintJson(*totals);
    std::vector<std::vector<std::string>> rows;
    for (const json& t : (*totals)["data"]) {
      rows.push_back({Cell(t["group"]), Cell(t["requests"]), Cell(t["errors"]), Cell(t["prompt_tokens"]),
                      Cell(t["completion_tokens"]), Cell(t["cached_tokens"]), Money(t.value("cost_micros", int64_t{0}))});
    }
    std::string group = args->by;
    for (char& ch : group) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    std::fputs(FormatTable({group, "REQUESTS", "ERRORS", "PROMPT", "COMPLETION", "CACHED", "COST"}, rows).c_str(), stdout);
    return 0;
  });
}

}  // namespace

std::vector<Command> AddAdminCommands(CLI::App& root) {
  CLI::App* models = root.add_subcommand("models", "The model repository: add, pull, list, inspect, delete");
  Command models_command = ParentCommand(
      models, {ModelsAdd(*models), ModelsPull(*models), ModelsList(*models), ModelsInspect(*models),
               ModelsRemove(*models)});
  return {models_command, Deploy(root), Scale(root), Undeploy(root), Ps(root),
          Config(root),   Audit(root),  Keys(root),  Teams(root), Usage(root), Backends(root),
          Rollout(root),  Rollback(root), Events(root)};
}

}  // namespace triplane::cli
