# Compiles SOURCE with COMPILER (C++20, INCLUDE on the include path, syntax
# only). With EXPECT set, the compilation must fail with a message matching
# it; without, it must succeed.
#
#   cmake -DCOMPILER=... -DSOURCE=... -DINCLUDE=... [-DEXPECT=regex] -P compile.cmake
execute_process(
  COMMAND "${COMPILER}" -std=c++20 -fsyntax-only "-I${INCLUDE}" "${SOURCE}"
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
