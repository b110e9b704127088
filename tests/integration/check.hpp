// A failed check prints rank, file and line and ends the rank with status 1, which
// makes ipcrun stop the job and fail the test.
#pragma once

#include <cstdio>
#include <cstdlib>

#define IT_CHECK(rank, cond, ...)                                                            \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "rank %d: %s:%d: check failed: %s: ", (rank), __FILE__, __LINE__, \
                   #cond);                                                                   \
      std::fprintf(stderr, __VA_ARGS__);                                                     \
      std::fprintf(stderr, "\n");                                                            \
      std::fflush(stderr);                                                                   \
      std::exit(1);                                                                          \
    }                                                                                        \
  } while (0)
