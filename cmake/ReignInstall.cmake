# install: headers, libraries, CLI, reign.pc and the CMake package reign::reign.
install(DIRECTORY include/reign DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS reign reign_static reign_sanitizer EXPORT reignTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET reign_cli)
  install(TARGETS reign_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

set(REIGN_PC_REQUIRES_PRIVATE "libcurl")
if(REIGN_WITH_REDIS)
  string(APPEND REIGN_PC_REQUIRES_PRIVATE " hiredis")
endif()
configure_file(cmake/reign.pc.in ${PROJECT_BINARY_DIR}/reign.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/reign.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

set(_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/reign)
install(EXPORT reignTargets NAMESPACE reign:: DESTINATION ${_cmakedir})
configure_package_config_file(cmake/reign-config.cmake.in
  ${PROJECT_BINARY_DIR}/reign-config.cmake INSTALL_DESTINATION ${_cmakedir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/reign-config-version.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/reign-config.cmake
              ${PROJECT_BINARY_DIR}/reign-config-version.cmake DESTINATION ${_cmakedir})
