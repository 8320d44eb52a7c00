// The N-API face of the C core: clone the child that runs a launch plan, talk
// to it over its sync socket, wait for processes, pass fds over unix sockets.
// Everything a container gets is decided in TypeScript; this file only moves
// bytes and fds.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/seccomp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "child.h"
#include "fdpass.h"
#include "plan_format.h"
#include "spawn.h"

namespace hako {
void RegisterPlannerLink(Napi::Env env, Napi::Object exports); // planner_link.cc
}

namespace {

// hako-init, copied once per runtime process into a sealed memfd: what every
// container process executes first. Sealed, it cannot be rewritten through
// /proc/PID/exe by anything in a container (runc CVE-2019-5736).
int g_init_fd = -1;

Napi::Value ThrowErrno(Napi::Env env, const std::string &what, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// A sealed memfd holding data: written once, then neither writable, growable,
// shrinkable nor unsealable. -errno on failure.
int SealedMemfd(const char *name, const void *data, size_t len, int from_fd) {
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -errno;
  if (from_fd >= 0) {
    off_t off = 0;
    while (len > 0) {
      ssize_t n = sendfile(fd, from_fd, &off, len);
      if (n <= 0) {
        int e = n < 0 ? errno : EIO;
        close(fd);
        return -e;
      }
      len -= (size_t)n;
    }
  } else {
    const char *p = (const char *)data;
    while (len > 0) {
      ssize_t n = write(fd, p, len);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int e = n < 0 ? errno : EIO;
        close(fd);
        return -e;
      }
      p += n;
      len -= (size_t)n;
    }
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

// loadInit(path): copies hako-init into the sealed memfd spawn() executes.
Napi::Value LoadInit(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (g_init_fd >= 0) return env.Undefined();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int src = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) return ThrowErrno(env, "open " + path, errno);
  struct stat sb;
  if (fstat(src, &sb) < 0 || !S_ISREG(sb.st_mode)) {
    close(src);
    return ThrowErrno(env, "open " + path, EINVAL);
  }
  int fd = SealedMemfd("hako-init", nullptr, (size_t)sb.st_size, src);
  close(src);
  if (fd < 0) return ThrowErrno(env, "copy " + path + " into a sealed memfd", -fd);
  g_init_fd = fd;
  return env.Undefined();
}

// spawn(plan, cloneFlags, parentNs, fdFrom, fdTo, cgroupFd, childFlags) -> { pid, pidfd, fd, cgroupErrno }
// parentNs: [{ path, type }], type "pid" or "time": namespaces this thread joins
// around clone. childFlags: HAKO_CHILD_* (child.h).
// With a cgroup v2 directory fd (>= 0) the child is born in that cgroup
// (clone3 CLONE_INTO_CGROUP): no later migration, which costs the kernel an
// RCU grace period per write to cgroup.procs. cgroupErrno is 0 then; when the
// kernel refuses, a plain clone follows and cgroupErrno says why (-1: no fd
// given): the caller then moves the child.
Napi::Value Spawn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Buffer<unsigned char> plan = info[0].As<Napi::Buffer<unsigned char>>();
  unsigned long flags = (unsigned long)info[1].As<Napi::Number>().Int64Value();
  Napi::Array parentNs = info[2].As<Napi::Array>();
  Napi::Array from = info[3].As<Napi::Array>();
  Napi::Array to = info[4].As<Napi::Array>();
  int cgroupFd = info[5].As<Napi::Number>().Int32Value();
  int childFlags = info[6].As<Napi::Number>().Int32Value();
  std::vector<int> fdFrom, fdTo;
  for (uint32_t i = 0; i < from.Length(); i++) {
    fdFrom.push_back(from.Get(i).As<Napi::Number>().Int32Value());
    fdTo.push_back(to.Get(i).As<Napi::Number>().Int32Value());
  }
  if (g_init_fd < 0) return ThrowErrno(env, "hako-init is not loaded", EBADF);

  // The caller says which namespace a path names; the path says nothing (a
  // pid namespace may well be reached through /run/time-ns/pid).
  std::vector<std::string> nsPath;
  std::vector<int> nsFd, nsType;
  auto closeNs = [&]() {
    for (int fd : nsFd) close(fd);
  };
  for (uint32_t i = 0; i < parentNs.Length(); i++) {
    Napi::Value v = parentNs.Get(i);
    std::string p, t;
    if (v.IsObject()) {
      Napi::Object o = v.As<Napi::Object>();
      if (o.Get("path").IsString()) p = o.Get("path").As<Napi::String>().Utf8Value();
      if (o.Get("type").IsString()) t = o.Get("type").As<Napi::String>().Utf8Value();
    }
    if (p.empty() || (t != "pid" && t != "time") || i >= HAKO_SPAWN_MAX_NS) {
      closeNs();
      return ThrowErrno(env, "parent namespace " + std::to_string(i) + " must be { path, type: \"pid\" | \"time\" }",
                        EINVAL);
    }
    int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      closeNs();
      return ThrowErrno(env, "open namespace " + p, e);
    }
    nsPath.push_back(p);
    nsFd.push_back(fd);
    nsType.push_back(t == "time" ? CLONE_NEWTIME : CLONE_NEWPID);
  }

