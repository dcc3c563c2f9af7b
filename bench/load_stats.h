#pragma once

// Small helpers shared by the load generators under bench/.

#include <algorithm>
#include <cstddef>
#include <vector>

namespace triplane::bench {

// The p-th percentile (0..100) of `v`, interpolated between closest ranks; 0 when empty.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(rank);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

}  // namespace triplane::bench
