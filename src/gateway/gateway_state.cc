#include "gateway/gateway_state.h"

#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::gateway {

const nlohmann::json& GatewaySnapshot::Config(const std::string& key) const {
  static const nlohmann::json kNull;
  const auto it = config.find(key);
  return it == config.end() ? kNull : *it;
}

absl::StatusOr<std::shared_ptr<const GatewaySnapshot>> ParseGatewaySnapshot(const nlohmann::json& json) {
  auto snapshot = std::make_shared<GatewaySnapshot>();
  try {
    snapshot->revision = json.at("revision").get<int64_t>();
    for (const nlohmann::json& k : json.at("keys")) {
      KeyInfo key{.id = k.at("id").get<std::string>(),
                  .admin = k.at("role").get<std::string>() == "admin",
                  .team = k.value("team", "")};
      for (const nlohmann::json& m : k.value("allowed_models", nlohmann::json::array())) {
        key.allowed_models.insert(m.get<std::string>());
      }
      if (k.contains("expires_at") && k["expires_at"].is_number()) {
        key.expires_at = absl::FromUnixSeconds(k["expires_at"].get<int64_t>());
      }
      snapshot->keys_by_digest[k.at("digest").get<std::string>()] = std::move(key);
    }
    snapshot->config = json.at("config");
    for (const auto& [model, entry] : json.at("models").items()) {
      std::vector<Upstream>& upstreams = snapshot->models[model];
      const nlohmann::json weights = entry.value("weights", nlohmann::json::object());
      for (const auto& [version, weight] : weights.items()) {
        if (weight.is_number() && weight.get<double>() > 0) snapshot->weights[model][version] = weight.get<double>();
      }
      for (const nlohmann::json& u : entry.at("upstreams")) {
        upstreams.push_back({.id = u.at("id").get<std::string>(),
                             .url = u.at("url").get<std::string>(),
                             .version = u.value("version", ""),
                             .deployment = u.value("deployment", ""),
                             .external = u.value("external", false),
                             .remote_model = u.value("remote_model", ""),
                             .api_key = u.value("api_key", "")});
      }
      for (const nlohmann::json& d : entry.value("wake", nlohmann::json::array())) {
        snapshot->wake[model].push_back(d.get<std::string>());
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(fmt::format("not a gateway state snapshot: {}", e.what()));
  }
  return std::shared_ptr<const GatewaySnapshot>(std::move(snapshot));
}

std::shared_ptr<const GatewaySnapshot> GatewayState::Get() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

void GatewayState::Set(std::shared_ptr<const GatewaySnapshot> snapshot) {
  absl::MutexLock lock(&mu_);
  snapshot_ = std::move(snapshot);
}

void GatewayState::Apply(const nlohmann::json& json) {
  absl::StatusOr<std::shared_ptr<const GatewaySnapshot>> parsed = ParseGatewaySnapshot(json);
  if (!parsed.ok()) {
    spdlog::error("gateway: ignoring a state update: {}", std::string(parsed.status().message()));
    return;
  }
  Set(*std::move(parsed));
}

StateFollower::StateFollower(std::string control_url, std::string admin_key, GatewayState& state)
    : url_(std::move(control_url)), key_(std::move(admin_key)), state_(state),
      client_({.request_timeout = std::chrono::seconds(90)}) {}

StateFollower::~StateFollower() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

absl::Status StateFollower::Start(absl::Duration timeout) {
  thread_ = std::thread([this] { Loop(); });
  const absl::Time deadline = absl::Now() + timeout;
  while (revision_ == 0) {
    if (absl::Now() > deadline) {
      return absl::UnavailableError(fmt::format("no state from the control plane at {} yet", url_));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::OkStatus();
}

void StateFollower::Loop() {
  absl::Duration backoff = absl::Milliseconds(100);
  while (!stop_) {
    // Short polls while stopping matters little; 5 s keeps shutdown prompt.
    common::HttpClientRequest request{
        .url = fmt::format("{}/admin/v1/gateway/state?since={}&timeout=5", url_, revision_.load())};
    request.headers.Set("authorization", "Bearer " + key_);
    absl::StatusOr<common::HttpResponse> response = client_.Send(std::move(request));
    nlohmann::json body;
    if (response.ok() && response->status == 200) {
      body = nlohmann::json::parse(response->body, nullptr, false);
    }
    if (!body.is_object()) {
      spdlog::warn("gateway: control plane {} did not answer the state poll ({}); retrying", url_,
                   response.ok() ? fmt::format("HTTP {}", response->status)
                                 : std::string(response.status().message()));
      for (absl::Time until = absl::Now() + backoff; !stop_ && absl::Now() < until;) {
        absl::SleepFor(absl::Milliseconds(50));
      }
      backoff = std::min(backoff * 2, absl::Seconds(5));
      continue;
    }
    backoff = absl::Milliseconds(100);
    if (body.value("unchanged", false)) continue;
    state_.Apply(body);
    revision_ = body.value("revision", int64_t{0});
  }
}

}  // namespace triplane::gateway
