# Compiles SOURCE with COMPILER (C++20, syntax only, warnings as errors;
# INCLUDE and EXAMPLES on the include path). With EXPECT set, the compilation
# must fail with a message matching it; without, it must succeed.
#
#   cmake -DCOMPILER=... -DSOURCE=... -DINCLUDE=... -DEXAMPLES=... [-DEXPECT=regex]
#         -P compile.cmake
execute_process(
  COMMAND "${COMPILER}" -std=c++20 -fsyntax-only -Wall -Werror "-I${INCLUDE}" "-I${EXAMPLES}"
          "${SOURCE}"
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
if(NOT DEFINED EXPECT OR EXPECT STREQUAL "")
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${SOURCE} should compile:\n${output}")
  endif()
elseif(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled; it should fail with \"${EXPECT}\"")
elseif(NOT output MATCHES "${EXPECT}")
  message(FATAL_ERROR "${SOURCE} failed without \"${EXPECT}\":\n${output}")
endif()
