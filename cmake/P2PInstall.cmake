# SPDX-License-Identifier: MIT OR Apache-2.0
# Installs the headers, the libraries (the layer archives, or with BUILD_SHARED_LIBS=ON
# libmoosicbox_p2p.so and libmoosicbox_p2p_sim.so), a CMake package (find_package(moosicbox_p2p), and
# find_package(moosicbox-p2p) forwarding to it, give moosicbox_p2p::p2p and moosicbox_p2p::sim) and
# two pkg-config files: moosicbox_p2p (the library) and moosicbox_p2p_sim (adds the simulator).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(P2P_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/moosicbox_p2p)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/moosicbox DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Dual-licensed MIT OR Apache-2.0: both texts go with the package.
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE-MIT ${PROJECT_SOURCE_DIR}/LICENSE-APACHE
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/moosicbox/p2p/build_config.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/moosicbox/p2p)

set_target_properties(moosicbox_p2p_asio PROPERTIES EXPORT_NAME asio)
set(p2p_export_targets moosicbox_p2p_asio moosicbox_p2p ${P2P_INSTALL_LIBS})
if(TARGET moosicbox_p2p_with_sim)
  list(APPEND p2p_export_targets moosicbox_p2p_with_sim)
endif()
install(TARGETS ${p2p_export_targets} EXPORT moosicbox_p2p_targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT moosicbox_p2p_targets NAMESPACE moosicbox_p2p:: FILE moosicbox_p2p-targets.cmake
  DESTINATION ${P2P_CMAKE_DIR})
export(EXPORT moosicbox_p2p_targets NAMESPACE moosicbox_p2p:: FILE ${PROJECT_BINARY_DIR}/moosicbox_p2p-targets.cmake)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/moosicbox_p2p-config.cmake.in
  ${PROJECT_BINARY_DIR}/moosicbox_p2p-config.cmake INSTALL_DESTINATION ${P2P_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/moosicbox_p2p-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/moosicbox_p2p-config.cmake
              ${PROJECT_BINARY_DIR}/moosicbox_p2p-config-version.cmake
        DESTINATION ${P2P_CMAKE_DIR})

# find_package(moosicbox-p2p), the project's name, forwards to the package, versions included.
set(P2P_ALIAS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/moosicbox-p2p)
configure_file(${PROJECT_SOURCE_DIR}/cmake/moosicbox-p2p-config.cmake.in
  ${PROJECT_BINARY_DIR}/alias/moosicbox-p2p-config.cmake @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/alias/moosicbox-p2p-config.cmake DESTINATION ${P2P_ALIAS_CMAKE_DIR})
install(FILES ${PROJECT_BINARY_DIR}/moosicbox_p2p-config-version.cmake DESTINATION ${P2P_ALIAS_CMAKE_DIR}
        RENAME moosicbox-p2p-config-version.cmake)

# pkg-config: moosicbox_p2p is the library without the simulator; moosicbox_p2p_sim adds it. Static
# archives are listed in dependency order (highest first).
if(BUILD_SHARED_LIBS)
  set(P2P_PC_LIBS " -lmoosicbox_p2p")
  set(P2P_PC_PRIVATE_REQUIRES "fmt libsodium libngtcp2 libngtcp2_crypto_gnutls gnutls libssl libcrypto spdlog")
  set(P2P_PC_REQUIRES "fmt spdlog")
else()
  set(P2P_PC_LIBS "")
  foreach(layer router discovery endpoint magicsock relay quic simnet env core)
    if(TARGET moosicbox_p2p_${layer})
      string(APPEND P2P_PC_LIBS " -lmoosicbox_p2p_${layer}")
    endif()
  endforeach()
  set(P2P_PC_PRIVATE_REQUIRES "")
  set(P2P_PC_REQUIRES "fmt libsodium libngtcp2 libngtcp2_crypto_gnutls gnutls libssl libcrypto spdlog")
endif()
# The .pc file locates the prefix relative to itself, so an install moved with --prefix still works.
file(RELATIVE_PATH P2P_PC_PREFIX_FROM_PCDIR /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(${PROJECT_SOURCE_DIR}/cmake/moosicbox_p2p.pc.in ${PROJECT_BINARY_DIR}/moosicbox_p2p.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/moosicbox_p2p.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(TARGET moosicbox_p2p_sim)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/moosicbox_p2p_sim.pc.in ${PROJECT_BINARY_DIR}/moosicbox_p2p_sim.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/moosicbox_p2p_sim.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()
