# SPDX-License-Identifier: MIT OR Apache-2.0
# Docs that cannot rot (MOOSICBOX_P2P_BUILD_DOCS):
# - moosicbox_p2p_doc_snippets compiles every ```cpp block of README.md and docs/*.md as its own
#   translation unit. Each block must be a complete file (includes and all); a `#line` directive
#   makes compiler errors point at the Markdown line. Blocks tagged c++ or cxx are refused, so no
#   C++ block escapes the check. Editing a Markdown file re-runs the extraction.
# - moosicbox_p2p_api_docs runs Doxygen over the public headers (docs/Doxyfile.in), warnings are
#   errors; the HTML lands in <build>/docs/api/html.

# p2p_extract_cpp_blocks writes the ```cpp blocks of `md` to `out_dir`/<name>_<n>.cpp and appends
# the file names to the list variable `out_var`.
function(p2p_extract_cpp_blocks md out_dir out_var)
  file(READ "${md}" text)
  file(RELATIVE_PATH rel "${PROJECT_SOURCE_DIR}" "${md}")
  string(MAKE_C_IDENTIFIER "${rel}" stem)
  if(text MATCHES "(^|\n)[ ]*```(c\\+\\+|cxx|C\\+\\+)[ ]*\n")
    message(FATAL_ERROR "${rel}: tag C++ code blocks as ```cpp (they are compiled as doc snippets)")
  endif()
  set(files ${${out_var}})
  set(n 0)
  set(line 1)
  while(TRUE)
    string(REGEX MATCH "(^|\n)([ ]*)```cpp[ ]*\n" fence "${text}")
    if(fence STREQUAL "")
      break()
    endif()
    set(indent "${CMAKE_MATCH_2}")
    string(FIND "${text}" "${fence}" pos)
    string(LENGTH "${fence}" fence_len)
    math(EXPR body_start "${pos} + ${fence_len}")
    string(SUBSTRING "${text}" 0 ${body_start} before)
    string(REGEX MATCHALL "\n" newlines "${before}")
    list(LENGTH newlines before_lines)
    math(EXPR body_line "${line} + ${before_lines}")
    string(SUBSTRING "${text}" ${body_start} -1 rest)
    string(FIND "\n${rest}" "\n${indent}```" body_len)
    if(body_len EQUAL -1)
      message(FATAL_ERROR "${rel}:${body_line}: a ```cpp block is never closed")
    endif()
    string(SUBSTRING "${rest}" 0 ${body_len} body)
    if(NOT indent STREQUAL "")
      string(REGEX REPLACE "(^|\n)${indent}" "\\1" body "${body}")
    endif()
    math(EXPR n "${n} + 1")
    set(out "${out_dir}/${stem}_${n}.cpp")
    set(content "#line ${body_line} \"${md}\"\n${body}")
    set(old "")
    if(EXISTS "${out}")
      file(READ "${out}" old)
    endif()
    if(NOT old STREQUAL content)
      file(WRITE "${out}" "${content}")
    endif()
    list(APPEND files "${out}")
    # Go on from the newline that ends the closing fence's line (the next fence anchors on it).
    string(REGEX MATCHALL "\n" newlines "${body}")
    list(LENGTH newlines body_lines)
    math(EXPR line "${body_line} + ${body_lines}")
    string(SUBSTRING "${rest}" ${body_len} -1 text)
    string(FIND "${text}" "\n" eol)
    if(eol EQUAL -1)
      break()
    endif()
    string(SUBSTRING "${text}" ${eol} -1 text)
  endwhile()
  set(${out_var} "${files}" PARENT_SCOPE)
endfunction()

set(p2p_doc_markdown "${PROJECT_SOURCE_DIR}/README.md")
file(GLOB p2p_doc_pages CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/docs/*.md")
list(APPEND p2p_doc_markdown ${p2p_doc_pages})
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${p2p_doc_markdown})
set(p2p_snippet_dir "${PROJECT_BINARY_DIR}/doc_snippets")
file(MAKE_DIRECTORY "${p2p_snippet_dir}")
set(p2p_snippets "")
foreach(md IN LISTS p2p_doc_markdown)
  p2p_extract_cpp_blocks("${md}" "${p2p_snippet_dir}" p2p_snippets)
endforeach()
list(LENGTH p2p_snippets p2p_snippet_count)
message(STATUS "moosicbox-p2p: ${p2p_snippet_count} C++ snippets in README.md and docs/ are compiled")
if(NOT TARGET GTest::gtest)
  find_package(GTest 1.12 CONFIG REQUIRED)  # the simulation guide's snippet is a test
endif()
if(p2p_snippet_count GREATER 0)
  add_library(moosicbox_p2p_doc_snippets OBJECT ${p2p_snippets})
  target_link_libraries(moosicbox_p2p_doc_snippets PRIVATE moosicbox_p2p_with_sim GTest::gtest)
  p2p_set_warnings(moosicbox_p2p_doc_snippets)
  # Compiling is the check: no optimisation needed.
  target_compile_options(moosicbox_p2p_doc_snippets PRIVATE -O0)
endif()

find_program(P2P_DOXYGEN doxygen)
if(NOT P2P_DOXYGEN)
  message(FATAL_ERROR "MOOSICBOX_P2P_BUILD_DOCS needs doxygen (Debian: apt-get install doxygen)")
endif()
set(DOXYGEN_OUTPUT_DIR "${PROJECT_BINARY_DIR}/docs/api")
file(MAKE_DIRECTORY "${DOXYGEN_OUTPUT_DIR}")
configure_file("${PROJECT_SOURCE_DIR}/docs/Doxyfile.in" "${DOXYGEN_OUTPUT_DIR}/Doxyfile" @ONLY)
file(GLOB_RECURSE p2p_public_headers CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/include/moosicbox/p2p/*.hpp")
add_custom_command(
  OUTPUT "${DOXYGEN_OUTPUT_DIR}/html/index.html"
  COMMAND sh -c "'${P2P_DOXYGEN}' Doxyfile >/dev/null || { cat warnings.log >&2; echo 'doxygen: the warnings above are errors' >&2; exit 1; }"
  WORKING_DIRECTORY "${DOXYGEN_OUTPUT_DIR}"
  DEPENDS "${DOXYGEN_OUTPUT_DIR}/Doxyfile" ${p2p_public_headers} "${PROJECT_SOURCE_DIR}/docs/api-main.md"
  COMMENT "API reference (Doxygen, warnings are errors): ${DOXYGEN_OUTPUT_DIR}/html/index.html"
  VERBATIM)
add_custom_target(moosicbox_p2p_api_docs ALL DEPENDS "${DOXYGEN_OUTPUT_DIR}/html/index.html")
