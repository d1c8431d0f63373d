# Helper functions used by every folder of the build.

# myelin_add_plugin(NAME SOURCES a.c b.c [LIBS x y] [INCLUDES d])
# Builds lib/myelin/plugins/NAME.so from the sources and installs it.
function(myelin_add_plugin name)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS;INCLUDES" ${ARGN})
  add_library(plugin_${name} MODULE ${P_SOURCES})
  set_target_properties(plugin_${name} PROPERTIES
    OUTPUT_NAME ${name} PREFIX ""
    LIBRARY_OUTPUT_DIRECTORY ${MYELIN_PLUGIN_OUTPUT_DIR}
    C_VISIBILITY_PRESET hidden
    INSTALL_RPATH "$ORIGIN/../..")
  target_link_libraries(plugin_${name} PRIVATE myelin ${P_LIBS})
  if(P_INCLUDES)
    target_include_directories(plugin_${name} PRIVATE ${P_INCLUDES})
  endif()
  install(TARGETS plugin_${name} LIBRARY DESTINATION ${MYELIN_INSTALL_PLUGINDIR})
endfunction()

# myelin_add_test(NAME SOURCES a.c [LIBS x] [INCLUDES d] [TIMEOUT s])
# A Check suite run by ctest. The environment tells it where things are:
#   MYELIN_BIN          the myelin CLI of this build
#   MYELIN_PLUGIN_PATH  this build's plugin folder
#   MYELIN_SOURCE_DIR   the source tree (pipelines/, tests/data/, ...)
#   MYELIN_BUILD_DIR    the build tree
#   MYELIN_PYTHON       /usr/bin/python3 (reference checks; skip if unusable)
#   MYELIN_SKIP_FILE    BUILD/test-skips.txt: one `SKIP: suite:test: reason`
#                       line per skipped check (tests/testutil.h, counted by
#                       tests/run.sh)
function(myelin_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;INCLUDES" ${ARGN})
  add_executable(test_${name} ${T_SOURCES})
  target_link_libraries(test_${name} PRIVATE myelin PkgConfig::CHECK Threads::Threads m ${T_LIBS})
  target_include_directories(test_${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests ${T_INCLUDES})
  add_test(NAME ${name} COMMAND test_${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} ENVIRONMENT
    "MYELIN_BIN=${CMAKE_BINARY_DIR}/bin/myelin;MYELIN_PLUGIN_PATH=${MYELIN_PLUGIN_OUTPUT_DIR};MYELIN_SOURCE_DIR=${CMAKE_SOURCE_DIR};MYELIN_SKIP_FILE=${CMAKE_BINARY_DIR}/test-skips.txt;MYELIN_BUILD_DIR=${CMAKE_BINARY_DIR};MYELIN_PYTHON=/usr/bin/python3;CK_DEFAULT_TIMEOUT=${T_TIMEOUT};LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lsan.supp:print_suppressions=0")
endfunction()
