#include <unistd.h>
#include <sys/syscall.h>
void _start(void) {
  syscall(SYS_exit_group, 0);
}
