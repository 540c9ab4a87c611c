# install: headers, libraries, CLI, reign.pc and the CMake package reign::reign.
install(DIRECTORY include/reign DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS reign reign_static reign_sanitizer EXPORT reignTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET reign_cli)
  install(TARGETS reign_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# The pkg-config modules behind the PkgConfig::<X> targets the libraries link
# (REIGN_LINK_DEPS, from core/). Only the static library needs them:
#  - reign.pc has no Requires.private, since pkg-config walks it even for
#    --cflags, which would make every user of the shared library install
#    every backend's -dev package. Its Libs.private lists the dependencies'
#    own -l flags instead: `pkg-config --static --libs reign` links
#    libreign.a against the shared libcurl, libhiredis, ...
#  - reign-static.pc (Requires: reign; Requires.private: the modules) is for
#    a fully static link: `pkg-config --static --libs reign-static`.
#  - reign-config.cmake re-finds them only for reign::reign_static.
# A backend with a new dependency adds its module here.
set(_reign_pc_module_CURL libcurl)
set(_reign_pc_module_HIREDIS hiredis)
set(_reign_pc_module_PQ libpq)
set(_reign_pc_module_JANSSON jansson)
set(_reign_pc_module_CRYPTO libcrypto)
set(_reign_pc_module_SSL libssl)
set(REIGN_PC_REQUIRES_PRIVATE "")
set(REIGN_PC_LIBS_PRIVATE "")
set(REIGN_CONFIG_PKG_DEPS "")
foreach(dep IN LISTS REIGN_LINK_DEPS)
  if(NOT dep MATCHES "^PkgConfig::(.+)$")
    continue()
  endif()
  set(_prefix ${CMAKE_MATCH_1})
  if(NOT DEFINED _reign_pc_module_${_prefix})
    message(FATAL_ERROR "cmake/ReignInstall.cmake: add the pkg-config module of ${dep}")
  endif()
  list(APPEND REIGN_PC_REQUIRES_PRIVATE ${_reign_pc_module_${_prefix}})
  list(APPEND REIGN_PC_LIBS_PRIVATE ${${_prefix}_LDFLAGS})
  list(APPEND REIGN_CONFIG_PKG_DEPS "${_prefix}=${_reign_pc_module_${_prefix}}")
endforeach()
list(REMOVE_DUPLICATES REIGN_PC_REQUIRES_PRIVATE)
list(REMOVE_DUPLICATES REIGN_PC_LIBS_PRIVATE)
list(REMOVE_DUPLICATES REIGN_CONFIG_PKG_DEPS)
list(JOIN REIGN_PC_REQUIRES_PRIVATE ", " REIGN_PC_REQUIRES_PRIVATE)
list(JOIN REIGN_PC_LIBS_PRIVATE " " REIGN_PC_LIBS_PRIVATE)

# reign.pc is relocatable: its prefix is found from its own place
# (${pcfiledir}), so `cmake --install --prefix DIR` and DESTDIR give a
# working file without reconfiguring.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(REIGN_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(REIGN_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH _pc_up "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  string(REGEX REPLACE "/$" "" _pc_up "${_pc_up}")
  set(REIGN_PC_PREFIX "\${pcfiledir}/${_pc_up}")
  set(REIGN_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(REIGN_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(REIGN_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(cmake/reign.pc.in ${PROJECT_BINARY_DIR}/reign.pc @ONLY)
configure_file(cmake/reign-static.pc.in ${PROJECT_BINARY_DIR}/reign-static.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/reign.pc ${PROJECT_BINARY_DIR}/reign-static.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The examples the guide tells users to copy, with their standalone CMake
# project (examples/CMakeLists.txt finds an installed reign).
install(FILES examples/CMakeLists.txt examples/election_loop.c examples/shard_workers.c
              examples/test_with_noop.c examples/reign_ctypes.py
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

set(_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/reign)
install(EXPORT reignTargets NAMESPACE reign:: DESTINATION ${_cmakedir})
configure_package_config_file(cmake/reign-config.cmake.in
  ${PROJECT_BINARY_DIR}/reign-config.cmake INSTALL_DESTINATION ${_cmakedir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/reign-config-version.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/reign-config.cmake
              ${PROJECT_BINARY_DIR}/reign-config-version.cmake DESTINATION ${_cmakedir})