  int planFd = SealedMemfd("hako-plan", plan.Data(), plan.Length(), -1);
  if (planFd < 0) {
    closeNs();
    return ThrowErrno(env, "write the plan into a memfd", -planFd);
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    int e = errno;
    close(planFd);
    closeNs();
    return ThrowErrno(env, "socketpair", e);
  }
  // Every message then carries its sender's pid, as the kernel saw it.
  int one = 1;
  setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);

  struct hako_spawn s = {};
  s.clone_flags = flags;
  s.init_fd = g_init_fd;
  s.plan_fd = planFd;
  s.sync_fd = sv[1];
  s.fd_from = fdFrom.data();
  s.fd_to = fdTo.data();
  s.nfds = (int)fdFrom.size();
  s.ns_fd = nsFd.data();
  s.ns_type = nsType.data();
  s.nns = (int)nsFd.size();
  s.cgroup_fd = cgroupFd;
  s.child_flags = childFlags;
  struct hako_spawned out;
  int r = hako_spawn(&s, &out);
  closeNs();
  close(sv[1]);
  close(planFd);
  if (r < 0) {
    close(sv[0]);
    if (out.failed_ns >= 0)
      return ThrowErrno(env, (out.failed_save ? "open namespace " : "join namespace ") + nsPath[out.failed_ns], -r);
    return ThrowErrno(env, "clone", -r);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, (double)out.pid));
  o.Set("pidfd", Napi::Number::New(env, out.pidfd));
  o.Set("fd", Napi::Number::New(env, sv[0]));
  o.Set("cgroupErrno", Napi::Number::New(env, out.cgroup_errno));
  return o;
}

