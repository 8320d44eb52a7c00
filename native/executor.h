#ifndef HAKO_EXECUTOR_H
#define HAKO_EXECUTOR_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
/* Runs the plan in the freshly cloned child. Never returns: it execs or exits. */
void hako_run_plan(const unsigned char *buf, size_t len, int sync_fd);
#ifdef __cplusplus
}
#endif
#endif
