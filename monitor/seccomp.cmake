# seccomp.cmake: the seccomp filters of `ember` (issue 6). seccomp_gen (a
# build-time tool, libseccomp) writes the filters as BPF into seccomp_bpf.h;
# seccomp_filter.c, part of ember_monitor, installs them with one system
# call and needs no libseccomp at run time. Included by monitor/CMakeLists.txt.
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)

add_executable(ember_seccomp_gen ${CMAKE_CURRENT_LIST_DIR}/seccomp_gen.c)
# A build tool: no sanitizers, whatever EMBER_SANITIZE says. libseccomp's
# SCMP_A*_64() macros leave a field of the struct they build to be zeroed,
# which clang's -Wextra reports.
target_compile_options(ember_seccomp_gen PRIVATE -Wall -Wextra -Werror
  $<$<C_COMPILER_ID:Clang>:-Wno-missing-field-initializers>)
target_include_directories(ember_seccomp_gen PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(ember_seccomp_gen PRIVATE PkgConfig::SECCOMP)

# Generated into gen/monitor/ so that it is included as "monitor/seccomp_bpf.h".
set(EMBER_SECCOMP_GEN_ROOT ${CMAKE_BINARY_DIR}/gen)
set(EMBER_SECCOMP_GEN_DIR ${EMBER_SECCOMP_GEN_ROOT}/monitor)
add_custom_command(
  OUTPUT ${EMBER_SECCOMP_GEN_DIR}/seccomp_bpf.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${EMBER_SECCOMP_GEN_DIR}
  COMMAND ember_seccomp_gen ${EMBER_SECCOMP_GEN_DIR}/seccomp_bpf.h
  DEPENDS ember_seccomp_gen ${CMAKE_CURRENT_LIST_DIR}/seccomp_gen.c
          ${CMAKE_CURRENT_LIST_DIR}/seccomp_placeholders.h
  COMMENT "Generating ember's seccomp filters")
add_custom_target(ember_seccomp_bpf DEPENDS ${EMBER_SECCOMP_GEN_DIR}/seccomp_bpf.h)

target_sources(ember_monitor PRIVATE ${CMAKE_CURRENT_LIST_DIR}/seccomp_filter.c)
target_include_directories(ember_monitor PRIVATE ${EMBER_SECCOMP_GEN_ROOT})
add_dependencies(ember_monitor ember_seccomp_bpf)