// sendMsg(fd, type, value)
Napi::Value SendMsg(const Napi::CallbackInfo &info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct hako_msg_wire m = {info[1].As<Napi::Number>().Uint32Value(), 0, 0, info[2].As<Napi::Number>().Int32Value()};
  ssize_t r;
  do r = send(fd, &m, sizeof m, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return ThrowErrno(info.Env(), "send to container init", errno);
  return info.Env().Undefined();
}

// recvMsg(fd, timeoutMs) -> { type, step, err, value, fd, sender } | null on EOF; throws ETIMEDOUT
Napi::Value RecvMsg(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int timeout = info[1].As<Napi::Number>().Int32Value();
  struct pollfd p = {fd, POLLIN, 0};
  int pr;
  do pr = poll(&p, 1, timeout);
  while (pr < 0 && errno == EINTR);
  if (pr < 0) return ThrowErrno(env, "poll", errno);
  if (pr == 0) return ThrowErrno(env, "waiting for container init", ETIMEDOUT);
  struct hako_msg_wire m;
  int passed = -1;
  int sender = 0;
  long r = hako_recv_msg(fd, &m, sizeof m, &passed, &sender);
  if (r < 0) return ThrowErrno(env, "receive from container init", (int)-r);
  if (r == 0) return env.Null();
  if (r != (long)sizeof m) {
    if (passed >= 0) close(passed);
    return ThrowErrno(env, "receive from container init: a message of the wrong size", EPROTO);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("sender", sender);
  out.Set("type", m.type);
  out.Set("step", m.step);
  out.Set("err", m.err);
  out.Set("value", m.value);
  out.Set("fd", passed);
  return out;
}

class WaitWorker : public Napi::AsyncWorker {
public:
  WaitWorker(Napi::Env env, int pid)
      : Napi::AsyncWorker(env), pid_(pid), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    int r;
    do r = waitpid(pid_, &status_, __WALL);
    while (r < 0 && errno == EINTR);
    if (r < 0) err_ = errno;
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    if (err_) {
      out.Set("error", Napi::Number::New(env, err_));
    } else if (WIFEXITED(status_)) {
      out.Set("code", WEXITSTATUS(status_));
    } else if (WIFSIGNALED(status_)) {
      out.Set("signal", WTERMSIG(status_));
    }
    deferred_.Resolve(out);
  }

private:
  int pid_;
  int status_ = 0;
  int err_ = 0;
  Napi::Promise::Deferred deferred_;
};

// waitPid(pid) -> Promise<{code}|{signal}|{error}>, on the thread pool.
Napi::Value WaitPid(const Napi::CallbackInfo &info) {
  auto *w = new WaitWorker(info.Env(), info[0].As<Napi::Number>().Int32Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// reapNow(pid) -> exit status object or null if still running (WNOHANG).
Napi::Value ReapNow(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int status = 0;
  int r = waitpid(info[0].As<Napi::Number>().Int32Value(), &status, WNOHANG | __WALL);
  if (r <= 0) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  if (WIFEXITED(status)) out.Set("code", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) out.Set("signal", WTERMSIG(status));
  return out;
}

Napi::Value SetSubreaper(const Napi::CallbackInfo &info) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) return ThrowErrno(info.Env(), "PR_SET_CHILD_SUBREAPER", errno);
  return info.Env().Undefined();
}

Napi::Value Mkfifo(const Napi::CallbackInfo &info) {
  std::string p = info[0].As<Napi::String>().Utf8Value();
  if (mkfifo(p.c_str(), info[1].As<Napi::Number>().Uint32Value()) < 0)
    return ThrowErrno(info.Env(), "mkfifo " + p, errno);
  return info.Env().Undefined();
}

bool UnixAddress(const std::string &path, struct sockaddr_un *sa) {
  if (path.size() >= sizeof sa->sun_path) return false;
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  memcpy(sa->sun_path, path.data(), path.size());
  return true;
}

// sendFdTo(socketPath, fd, data): connect, send one message with the fd.
Napi::Value SendFdTo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = info[1].As<Napi::Number>().Int32Value();
  std::string data = info[2].As<Napi::String>().Utf8Value();
  struct sockaddr_un sa;
  if (!UnixAddress(path, &sa)) return ThrowErrno(env, "socket path " + path, ENAMETOOLONG);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return ThrowErrno(env, "socket", errno);
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(s);
    return ThrowErrno(env, "connect to " + path, e);
  }
  int e = hako_send_fd(s, fd, data.data(), data.size());
  close(s);
  if (e) return ThrowErrno(env, "send fd to " + path, -e);
  return env.Undefined();
}

// listenUnix(path) -> listening fd (for console sockets in tests and `run -t`).
Napi::Value ListenUnix(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  struct sockaddr_un sa;
  if (!UnixAddress(path, &sa)) return ThrowErrno(env, "socket path " + path, ENAMETOOLONG);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return ThrowErrno(env, "socket", errno);
  if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 4) < 0) {
    int e = errno;
    close(s);
    return ThrowErrno(env, "listen on " + path, e);
  }
  return Napi::Number::New(env, s);
}

class RecvFdWorker : public Napi::AsyncWorker {
public:
  RecvFdWorker(Napi::Env env, int lfd, int timeout)
      : Napi::AsyncWorker(env), lfd_(lfd), timeout_(timeout), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    struct pollfd p = {lfd_, POLLIN, 0};
    int pr = poll(&p, 1, timeout_);
    if (pr <= 0) {
      err_ = pr == 0 ? ETIMEDOUT : errno;
      return;
    }
    int c = accept4(lfd_, 0, 0, SOCK_CLOEXEC);
    if (c < 0) {
      err_ = errno;
      return;
    }
    char buf[4096];
    long r = hako_recv_fd(c, buf, sizeof buf, &fd_);
    if (r < 0)
      err_ = (int)-r;
    else
      data_.assign(buf, (size_t)r);
    close(c);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (err_) {
      Napi::Error e = Napi::Error::New(env, std::string("receive fd: ") + strerror(err_));
      e.Set("errno", Napi::Number::New(env, err_));
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("fd", fd_);
    out.Set("data", data_);
    deferred_.Resolve(out);
  }

private:
  int lfd_, timeout_;
  int err_ = 0, fd_ = -1;
  std::string data_;
  Napi::Promise::Deferred deferred_;
};

