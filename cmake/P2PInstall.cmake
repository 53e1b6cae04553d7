# SPDX-License-Identifier: MIT OR Apache-2.0
# Installs the headers, the layer libraries and a CMake package (find_package(moosicbox_p2p) gives
# moosicbox_p2p::p2p and moosicbox_p2p::sim) plus a pkg-config file.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(P2P_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/moosicbox_p2p)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/moosicbox DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Dual-licensed MIT OR Apache-2.0: both texts go with the package.
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE-MIT ${PROJECT_SOURCE_DIR}/LICENSE-APACHE
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/moosicbox/p2p/build_config.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/moosicbox/p2p)

set_target_properties(moosicbox_p2p_asio PROPERTIES EXPORT_NAME asio)
set(p2p_export_targets moosicbox_p2p_asio moosicbox_p2p ${P2P_LAYERS})
if(TARGET moosicbox_p2p_with_sim)
  list(APPEND p2p_export_targets moosicbox_p2p_with_sim)
endif()
install(TARGETS ${p2p_export_targets} EXPORT moosicbox_p2p_targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
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

# pkg-config: static layers in dependency order (highest first).
set(P2P_PC_LIBS "")
foreach(layer router endpoint relay discovery quic sim env core)
  if(TARGET moosicbox_p2p_${layer})
    string(APPEND P2P_PC_LIBS " -lmoosicbox_p2p_${layer}")
  endif()
endforeach()
# The .pc file locates the prefix relative to itself, so an install moved with --prefix still works.
file(RELATIVE_PATH P2P_PC_PREFIX_FROM_PCDIR /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(${PROJECT_SOURCE_DIR}/cmake/moosicbox_p2p.pc.in ${PROJECT_BINARY_DIR}/moosicbox_p2p.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/moosicbox_p2p.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
