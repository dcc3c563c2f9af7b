#pragma once

// What the local provider reads about engine processes from the file system: /proc
// entries of a process (alive? which instance?) and the files an engine writes (the URL
// line on stdout, the last line of its log). Plain functions; thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace triplane::control::local {

// True while process `pid` exists and is not a zombie (a zombie has exited; only its
// parent's wait is missing, and we may not be that parent).
bool ProcessRunning(int64_t pid);

// True when /proc/PID/cmdline carries `--instance-id ID` (or `--instance-id=ID`), i.e.
// `pid` is still the engine started for instance `id` and not a reused pid.
bool CommandLineHasInstanceId(int64_t pid, std::string_view id);

// The port of the "http://HOST:PORT" line the engine prints on stdout once ready, from
// the file `out_path`; nullopt while the line is not complete.
std::optional<int32_t> ReadUrlPort(const std::string& out_path);

// The last non-empty line of the file (at most its last 64 KiB are read); empty when
// there is none.
std::string LastLogLine(const std::string& path);

}  // namespace triplane::control::local
