# SPDX-License-Identifier: MIT OR Apache-2.0
# run_packaging_test.cmake: install, then build and run the consumer with CMake and with pkg-config.
file(REMOVE_RECURSE ${P2P_WORK_DIR})
set(prefix ${P2P_WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGV}\n${out}\n${err}")
  endif()
endfunction()

run(${CMAKE_COMMAND} --install ${P2P_BINARY_DIR} --prefix ${prefix})
# The package carries both licence texts.
foreach(licence LICENSE-MIT LICENSE-APACHE)
  if(NOT EXISTS ${prefix}/share/doc/moosicbox_p2p/${licence})
    message(FATAL_ERROR "the install has no share/doc/moosicbox_p2p/${licence}")
  endif()
endforeach()
run(${CMAKE_COMMAND} -S ${P2P_CONSUMER_DIR} -B ${P2P_WORK_DIR}/cmake-build -G ${P2P_GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${P2P_WORK_DIR}/cmake-build)
run(${P2P_WORK_DIR}/cmake-build/consumer)
run(${P2P_WORK_DIR}/cmake-build/consumer_sim)

# pkg-config consumer: one compiler line from the .pc file.
find_program(PKG_CONFIG pkg-config REQUIRED)
set(ENV{PKG_CONFIG_PATH} ${prefix}/lib/pkgconfig:${prefix}/lib/x86_64-linux-gnu/pkgconfig)
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs moosicbox_p2p OUTPUT_VARIABLE flags
                RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config does not know moosicbox_p2p")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
run(c++ ${P2P_CONSUMER_DIR}/consumer.cpp -o ${P2P_WORK_DIR}/pc-consumer ${flags})
run(${P2P_WORK_DIR}/pc-consumer)
