# ctest script: fails when an object of the reproducible copy of the numeric
# kernels defines a global symbol that is not that copy's own.
#
# The two copies are compiled with different instruction sets into one
# binary. An inline function or template instantiation defined by both
# (std::vector<float>'s growth path, say) is a weak symbol: the linker keeps
# one definition for the whole program, so one copy would silently run code
# built for the other's instruction set (other bits, or SIGILL on an older
# CPU). ml/variant_namespace.h explains how the code avoids that; this check
# proves it on the built objects. Every global symbol must mention the copy's
# namespace (fedsim::repro, mangled "6fedsim5repro") or its Eigen
# (EigenRepro, mangled "10EigenRepro").
#
#   cmake -DNM=<nm> -DOBJECTS=<a.o|b.o|...> -P check_variant_symbols.cmake
if(NOT NM OR NOT OBJECTS)
  message(FATAL_ERROR "usage: cmake -DNM=<nm> -DOBJECTS=<a.o|b.o> -P check_variant_symbols.cmake")
endif()
string(REPLACE "|" ";" objects "${OBJECTS}")
set(foreign "")
set(checked 0)
foreach(obj IN LISTS objects)
  execute_process(COMMAND ${NM} --defined-only --extern-only ${obj}
                  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${obj}: ${err}")
  endif()
  # Mangled names hold no list separators or brackets.
  string(REGEX MATCHALL "[^\n]+" lines "${out}")
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "^[0-9a-fA-F]* *[A-Za-z] (.+)$")
      continue()
    endif()
    set(sym "${CMAKE_MATCH_1}")
    math(EXPR checked "${checked} + 1")
    if(sym MATCHES "6fedsim5repro|10EigenRepro")
      continue()
    endif()
    # The exception-handling personality pointer: the same data in every object.
    if(sym STREQUAL "DW.ref.__gxx_personality_v0")
      continue()
    endif()
    # Type info objects and names (_ZTI, _ZTS): data, the same in every object,
    # no code. UBSan's vptr check emits them for the shared interfaces
    # (ParamUpdater, LogitLoss) in every object that uses them. Vtables
    # (_ZTV) point at code and stay checked.
    if(sym MATCHES "^_ZT[IS]")
      continue()
    endif()
    execute_process(COMMAND c++filt "${sym}" OUTPUT_VARIABLE pretty
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    string(APPEND foreign "  ${obj}: ${pretty}\n")
  endforeach()
endforeach()
if(checked EQUAL 0)
  message(FATAL_ERROR "no symbols found in ${OBJECTS}")
endif()
if(foreign)
  message(FATAL_ERROR "the reproducible copy defines symbols outside fedsim::repro and "
                      "EigenRepro, which the native copy may share:\n${foreign}"
                      "Keep them in the copy's namespace (Scratch<T> for containers; see "
                      "ml/variant_namespace.h).")
endif()
message(STATUS "${checked} global symbols, all private to the reproducible copy")
