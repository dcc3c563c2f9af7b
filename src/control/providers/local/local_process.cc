#include "control/providers/local/local_process.h"

#include <charconv>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

#include "fmt/format.h"

namespace triplane::control::local {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

bool ProcessRunning(int64_t pid) {
  if (pid <= 0) return false;
  // "PID (COMM) S ...": COMM may hold spaces and parentheses, so look after the last ')'.
  const std::string stat = ReadFile(fmt::format("/proc/{}/stat", pid));
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  const char state = stat[paren + 2];
  return state != 'Z' && state != 'X' && state != 'x';
}

bool CommandLineHasInstanceId(int64_t pid, std::string_view id) {
  if (pid <= 0 || id.empty()) return false;
  const std::string cmdline = ReadFile(fmt::format("/proc/{}/cmdline", pid));
  std::vector<std::string_view> args;
  for (size_t start = 0; start < cmdline.size();) {
    size_t end = cmdline.find('\0', start);
    if (end == std::string::npos) end = cmdline.size();
    args.emplace_back(cmdline.data() + start, end - start);
    start = end + 1;
  }
  const std::string joined = fmt::format("--instance-id={}", id);
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == joined) return true;
    if (args[i] == "--instance-id" && i + 1 < args.size() && args[i + 1] == id) return true;
  }
  return false;
}

std::optional<int32_t> ReadUrlPort(const std::string& out_path) {
  const std::string out = ReadFile(out_path);
  const size_t newline = out.find('\n');
  if (newline == std::string::npos) return std::nullopt;
  const std::string_view line(out.data(), newline);
  const size_t colon = line.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  int32_t port = 0;
  const char* first = line.data() + colon + 1;
  const char* last = line.data() + line.size();
  auto [ptr, ec] = std::from_chars(first, last, port);
  if (ec != std::errc() || ptr != last || port <= 0 || port > 65535) return std::nullopt;
  return port;
}

std::string LastLogLine(const std::string& path) {
  constexpr std::streamoff kTail = 64 << 10;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  const std::streamoff size = in.tellg();
  in.seekg(size > kTail ? size - kTail : 0);
  std::string tail(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>{});
  size_t end = tail.size();
  while (end > 0) {
    const size_t start = tail.rfind('\n', end - 1);
    const size_t from = start == std::string::npos ? 0 : start + 1;
    std::string line = tail.substr(from, end - from);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) return line;
    if (start == std::string::npos) break;
    end = start;
  }
  return "";
}

}  // namespace triplane::control::local