// recvFd(listenFd, timeoutMs) -> Promise<{fd, data}>: accept one connection, take one fd.
Napi::Value RecvFd(const Napi::CallbackInfo &info) {
  auto *w =
      new RecvFdWorker(info.Env(), info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// flock(fd, op): blocking advisory lock (LOCK_EX=2, LOCK_UN=8, LOCK_NB=4).
Napi::Value Flock(const Napi::CallbackInfo &info) {
  int r;
  do r = flock(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value());
  while (r < 0 && errno == EINTR);
  if (r < 0) return ThrowErrno(info.Env(), "flock", errno);
  return info.Env().Undefined();
}

// setWinsize(fd, rows, cols): TIOCSWINSZ on a pty master.
Napi::Value SetWinsize(const Napi::CallbackInfo &info) {
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  ws.ws_row = (unsigned short)info[1].As<Napi::Number>().Uint32Value();
  ws.ws_col = (unsigned short)info[2].As<Napi::Number>().Uint32Value();
  if (ioctl(info[0].As<Napi::Number>().Int32Value(), TIOCSWINSZ, &ws) < 0)
    return ThrowErrno(info.Env(), "TIOCSWINSZ", errno);
  return info.Env().Undefined();
}

// pidfdOpen(pid) -> a pidfd (close-on-exec) on that process; throws ESRCH when it is gone.
// A pidfd names one process for good: signalling through it cannot hit a
// process that reused the pid.
Napi::Value PidfdOpen(const Napi::CallbackInfo &info) {
  long fd = syscall(SYS_pidfd_open, info[0].As<Napi::Number>().Int32Value(), 0);
  if (fd < 0) return ThrowErrno(info.Env(), "pidfd_open", errno);
  if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0) {
    int e = errno;
    close((int)fd);
    return ThrowErrno(info.Env(), "pidfd_open", e);
  }
  return Napi::Number::New(info.Env(), (double)fd);
}

// pidfdSignal(pidfd, signal) -> 0, or the errno (ESRCH: the process has exited).
Napi::Value PidfdSignal(const Napi::CallbackInfo &info) {
  long r = syscall(SYS_pidfd_send_signal, info[0].As<Napi::Number>().Int32Value(),
                   info[1].As<Napi::Number>().Int32Value(), nullptr, 0);
  return Napi::Number::New(info.Env(), r < 0 ? errno : 0);
}

// detachMount(path) -> 0 or the errno: umount2(MNT_DETACH | UMOUNT_NOFOLLOW).
Napi::Value DetachMount(const Napi::CallbackInfo &info) {
  std::string p = info[0].As<Napi::String>().Utf8Value();
  return Napi::Number::New(info.Env(), umount2(p.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) < 0 ? errno : 0);
}

// mountId(path) -> the id of the mount path is on (statx STATX_MNT_ID), or -1.
Napi::Value MountId(const Napi::CallbackInfo &info) {
  std::string p = info[0].As<Napi::String>().Utf8Value();
  struct statx sx;
  if (statx(AT_FDCWD, p.c_str(), AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) < 0 || !(sx.stx_mask & STATX_MNT_ID))
    return Napi::Number::New(info.Env(), -1);
  return Napi::Number::New(info.Env(), (double)sx.stx_mnt_id);
}

// landlockAbi() -> the kernel's Landlock ABI version, or 0 when unavailable.
Napi::Value LandlockAbi(const Napi::CallbackInfo &info) {
  long v = syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* LANDLOCK_CREATE_RULESET_VERSION */);
  return Napi::Number::New(info.Env(), v < 0 ? 0 : (double)v);
}

// ---- seccomp user notification: hako's own agent (src/profile) runs these in a worker thread ----

// pollIn(fds, timeoutMs) -> each fd's revents (0: nothing), or null on timeout. The agent
// waits on its listening socket and every container's listener at once.
Napi::Value PollIn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array in = info[0].As<Napi::Array>();
  std::vector<struct pollfd> p(in.Length());
  for (uint32_t i = 0; i < in.Length(); i++) p[i] = {in.Get(i).As<Napi::Number>().Int32Value(), POLLIN, 0};
  int r;
  do r = poll(p.data(), p.size(), info[1].As<Napi::Number>().Int32Value());
  while (r < 0 && errno == EINTR);
  if (r < 0) return ThrowErrno(env, "poll", errno);
  if (r == 0) return env.Null();
  Napi::Array out = Napi::Array::New(env, p.size());
  for (uint32_t i = 0; i < p.size(); i++) out.Set(i, Napi::Number::New(env, p[i].revents));
  return out;
}

