# SPDX-License-Identifier: MIT OR Apache-2.0
# p2p_add_layer(name SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...] [PCH_ASIO])
# Adds the static library moosicbox_p2p_<name> (exported as moosicbox_p2p::<name>) with the project's include
# directories, warnings and, with PCH_ASIO, the shared precompiled Boost.Asio header.
set(P2P_LAYERS "" CACHE INTERNAL "")

function(p2p_add_layer name)
  cmake_parse_arguments(ARG "PCH_ASIO" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  set(target moosicbox_p2p_${name})
  add_library(${target} STATIC ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name} POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${target}
    PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
           $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>
           $<INSTALL_INTERFACE:include>
    PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_features(${target} PUBLIC cxx_std_23)
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  p2p_set_warnings(${target})
  if(ARG_PCH_ASIO)
    p2p_use_asio_pch(${target})
  endif()
  set(P2P_LAYERS ${P2P_LAYERS} ${target} CACHE INTERNAL "")
endfunction()

# The heavy Boost.Asio and fmt headers, precompiled per target (one PCH per target keeps compile
# flags consistent; a shared PCH breaks when targets differ in flags).
function(p2p_use_asio_pch target)
  target_precompile_headers(${target} PRIVATE ${PROJECT_SOURCE_DIR}/cmake/pch.hpp)
endfunction()
