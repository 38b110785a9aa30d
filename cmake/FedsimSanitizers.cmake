# Sanitizer and fuzzing switches (docs/fuzzing.md).
#
# FEDSIM_SANITIZE: a -fsanitize= list applied to every target of the tree,
#   e.g. "address,undefined" (scripts/build --asan) or "thread"
#   (scripts/build --tsan). Empty (the default) changes nothing.
# FEDSIM_FUZZ: build the libFuzzer targets of tests/fuzz/ with
#   -fsanitize=fuzzer,address,undefined; needs clang (scripts/fuzz uses
#   clang-16). The corpus-replay tests of tests/fuzz/ are built either way.

set(FEDSIM_SANITIZE "" CACHE STRING
    "Sanitizers for the whole build: address,undefined or thread (empty: none)")
option(FEDSIM_FUZZ "Build the libFuzzer targets of tests/fuzz (clang only)" OFF)

# Sanitized training runs many times slower (the ASan+UBSan quickstart e2e
# test did not finish its first run in 600 s): tests get this many times
# their timeout (a test's own TIMEOUT also overrides `ctest --timeout`).
set(FEDSIM_SANITIZER_TIMEOUT_FACTOR 1)
set(FEDSIM_SANITIZER_TEST_ENV "")
if(FEDSIM_SANITIZE)
  set(FEDSIM_SANITIZER_TIMEOUT_FACTOR 10)
  if(FEDSIM_SANITIZE MATCHES "thread" AND FEDSIM_SANITIZE MATCHES "address")
    message(FATAL_ERROR "FEDSIM_SANITIZE: thread and address cannot be combined")
  endif()
  # -fno-sanitize-recover: a UBSan finding ends the process, so a test that
  # trips one fails instead of printing and passing.
  add_compile_options(-fsanitize=${FEDSIM_SANITIZE} -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -g1)
  add_link_options(-fsanitize=${FEDSIM_SANITIZE})
  message(STATUS "fedsim: sanitizers ${FEDSIM_SANITIZE}")
  # The runtime options every test runs with (fedsim_add_test), so that a
  # plain `ctest` in the sanitizer build checks what docs/fuzzing.md says;
  # child processes the tests start inherit them. A sanitizer report ends a
  # process with exit 66 (TSan) or 1, which fails the test.
  set(_supp ${PROJECT_SOURCE_DIR}/tests/sanitizers)
  if(FEDSIM_SANITIZE MATCHES "thread")
    # history_size=4: enough memory of past accesses that the second stack of
    # a report is there to be matched against the suppressions.
    set(FEDSIM_SANITIZER_TEST_ENV ENVIRONMENT
        "TSAN_OPTIONS=suppressions=${_supp}/tsan.supp second_deadlock_stack=1 ignore_noninstrumented_modules=1 history_size=4")
  else()
    # One variable only: gtest_discover_tests splits a list-valued property.
    # Leak detection is ASan's default on Linux; LSan needs the suppressions.
    set(FEDSIM_SANITIZER_TEST_ENV ENVIRONMENT
        "LSAN_OPTIONS=suppressions=${_supp}/lsan.supp print_suppressions=0")
  endif()
  if(FEDSIM_SANITIZE MATCHES "thread")
    # Debian's Abseil is not built with TSan: teach TSan what its Mutex,
    # CondVar and Notification order (see the file). Every target links it.
    add_library(fedsim_tsan_absl OBJECT ${PROJECT_SOURCE_DIR}/tests/sanitizers/tsan_absl.cc)
    target_link_libraries(fedsim_tsan_absl PUBLIC absl::synchronization ${CMAKE_DL_LIBS})
    link_libraries(fedsim_tsan_absl)
  endif()
endif()

if(FEDSIM_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "FEDSIM_FUZZ=ON needs clang (libFuzzer); "
                        "use scripts/fuzz or -DCMAKE_CXX_COMPILER=clang++-16")
  endif()
  if(FEDSIM_SANITIZE)
    message(FATAL_ERROR "FEDSIM_FUZZ instruments the whole tree itself; leave FEDSIM_SANITIZE empty")
  endif()
  # The libraries the targets call get coverage and ASan/UBSan too; only the
  # fuzz executables link libFuzzer's main (tests/fuzz/CMakeLists.txt).
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
                      -fno-sanitize-recover=all -fno-omit-frame-pointer -gline-tables-only)
  add_link_options(-fsanitize=address,undefined)
endif()
