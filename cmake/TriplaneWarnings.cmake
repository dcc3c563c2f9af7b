# Warning and sanitizer flags applied to Triplane's own targets only.
add_library(triplane_build_flags INTERFACE)
target_compile_options(triplane_build_flags INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wno-missing-field-initializers
  -Wnon-virtual-dtor -Wimplicit-fallthrough>)
# GCC 12 reports false -Wrestrict positives inside libstdc++'s std::string at -O3
# (GCC bug 105329); the warning says nothing about our code there.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(triplane_build_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-restrict>)
endif()
# In a unity build a type from one file's anonymous namespace used by a class of that
# file counts as "included" and GCC warns; each source is still its own unit of meaning.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_UNITY_BUILD)
  target_compile_options(triplane_build_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-subobject-linkage>)
endif()
if(TRIPLANE_WERROR)
  target_compile_options(triplane_build_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()
if(TRIPLANE_SANITIZE)
  set(_san "-fsanitize=${TRIPLANE_SANITIZE}")
  target_compile_options(triplane_build_flags INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all>)
  target_link_options(triplane_build_flags INTERFACE ${_san})
  # GCC's flow analysis is confused by sanitizer instrumentation and reports
  # maybe-uninitialized inside libstdc++ (documented in GCC's -fsanitize notes); the
  # release build keeps the warning as an error.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(triplane_build_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-maybe-uninitialized>)
  endif()
endif()
