# Runs one example (-DEXAMPLE=<path>) with --fast for CTest: echoes its
# output (stdout and stderr, interleaved), then names a non-zero exit status,
# or the signal it died of, in a line the test's FAIL_REGULAR_EXPRESSION
# matches.
execute_process(
  COMMAND "${EXAMPLE}" --fast
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output
  RESULT_VARIABLE status)
message("${output}")
if(NOT status EQUAL 0)
  message("example exited with status ${status}")
endif()
