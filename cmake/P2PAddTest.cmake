# SPDX-License-Identifier: MIT OR Apache-2.0
# p2p_add_test(name SOURCES ... LIBS ... LABELS ...): one GoogleTest executable whose tests ctest
# discovers and labels (unit, prop, sim, integration, netlab, packaging).
include(GoogleTest)
function(p2p_add_test name)
  cmake_parse_arguments(ARG "PCH_ASIO" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  p2p_set_warnings(${name})
  if(ARG_PCH_ASIO)
    p2p_use_asio_pch(${name})
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT 600)
endfunction()
