#ifndef HAKO_EXECUTOR_H
#define HAKO_EXECUTOR_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
/* Runs the plan in the freshly cloned child. Never returns: it execs or exits. */
void hako_run_plan(const unsigned char *buf, size_t len, int sync_fd);
/* Places the container's fds (fd_from[i] -> fd_to[i]), then runs the plan. */
void hako_child_main(const unsigned char *buf, size_t len, int sync_fd, const int *fd_from, const int *fd_to,
                     int nfds);
#ifdef __cplusplus
}
#endif
#endif
