# web/ → triplane_web_assets: every file under web/ compiled into the binary as a byte
# array (cmake/EmbedWebAssets.cmake), so the server needs no files on disk and works
# offline. CONFIGURE_DEPENDS re-runs the glob on every build, so an added file is picked up.
file(GLOB_RECURSE TRIPLANE_WEB_FILES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/web/*)
set(_web_assets_cc ${CMAKE_BINARY_DIR}/generated/web_assets_data.cc)
add_custom_command(
  OUTPUT ${_web_assets_cc}
  COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR}/web -DOUTPUT=${_web_assets_cc}
          -P ${PROJECT_SOURCE_DIR}/cmake/EmbedWebAssets.cmake
  DEPENDS ${TRIPLANE_WEB_FILES} ${PROJECT_SOURCE_DIR}/cmake/EmbedWebAssets.cmake
  COMMENT "Embedding web/ into the binary"
  VERBATIM)
add_library(triplane_web_assets STATIC ${_web_assets_cc})
target_include_directories(triplane_web_assets PUBLIC ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(triplane_web_assets PRIVATE triplane_build_flags)
