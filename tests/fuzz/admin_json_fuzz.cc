// Fuzzes the admin API's request handling short of HTTP: common::ParseJson (with a
// nesting limit chosen by the input), ParseBody, the Fields getters and QueryInt on any
// bytes. Nothing may throw, crash or trip a sanitizer; every error must be a 400-class
// InvalidArgument with a message that ErrorResponse turns into a JSON error body; values
// that parse must dump and parse back the same, and never nest deeper than the limit.
// Input: one byte choosing the nesting limit, then the body (also used as the query).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "common/json.h"
#include "control/admin/admin_internal.h"
#include "fuzz_check.h"

namespace triplane::control::admin_internal {
namespace {

constexpr size_t kMaxInput = 64 << 10;

using fuzz::Fail;

// Nesting depth as ParseJson counts it: a scalar is 0, [] is 1, [[]] is 2.
int Depth(const nlohmann::json& value) {
  int deepest = 0;
  if (value.is_structured()) {
    for (const nlohmann::json& item : value) deepest = std::max(deepest, Depth(item));
    return deepest + 1;
  }
  return 0;
}

// An admin API error: InvalidArgument with a message, answered as a 400 JSON body.
void CheckError(const absl::Status& status) {
  if (status.ok()) Fail("an error without a status");
  if (status.code() != absl::StatusCode::kInvalidArgument) Fail("an error other than InvalidArgument");
  if (status.message().empty()) Fail("an error without a message");
  const common::HttpResponse response = ErrorResponse(status);
  if (response.status != 400) Fail("an invalid request is not answered 400");
  absl::StatusOr<nlohmann::json> body = common::ParseJson(response.body);
  if (!body.ok() || !body->is_object() || !body->contains("error")) {
    Fail("the error response is not an OpenAI-style JSON error");
  }
}

template <typename T>
void Check(const absl::StatusOr<T>& result) {
  if (!result.ok()) CheckError(result.status());
}

// Every getter on every member, and the same on nested objects with a prefix.
void ReadFields(const nlohmann::json& object, const std::string& prefix, int depth) {
  const Fields fields(object, prefix);
  for (const auto& [key, value] : object.items()) {
    Check(fields.String(key));
    Check(fields.RequiredString(key));
    Check(fields.Int(key, 0, 100));
    Check(fields.Int(key, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()));
    Check(fields.StringArray(key));
    Check(fields.Time(key));
    if (fields.Raw(key) != &value) Fail("Raw does not find a member");
    absl::StatusOr<const nlohmann::json*> nested = fields.Object(key);
    Check(nested);
    if (nested.ok() && *nested != nullptr && depth < 8) {
      ReadFields(**nested, fields.Param(key) + ".", depth + 1);
    }
  }
  // Absent fields are nullopt, or missing for a required string.
  if (!object.contains("")) {
    absl::StatusOr<std::optional<std::string>> absent = fields.String("");
    if (!absent.ok() || absent->has_value()) Fail("an absent field is not nullopt");
    CheckError(fields.RequiredString("").status());
  }
}

}  // namespace
}  // namespace triplane::control::admin_internal

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace triplane::control::admin_internal;
  using triplane::common::DumpJson;
  using triplane::common::ParseJson;
  if (size < 1 || size > kMaxInput) return 0;
  const int max_depth = data[0] % 80;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  absl::StatusOr<nlohmann::json> value = ParseJson(text, max_depth);
  if (value.ok()) {
    if (Depth(*value) > max_depth) Fail("ParseJson accepted nesting beyond its limit");
    const std::string dumped = DumpJson(*value);
    absl::StatusOr<nlohmann::json> again = ParseJson(dumped, max_depth);
    if (!again.ok()) Fail("ParseJson rejects what DumpJson wrote");
    // Compared as text: numbers beyond double's range dump as null, so `*again` may
    // differ from `*value`, but never in what it dumps.
    if (DumpJson(*again) != dumped) Fail("dump and parse do not round trip");
  } else if (value.status().code() != absl::StatusCode::kInvalidArgument ||
             value.status().message().empty()) {
    Fail("ParseJson failed without InvalidArgument and a message");
  }

  triplane::common::HttpRequest request;
  request.body = std::string(text);
  request.query = std::string(text);
  absl::StatusOr<nlohmann::json> body = ParseBody(request);
  if (!body.ok()) {
    CheckError(body.status());
  } else {
    if (!body->is_object()) Fail("ParseBody returned a non-object");
    ReadFields(*body, "", 0);
  }
  for (std::string_view name : {"limit", "since", "offset", ""}) {
    Check(QueryInt(request, name, -5, 1000));
    Check(QueryInt(request, name, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()));
  }
  return 0;
}
