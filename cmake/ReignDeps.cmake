# Third-party dependencies; a missing one fails naming the Debian package.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

macro(reign_require_pkg var module debian)
  pkg_check_modules(${var} IMPORTED_TARGET ${module})
  if(NOT ${var}_FOUND)
    message(FATAL_ERROR "reign needs ${module}: apt-get install ${debian}")
  endif()
endmacro()

reign_require_pkg(CURL libcurl libcurl4-openssl-dev)
if(REIGN_WITH_REDIS)
  reign_require_pkg(HIREDIS hiredis libhiredis-dev)
endif()
if(REIGN_BUILD_TESTS)
  reign_require_pkg(CMOCKA cmocka libcmocka-dev)
endif()
