# SPDX-License-Identifier: MIT OR Apache-2.0
# run_packaging_test.cmake: the package as its users meet it.
#  1. the static install: find_package(moosicbox_p2p) builds and runs the consumers (the real backend,
#     and the simulator); find_package(moosicbox-p2p) finds the same package; pkg-config builds and
#     runs them too, and moosicbox_p2p.pc does not pull in the simulator;
#  2. the build tree: moosicbox_p2p_DIR=<build dir> works without installing;
#  3. the shared install (BUILD_SHARED_LIBS=ON): versioned libraries with a SONAME, and the consumers
#     built against them run.
file(REMOVE_RECURSE ${P2P_WORK_DIR})
set(prefix ${P2P_WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGV}\n${out}\n${err}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

# consume(<name> <cmake args...>): configure, build and run the consumer project.
function(consume name)
  message(STATUS "consumer: ${name}")
  run(${CMAKE_COMMAND} -S ${P2P_CONSUMER_DIR} -B ${P2P_WORK_DIR}/${name} -G ${P2P_GENERATOR}
      -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 ${ARGN})
  run(${CMAKE_COMMAND} --build ${P2P_WORK_DIR}/${name})
  run(${P2P_WORK_DIR}/${name}/consumer)
  run(${P2P_WORK_DIR}/${name}/consumer_sim)
endfunction()

# pc_consume(<prefix> <name>): build and run the consumers with one compiler line each from the
# pkg-config files.
find_program(PKG_CONFIG pkg-config REQUIRED)
function(pc_consume where name)
  message(STATUS "pkg-config consumer: ${name}")
  set(ENV{PKG_CONFIG_PATH} ${where}/lib/pkgconfig:${where}/lib/x86_64-linux-gnu/pkgconfig)
  foreach(pair "consumer;moosicbox_p2p" "consumer_sim;moosicbox_p2p_sim")
    list(GET pair 0 program)
    list(GET pair 1 package)
    execute_process(COMMAND ${PKG_CONFIG} --cflags --libs ${package} OUTPUT_VARIABLE flags
                    RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "pkg-config does not know ${package} under ${where}")
    endif()
    if(package STREQUAL "moosicbox_p2p" AND flags MATCHES "moosicbox_p2p_sim( |$)")
      message(FATAL_ERROR "pkg-config moosicbox_p2p pulls in the simulator: ${flags}")
    endif()
    separate_arguments(flags UNIX_COMMAND "${flags}")
    run(c++ -O0 ${P2P_CONSUMER_DIR}/${program}.cpp -o ${P2P_WORK_DIR}/${name}-${program} ${flags}
        -Wl,-rpath,${where}/lib)
    run(${P2P_WORK_DIR}/${name}-${program})
  endforeach()
endfunction()

# 1. The static install.
run(${CMAKE_COMMAND} --install ${P2P_BINARY_DIR} --prefix ${prefix})
foreach(licence LICENSE-MIT LICENSE-APACHE)
  if(NOT EXISTS ${prefix}/share/doc/moosicbox_p2p/${licence})
    message(FATAL_ERROR "the install has no share/doc/moosicbox_p2p/${licence}")
  endif()
endforeach()
consume(static -DCMAKE_PREFIX_PATH=${prefix})
# By the project's name: configuring proves the targets resolve (generation fails otherwise).
run(${CMAKE_COMMAND} -S ${P2P_CONSUMER_DIR} -B ${P2P_WORK_DIR}/by-project-name -G ${P2P_GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DP2P_PACKAGE=moosicbox-p2p)
# A version the package is not: refused under both names.
foreach(package moosicbox_p2p moosicbox-p2p)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${P2P_CONSUMER_DIR} -B ${P2P_WORK_DIR}/wrong-version-${package}
    -G ${P2P_GENERATOR} -DCMAKE_PREFIX_PATH=${prefix} -DP2P_PACKAGE=${package} -DP2P_VERSION=9.0
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0 OR NOT err MATCHES "9\\.0")
    message(FATAL_ERROR "find_package(${package} 9.0) was not refused clearly (${rc}):\n${err}")
  endif()
endforeach()
pc_consume(${prefix} pc-static)

# 2. The build tree, without installing.
message(STATUS "consumer: build tree")
run(${CMAKE_COMMAND} -S ${P2P_CONSUMER_DIR} -B ${P2P_WORK_DIR}/build-tree -G ${P2P_GENERATOR}
    -Dmoosicbox_p2p_DIR=${P2P_BINARY_DIR} -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0)
run(${CMAKE_COMMAND} --build ${P2P_WORK_DIR}/build-tree --target consumer_sim)
run(${P2P_WORK_DIR}/build-tree/consumer_sim)

# 3. The shared libraries: the library alone, unoptimised (compiling is what takes time here).
message(STATUS "shared build")
set(shared_prefix ${P2P_WORK_DIR}/prefix-shared)
run(${CMAKE_COMMAND} -S ${P2P_SOURCE_DIR} -B ${P2P_WORK_DIR}/shared-build -G ${P2P_GENERATOR}
    -DBUILD_SHARED_LIBS=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0
    -DMOOSICBOX_P2P_BUILD_TESTS=OFF -DMOOSICBOX_P2P_BUILD_BENCH=OFF -DMOOSICBOX_P2P_BUILD_EXAMPLES=OFF
    -DMOOSICBOX_P2P_BUILD_TOOLS=OFF)
run(${CMAKE_COMMAND} --build ${P2P_WORK_DIR}/shared-build)
run(${CMAKE_COMMAND} --install ${P2P_WORK_DIR}/shared-build --prefix ${shared_prefix})
file(GLOB shared_libs ${shared_prefix}/lib/libmoosicbox_p2p*)
file(GLOB static_libs ${shared_prefix}/lib/*.a)
if(static_libs)
  message(FATAL_ERROR "the shared install also installs archives: ${static_libs}")
endif()
foreach(lib moosicbox_p2p moosicbox_p2p_sim)
  set(real ${shared_prefix}/lib/lib${lib}.so.0.1.0)
  if(NOT EXISTS ${real} OR NOT EXISTS ${shared_prefix}/lib/lib${lib}.so.0.1 OR NOT EXISTS ${shared_prefix}/lib/lib${lib}.so)
    message(FATAL_ERROR "expected lib${lib}.so -> .so.0.1 -> .so.0.1.0; the install has: ${shared_libs}")
  endif()
  run(readelf -d ${real})
  if(NOT run_output MATCHES "Library soname: \\[lib${lib}\\.so\\.0\\.1\\]")
    message(FATAL_ERROR "lib${lib}.so.0.1.0 has no SONAME lib${lib}.so.0.1:\n${run_output}")
  endif()
endforeach()
consume(shared -DCMAKE_PREFIX_PATH=${shared_prefix})
run(ldd ${P2P_WORK_DIR}/shared/consumer)
if(NOT run_output MATCHES "libmoosicbox_p2p\\.so\\.0\\.1")
  message(FATAL_ERROR "the shared consumer does not load libmoosicbox_p2p.so.0.1:\n${run_output}")
endif()
pc_consume(${shared_prefix} pc-shared)
