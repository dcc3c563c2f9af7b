#pragma once

// Orderly process shutdown on SIGINT/SIGTERM without async-signal-unsafe handlers:
// block the signals in every thread, then wait for one synchronously.

namespace triplane::common {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and in every thread it
// starts afterwards, and ignores SIGPIPE. Call first thing in main(), before any
// thread exists.
void BlockTerminationSignals();

// Waits until SIGINT, SIGTERM or SIGHUP arrives and returns its number.
// REQUIRES: BlockTerminationSignals() was called.
int WaitForTerminationSignal();

}  // namespace triplane::common
