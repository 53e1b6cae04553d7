# SPDX-License-Identifier: MIT OR Apache-2.0
# Finds every external dependency once, as imported targets the layers link.
find_package(Threads REQUIRED)
find_package(Boost 1.81 CONFIG REQUIRED COMPONENTS json)
find_package(fmt 9 CONFIG REQUIRED)
find_package(spdlog 1.10 CONFIG REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET GLOBAL libsodium>=1.0.18)
# ngtcp2 1.11 comes from bookworm-backports (bookworm has 0.12); scripts/install-deps.sh sets that up.
pkg_check_modules(NGTCP2 QUIET IMPORTED_TARGET GLOBAL libngtcp2>=1.11 libngtcp2_crypto_gnutls>=1.11)
if(NOT NGTCP2_FOUND)
  message(FATAL_ERROR "ngtcp2 >= 1.11 and ngtcp2_crypto_gnutls >= 1.11 are required: run scripts/install-deps.sh "
                      "(installs them from bookworm-backports)")
endif()
pkg_check_modules(GNUTLS REQUIRED IMPORTED_TARGET GLOBAL gnutls>=3.7)
# OpenSSL carries the relay's TLS (https / wss through Boost.Asio's ssl streams).
find_package(OpenSSL 3 REQUIRED)

# Boost.Asio is header-only and appears in public signatures (awaitable), so it is a public
# dependency of every layer.
if(NOT TARGET moosicbox_p2p_asio)
  add_library(moosicbox_p2p_asio INTERFACE)
  target_link_libraries(moosicbox_p2p_asio INTERFACE Boost::headers Threads::Threads)
  target_compile_definitions(moosicbox_p2p_asio INTERFACE BOOST_ASIO_NO_DEPRECATED)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    target_compile_definitions(moosicbox_p2p_asio INTERFACE BOOST_ASIO_HAS_CO_AWAIT=1 BOOST_ASIO_HAS_STD_COROUTINE=1)
  endif()
endif()

if(MOOSICBOX_P2P_BUILD_TESTS)
  find_package(GTest 1.12 CONFIG REQUIRED)
  find_package(rapidcheck CONFIG REQUIRED)
endif()
if(MOOSICBOX_P2P_BUILD_BENCH)
  find_package(benchmark 1.7 CONFIG REQUIRED)
endif()
if(MOOSICBOX_P2P_BUILD_TOOLS)
  find_package(CLI11 2.1 CONFIG REQUIRED)
endif()
