#pragma once

// A host name other than "localhost" that this machine's resolver maps to 127.0.0.0/8:
// its own name (Debian lists it in /etc/hosts as 127.0.1.1) or one of /etc/hosts'
// aliases. Tests of "a name that leads back here" use it; empty when there is none.

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace triplane::testing {

inline std::string LoopbackHostName() {
  std::vector<std::string> names = {"ip6-localhost", "ip6-loopback", "localhost.localdomain"};
  char hostname[256] = {};
  if (::gethostname(hostname, sizeof(hostname) - 1) == 0) names.insert(names.begin(), hostname);
  for (const std::string& name : names) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    addrinfo* found = nullptr;
    if (::getaddrinfo(name.c_str(), nullptr, &hints, &found) != 0) continue;
    const uint32_t address = ntohl(reinterpret_cast<const sockaddr_in*>(found->ai_addr)->sin_addr.s_addr);
    ::freeaddrinfo(found);
    if ((address >> 24) == 127) return name;
  }
  return "";
}

}  // namespace triplane::testing
