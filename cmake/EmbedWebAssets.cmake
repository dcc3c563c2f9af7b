# Script mode (cmake -P): writes OUTPUT, a C++ source holding every file under SOURCE_DIR
# as a byte array with its URL path, content type and SHA-256, for the server to serve
# from memory (src/gateway/web_assets.h declares what it defines).
#   cmake -DSOURCE_DIR=web -DOUTPUT=web_assets_data.cc -P EmbedWebAssets.cmake

file(GLOB_RECURSE _files LIST_DIRECTORIES false RELATIVE ${SOURCE_DIR} ${SOURCE_DIR}/*)
list(FILTER _files EXCLUDE REGEX "(^|/)\\.|~$")  # dotfiles, editor backups
list(SORT _files)

function(_content_type path out)
  string(REGEX MATCH "\\.[A-Za-z0-9]+$" _ext "${path}")
  string(TOLOWER "${_ext}" _ext)
  # Pairs of extension and type (a CMake list: no ';' inside, so text types get their
  # charset below).
  set(_types
    .html text/html .js text/javascript .mjs text/javascript .css text/css
    .txt text/plain .svg image/svg+xml .json application/json .png image/png
    .ico image/x-icon .woff2 font/woff2)
  set(_type "application/octet-stream")
  list(FIND _types "${_ext}" _at)
  if(_at GREATER_EQUAL 0)
    math(EXPR _at "${_at} + 1")
    list(GET _types ${_at} _type)
  endif()
  if(_type MATCHES "^text/")
    string(APPEND _type "; charset=utf-8")
  endif()
  set(${out} "${_type}" PARENT_SCOPE)
endfunction()

set(_arrays "")
set(_table "")
set(_index 0)
foreach(_rel IN LISTS _files)
  if(NOT _rel MATCHES "^[A-Za-z0-9._/-]+$")
    message(FATAL_ERROR "web/${_rel}: file names may use only letters, digits and ._-/")
  endif()
  file(READ ${SOURCE_DIR}/${_rel} _hex HEX)
  file(SHA256 ${SOURCE_DIR}/${_rel} _sha)
  file(SIZE ${SOURCE_DIR}/${_rel} _size)
  _content_type("${_rel}" _type)
  if(_size EQUAL 0)
    set(_bytes "0")  # an array cannot be empty; the size says 0
  else()
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _bytes "${_hex}")
    # Break the one long line every 32 bytes.
    string(REGEX REPLACE "((0x..,){32})" "\\1\n    " _bytes "${_bytes}")
  endif()
  string(APPEND _arrays "// ${_rel}\nconstexpr unsigned char kFile${_index}[] = {\n    ${_bytes}};\n")
  string(APPEND _table "    {\"/${_rel}\", \"${_type}\", \"${_sha}\", kFile${_index}, ${_size}},\n")
  math(EXPR _index "${_index} + 1")
endforeach()

set(_source "// Generated from web/ by cmake/EmbedWebAssets.cmake at build time: do not edit.
#include \"gateway/web_assets.h\"

namespace triplane::gateway {
namespace {

${_arrays}
constexpr common::StaticFile kFiles[] = {
${_table}};

}  // namespace

std::span<const common::StaticFile> WebAssets() { return kFiles; }

}  // namespace triplane::gateway
")
# Rewritten only when it changed, so that an unchanged web/ compiles nothing.
file(CONFIGURE OUTPUT ${OUTPUT} CONTENT "${_source}" @ONLY)
