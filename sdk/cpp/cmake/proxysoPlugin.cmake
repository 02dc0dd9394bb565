# proxyso_add_plugin(<target> SOURCES <file>...)
#
# Adds a proxyso plugin: a MODULE library (lib<target>.so, only ever dlopen'ed) linked to
# proxyso::sdk (proxyso.h and proxyso.hpp), built so that the host can load, replace and unload
# it (see proxyso.h, "Building"):
#   - C++17 (-std=c++17; set CXX_STANDARD / CXX_EXTENSIONS on the target afterwards to change it);
#   - -fvisibility=hidden and -fvisibility-inlines-hidden (C and C++);
#   - -fno-gnu-unique with GCC: otherwise a static of an inline function or template becomes an
#     STB_GNU_UNIQUE symbol and glibc never unloads the library (Clang emits none);
#   - a linker version script that exports proxyso_plugin and nothing else (template code from
#     libstdc++'s headers keeps default visibility whatever -fvisibility says);
#   - -Wl,-z,defs: an undefined symbol fails the link instead of the load inside the JVM.
# The proxyso flags are PRIVATE: add sources, definitions, options and libraries with the usual
# target_* commands.

set_property(GLOBAL PROPERTY PROXYSO_EXPORTS_MAP "${CMAKE_CURRENT_LIST_DIR}/proxyso-exports.map")

function(proxyso_add_plugin target)
    cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES")
    if(arg_UNPARSED_ARGUMENTS)
        message(FATAL_ERROR
            "proxyso_add_plugin(${target}): unknown arguments: ${arg_UNPARSED_ARGUMENTS} "
            "(usage: proxyso_add_plugin(<target> SOURCES <file>...))")
    endif()
    if(NOT arg_SOURCES)
        message(FATAL_ERROR
            "proxyso_add_plugin(${target}): no SOURCES "
            "(usage: proxyso_add_plugin(<target> SOURCES <file>...))")
    endif()
    get_property(map GLOBAL PROPERTY PROXYSO_EXPORTS_MAP)

    add_library(${target} MODULE ${arg_SOURCES})
    target_link_libraries(${target} PRIVATE proxyso::sdk)
    set_target_properties(${target} PROPERTIES
        CXX_STANDARD 17
        CXX_STANDARD_REQUIRED ON
        CXX_EXTENSIONS OFF
        C_VISIBILITY_PRESET hidden
        CXX_VISIBILITY_PRESET hidden
        VISIBILITY_INLINES_HIDDEN ON
        # proxyso's headers as -I, not -isystem: they are meant to compile warning-free under
        # the plugin's own -Wall -Wextra -pedantic -Werror.
        NO_SYSTEM_FROM_IMPORTED ON
        LINK_DEPENDS "${map}")
    target_compile_options(${target} PRIVATE
        $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-fno-gnu-unique>)
    target_link_options(${target} PRIVATE
        "LINKER:--version-script=${map}"
        "LINKER:-z,defs")
endfunction()
