# proxyso's CMake package, installed by sdk/cpp/CMakeLists.txt:
#   find_package(proxyso 1 CONFIG REQUIRED)       # 1: the ABI version
#   proxyso_add_plugin(<target> SOURCES <file>...)
# defines the target proxyso::sdk (include/proxyso.h and include/proxyso.hpp) and the function
# proxyso_add_plugin (proxysoPlugin.cmake).

# <prefix>/lib/cmake/proxyso -> <prefix>
get_filename_component(_proxyso_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT EXISTS "${_proxyso_prefix}/include/proxyso.hpp")
    set(proxyso_FOUND FALSE)
    set(proxyso_NOT_FOUND_MESSAGE
        "proxyso.hpp is missing from ${_proxyso_prefix}/include: a broken installation")
    return()
endif()
if(NOT TARGET proxyso::sdk)
    add_library(proxyso::sdk INTERFACE IMPORTED)
    set_target_properties(proxyso::sdk PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${_proxyso_prefix}/include")
endif()
unset(_proxyso_prefix)
include("${CMAKE_CURRENT_LIST_DIR}/proxysoPlugin.cmake")
