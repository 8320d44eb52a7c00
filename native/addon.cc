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
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "executor.h"
#include "fdpass.h"
#include "plan_format.h"

namespace {

// clone3's argument, up to `cgroup` (CLONE_ARGS_SIZE_VER2), spelled out so the
// build does not depend on <linux/sched.h> agreeing with glibc's <sched.h>.
struct hako_clone_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
constexpr uint64_t HAKO_CLONE_INTO_CGROUP = 0x200000000ULL;
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

Napi::Value ThrowErrno(Napi::Env env, const std::string &what, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// spawn(plan, cloneFlags, parentNsPaths, fdFrom, fdTo, cgroupFd) -> { pid, fd, cgroupErrno }
// With a cgroup v2 directory fd (>= 0) the child is born in that cgroup
// (clone3 CLONE_INTO_CGROUP): no later migration, which costs the kernel an
// RCU grace period per write to cgroup.procs. cgroupErrno is 0 then; when the
// kernel refuses, a plain clone follows and cgroupErrno says why (-1: no fd
// given): the caller then moves the child.
Napi::Value Spawn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Buffer<unsigned char> plan = info[0].As<Napi::Buffer<unsigned char>>();
  unsigned long flags = (unsigned long)info[1].As<Napi::Number>().Int64Value();
  Napi::Array nsPaths = info[2].As<Napi::Array>();
  Napi::Array from = info[3].As<Napi::Array>();
  Napi::Array to = info[4].As<Napi::Array>();
  int cgroupFd = info.Length() > 5 ? info[5].As<Napi::Number>().Int32Value() : -1;
  std::vector<int> fdFrom, fdTo;
  for (uint32_t i = 0; i < from.Length(); i++) {
    fdFrom.push_back(from.Get(i).As<Napi::Number>().Int32Value());
    fdTo.push_back(to.Get(i).As<Napi::Number>().Int32Value());
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return ThrowErrno(env, "socketpair", errno);

  // Namespaces that only affect children (pid, time) are joined by this
  // thread around clone and left again right after; nsproxy is per thread.
  std::vector<std::pair<int, int>> restore;  // (saved fd, nstype)
  auto undo = [&]() {
    for (auto &r : restore) {
      setns(r.first, r.second);
      close(r.first);
    }
  };
  for (uint32_t i = 0; i < nsPaths.Length(); i++) {
    std::string p = nsPaths.Get(i).As<Napi::String>().Utf8Value();
    bool isTime = p.find("time") != std::string::npos;
    const char *self = isTime ? "/proc/thread-self/ns/time_for_children" : "/proc/thread-self/ns/pid_for_children";
    int saved = open(self, O_RDONLY | O_CLOEXEC);
    int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (saved < 0 || fd < 0) {
      int e = errno;
      if (saved >= 0) close(saved);
      if (fd >= 0) close(fd);
      undo();
      close(sv[0]);
      close(sv[1]);
      return ThrowErrno(env, "open namespace " + p, e);
    }
    int type = isTime ? CLONE_NEWTIME : CLONE_NEWPID;
    if (setns(fd, type) < 0) {
      int e = errno;
      close(fd);
      close(saved);
      undo();
      close(sv[0]);
      close(sv[1]);
      return ThrowErrno(env, "join namespace " + p, e);
    }
    close(fd);
    restore.push_back({saved, type});
  }

  const unsigned char *buf = plan.Data();
  size_t len = plan.Length();
  // fork semantics (no CLONE_VM): the child has its own copy of buf and the fd
  // vectors, and only this thread.
  long pid = -1;
  int cgroupErrno = -1;
  if (cgroupFd >= 0) {
    struct hako_clone_args ca = {};
    ca.flags = flags | HAKO_CLONE_INTO_CGROUP;
    ca.exit_signal = SIGCHLD;
    ca.cgroup = (uint64_t)cgroupFd;
    pid = syscall(SYS_clone3, &ca, sizeof ca);
    cgroupErrno = pid >= 0 ? 0 : errno;
  }
  if (pid < 0) pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) {
    hako_child_main(buf, len, sv[1], fdFrom.data(), fdTo.data(), (int)fdFrom.size());
    syscall(SYS_exit_group, 125);
  }
  int e = errno;
  undo();
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    return ThrowErrno(env, "clone", e);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, (double)pid));
  out.Set("fd", Napi::Number::New(env, sv[0]));
  out.Set("cgroupErrno", Napi::Number::New(env, cgroupErrno));
  return out;
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

// recvMsg(fd, timeoutMs) -> { type, step, err, value, fd } | null on EOF; throws ETIMEDOUT
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
  long r = hako_recv_fd(fd, &m, sizeof m, &passed);
  if (r < 0) return ThrowErrno(env, "receive from container init", (int)-r);
  if (r == 0) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("type", m.type);
  out.Set("step", m.step);
  out.Set("err", m.err);
  out.Set("value", m.value);
  out.Set("fd", passed);
  return out;
}

class WaitWorker : public Napi::AsyncWorker {
 public:
  WaitWorker(Napi::Env env, int pid) : Napi::AsyncWorker(env), pid_(pid), deferred_(Napi::Promise::Deferred::New(env)) {}
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
    if (r < 0) err_ = (int)-r;
    else data_.assign(buf, (size_t)r);
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
  auto *w = new RecvFdWorker(info.Env(), info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value());
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
  if (ioctl(info[0].As<Napi::Number>().Int32Value(), TIOCSWINSZ, &ws) < 0) return ThrowErrno(info.Env(), "TIOCSWINSZ", errno);
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

// landlockAbi() -> the kernel's Landlock ABI version, or 0 when unavailable.
Napi::Value LandlockAbi(const Napi::CallbackInfo &info) {
  long v = syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* LANDLOCK_CREATE_RULESET_VERSION */);
  return Napi::Number::New(info.Env(), v < 0 ? 0 : (double)v);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
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
  exports.Set("landlockAbi", Napi::Function::New(env, LandlockAbi));
  return exports;
}

}  // namespace

NODE_API_MODULE(hako_native, Init)
