# The monitor's page, embedded in the myelin binary (included by
# runtime/CMakeLists.txt; sets MYELIN_MONITOR_PAGE_C).
#
# web/ is an npm project: its JavaScript (uPlot) comes from npm packages
# pinned by web/package-lock.json, bundled at build time by esbuild (also from
# npm) into one page with no outside reference, so it works offline. The
# build runs build_page.cmake, which copies web/ into the build tree, runs
# `npm ci` there (only when the lock file changed), bundles, inlines the
# bundle into web/src/index.html and writes the page as a C array. Without
# node/npm, or when npm ci or the bundler fails (offline, no cache), the page
# is built from web/src/fallback.js instead: tables of the same numbers,
# refreshed from /api/stats, with a note saying why there are no plots; the
# build never fails for it.
find_program(MYELIN_NODE NAMES node nodejs)
find_program(MYELIN_NPM NAMES npm)
if(NOT MYELIN_NODE OR NOT MYELIN_NPM)
  message(WARNING "monitor: node/npm not found: the monitor page will have no plots "
                  "(install Debian's nodejs and npm, then re-run cmake)")
endif()
set(_web ${CMAKE_CURRENT_SOURCE_DIR}/monitor/web)
file(GLOB _web_src ${_web}/src/*)
set(MYELIN_MONITOR_PAGE_C ${CMAKE_CURRENT_BINARY_DIR}/monitor_page.c)
add_custom_command(
  OUTPUT ${MYELIN_MONITOR_PAGE_C}
  COMMAND ${CMAKE_COMMAND} -DWEB=${_web} -DWORK=${CMAKE_CURRENT_BINARY_DIR}/monitor-web
          -DOUT=${MYELIN_MONITOR_PAGE_C} -DNODE=${MYELIN_NODE} -DNPM=${MYELIN_NPM}
          -P ${CMAKE_CURRENT_SOURCE_DIR}/monitor/build_page.cmake
  DEPENDS ${_web}/package.json ${_web}/package-lock.json ${_web_src}
          ${CMAKE_CURRENT_SOURCE_DIR}/monitor/build_page.cmake
  COMMENT "monitor page: npm ci + esbuild, embedded as a C array"
  VERBATIM)
