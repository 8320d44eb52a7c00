#ifndef HAKO_SPAWN_H
#define HAKO_SPAWN_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
/* The clone sequence of a container process, shared by the addon (node is the
 * parent) and the front (bin/hako is the parent): join the parent-side pid and
 * time namespaces around clone, clone3 with a pidfd (born in the cgroup when a
 * cgroup v2 dir fd is given), and run hako_child_exec in the child. */
#define HAKO_SPAWN_MAX_NS 8

struct hako_spawn {
  uint64_t clone_flags; /* the plan's namespace flags */
  int init_fd;          /* the sealed hako-init */
  int plan_fd;          /* the sealed plan */
  int sync_fd;          /* the child's end of the sync socket */
  const int *fd_from;   /* the container's fds: fd_from[i] becomes fd_to[i] */
  const int *fd_to;
  int nfds;
  const int *ns_fd;   /* namespaces joined around clone (nsproxy is per thread) */
  const int *ns_type; /* CLONE_NEWPID or CLONE_NEWTIME: the caller says which, the fd does not */
  int nns;
  int cgroup_fd;   /* a cgroup v2 directory, or -1 */
  int child_flags; /* HAKO_CHILD_* of child.h */
};

struct hako_spawned {
  int pid;
  int pidfd;
  int cgroup_errno; /* 0: born in the cgroup; -1: no cgroup fd; else clone3's errno with CLONE_INTO_CGROUP */
  int failed_ns;    /* the namespace that could not be joined (-errno returned), else -1 */
  int failed_save;  /* 1: our own namespace could not be saved before joining failed_ns */
};

/* 0, or -errno (failed_ns/failed_save say which step when a namespace failed;
 * else clone failed). Nothing is left joined and no fd of s is closed. */
int hako_spawn(const struct hako_spawn *s, struct hako_spawned *out);
#ifdef __cplusplus
}
#endif
#endif
