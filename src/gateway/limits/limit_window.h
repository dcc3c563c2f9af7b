#pragma once

// Fixed counting windows aligned to UTC, and the names of the counters kept per
// (kind, window, scope). Pure functions; thread-safe.

#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "gateway/limits/limit_policy.h"

namespace triplane::gateway {

// One window: [start, end). `id` names it in counter names: the minute number since the
// epoch ("29554383"), the day number since the epoch ("20523"), or the UTC month
// ("2026-03").
struct LimitWindow {
  std::string id;
  absl::Time start;
  absl::Time end;
};

// The window of `kind` that contains `t`: the minute floor(epoch seconds / 60), the UTC
// day or the UTC month.
LimitWindow WindowOf(LimitKind kind, absl::Time t);

// How long a counter of `window` must live when written at `now`: until the window's
// end plus a minute of slack (so gateways with slightly skewed clocks agree), so at least
// a minute.
absl::Duration CounterTtl(const LimitWindow& window, absl::Time now);

// The counter's name: "<kind short name>:<window id>:<scope>", e.g.
// "tpm:29554383:key:k1". Injective because the short names and window ids contain no
// ':'; stores add their own prefix.
std::string CounterName(LimitKind kind, const LimitWindow& window, std::string_view scope);

}  // namespace triplane::gateway
