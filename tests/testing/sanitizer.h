#pragma once

// Whether this build runs under AddressSanitizer (the test binaries and the `triplane`
// they start come from one build tree, so this is true of both). Memory figures mean
// little there: ASan's shadow memory and quarantine add hundreds of MiB of RSS.

namespace triplane::testing {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace triplane::testing
