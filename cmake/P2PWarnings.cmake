# SPDX-License-Identifier: MIT OR Apache-2.0
# p2p_set_warnings(target): the project's warning set, errors when MOOSICBOX_P2P_WERROR is on, sanitizers when
# MOOSICBOX_P2P_SANITIZE is on.
if(MOOSICBOX_P2P_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

function(p2p_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wconversion -Wsign-conversion
    -Wimplicit-fallthrough -Wno-missing-field-initializers)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # g++ 12 reports false positives inside coroutine frames and libstdc++ internals.
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
    # g++ 12 pairs Boost.Asio's awaitable frame allocation and sized deallocation wrongly after
    # inlining (GCC PR 109224): a false -Wmismatched-new-delete at the end of coroutines.
    target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
    # g++ 12 at -O2 reports impossible sizes for std::string copies inlined from libstdc++
    # (-Wstringop-overflow, GCC PR 105651 family) in code that only appends strings.
    target_compile_options(${target} PRIVATE -Wno-stringop-overflow)
  endif()
  if(MOOSICBOX_P2P_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
