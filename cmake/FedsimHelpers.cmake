# Per-folder helpers, in the spirit of Abseil's absl_cc_library.

set(FEDSIM_WARNINGS -Wall -Wextra)

# fedsim_add_library(NAME <name> SRCS ... DEPS ...)
#   Creates the static library fedsim_<name> with the repository root on its
#   include path (so every include reads "ml/model.h").
function(fedsim_add_library)
  cmake_parse_arguments(A "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(fedsim_${A_NAME} STATIC ${A_SRCS})
  target_include_directories(fedsim_${A_NAME} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_compile_options(fedsim_${A_NAME} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${FEDSIM_WARNINGS}>)
  if(FEDSIM_NATIVE)
    target_compile_options(fedsim_${A_NAME} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
  endif()
  target_link_libraries(fedsim_${A_NAME} PUBLIC ${A_DEPS})
endfunction()

# fedsim_add_test(NAME <name> SRCS ... DEPS ... [LABELS ...] [TIMEOUT s])
#   A GoogleTest binary registered with ctest, one ctest entry per test case.
function(fedsim_add_test)
  if(NOT FEDSIM_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(A "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${A_NAME} ${A_SRCS})
  target_include_directories(${A_NAME} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_compile_options(${A_NAME} PRIVATE ${FEDSIM_WARNINGS})
  if(FEDSIM_NATIVE)
    target_compile_options(${A_NAME} PRIVATE -march=native)
  endif()
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  math(EXPR A_TIMEOUT "${A_TIMEOUT} * ${FEDSIM_SANITIZER_TIMEOUT_FACTOR}")
  # (An empty LABELS value would vanish from the generated list and take the
  # next property's name as its value, so it is only passed when set.)
  # Tests keep their decompressed-data cache (data/idx_cache.h) in the build
  # tree, not in the user's home.
  set(props TIMEOUT ${A_TIMEOUT} ${FEDSIM_SANITIZER_TEST_ENV}
      ENVIRONMENT_MODIFICATION "FEDSIM_CACHE_DIR=set:${PROJECT_BINARY_DIR}/test-cache")
  if(A_LABELS)
    list(APPEND props LABELS "${A_LABELS}")
  endif()
  include(GoogleTest)
  gtest_discover_tests(${A_NAME}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES ${props}
    DISCOVERY_TIMEOUT 60)
endfunction()