// acceptFd(listenFd) -> {fd, data}: accept one connection and take the fd it carries (the
// runtime-spec seccomp agent message), synchronously, for a worker thread's loop.
Napi::Value AcceptFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int c = accept4(info[0].As<Napi::Number>().Int32Value(), 0, 0, SOCK_CLOEXEC);
  if (c < 0) return ThrowErrno(env, "accept", errno);
  char buf[4096];
  int fd = -1;
  long r = hako_recv_fd(c, buf, sizeof buf, &fd);
  close(c);
  if (r < 0) return ThrowErrno(env, "receive fd", (int)-r);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", fd);
  out.Set("data", std::string(buf, (size_t)r));
  return out;
}

// notifRecv(fd) -> {id, pid, nr, arch, args: bigint[6]}, or null when the caller died first.
// Only registers: the agent never reads the caller's memory (it could change under it).
Napi::Value NotifRecv(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct seccomp_notif n;
  memset(&n, 0, sizeof n); // the kernel refuses a buffer that is not zeroed
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) {
    if (errno == ENOENT || errno == EINTR) return env.Null();
    return ThrowErrno(env, "receive a seccomp notification", errno);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Napi::BigInt::New(env, (uint64_t)n.id));
  o.Set("pid", Napi::Number::New(env, n.pid));
  o.Set("nr", Napi::Number::New(env, n.data.nr));
  o.Set("arch", Napi::Number::New(env, n.data.arch));
  Napi::Array a = Napi::Array::New(env, 6);
  for (uint32_t i = 0; i < 6; i++) a.Set(i, Napi::BigInt::New(env, (uint64_t)n.data.args[i]));
  o.Set("args", a);
  return o;
}

// notifRespond(fd, id, errno, continue) -> false when the caller is gone. continue lets the
// call run as if unfiltered (used only for calls hako itself or the start-up phase makes).
Napi::Value NotifRespond(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  bool lossless = false;
  struct seccomp_notif_resp r;
  memset(&r, 0, sizeof r);
  r.id = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  int err = info[2].As<Napi::Number>().Int32Value();
  bool cont = info[3].As<Napi::Boolean>().Value();
  r.error = cont ? 0 : -err;
  r.flags = cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
  if (ioctl(info[0].As<Napi::Number>().Int32Value(), SECCOMP_IOCTL_NOTIF_SEND, &r) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    return ThrowErrno(env, "answer a seccomp notification", errno);
  }
  return Napi::Boolean::New(env, true);
}

// closeFd(fd): for fds the addon made, closed in a worker thread (node's fs warns there
// about closing an fd its own fs did not open).
Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  hako::RegisterPlannerLink(env, exports);
  exports.Set("loadInit", Napi::Function::New(env, LoadInit));
  exports.Set("spawn", Napi::Function::New(env, Spawn));
  exports.Set("sendMsg", Napi::Function::New(env, SendMsg));
  exports.Set("recvMsg", Napi::Function::New(env, RecvMsg));
  exports.Set("waitPid", Napi::Function::New(env, WaitPid));
  exports.Set("reapNow", Napi::Function::New(env, ReapNow));
  exports.Set("setSubreaper", Napi::Function::New(env, SetSubreaper));
  exports.Set("mkfifo", Napi::Function::New(env, Mkfifo));
  exports.Set("sendFdTo", Napi::Function::New(env, SendFdTo));
  exports.Set("listenUnix", Napi::Function::New(env, ListenUnix));
  exports.Set("recvFd", Napi::Function::New(env, RecvFd));
  exports.Set("flock", Napi::Function::New(env, Flock));
  exports.Set("setWinsize", Napi::Function::New(env, SetWinsize));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen));
  exports.Set("pidfdSignal", Napi::Function::New(env, PidfdSignal));
  exports.Set("detachMount", Napi::Function::New(env, DetachMount));
  exports.Set("mountId", Napi::Function::New(env, MountId));
  exports.Set("landlockAbi", Napi::Function::New(env, LandlockAbi));
  exports.Set("pollIn", Napi::Function::New(env, PollIn));
  exports.Set("acceptFd", Napi::Function::New(env, AcceptFd));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("notifRecv", Napi::Function::New(env, NotifRecv));
  exports.Set("notifRespond", Napi::Function::New(env, NotifRespond));
  return exports;
}

} // namespace

// The planner's spawnVia sends it to the front (planner_link.cc).
int hako_init_fd() {
  return g_init_fd;
}

// The plan's sealed memfd, made the one way spawn makes it (planner_link.cc's spawnVia).
int hako_sealed_plan(const unsigned char *data, size_t len) {
  return SealedMemfd("hako-plan", data, len, -1);
}

NODE_API_MODULE(hako_native, Init)
