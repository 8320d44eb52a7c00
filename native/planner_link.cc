// The planner's side of the front <-> planner protocol (native/front/protocol.h):
// listen, accept a call (peer checked: our own uid only), and ask the front to
// clone, reap and wait for the container's processes. The planner decides; the
// front, the caller's own process, is the parent of what it starts.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

extern "C" {
#include "front/protocol.h"
}

int hako_init_fd(); // addon.cc: the sealed hako-init every container process executes first
int hako_sealed_plan(const unsigned char *data, size_t len); // addon.cc: the plan's sealed memfd

namespace {

constexpr size_t MAX_PAYLOAD = 4u << 20;     // argv + env of one call
constexpr int REQUEST_TIMEOUT_S = 5;         // a connected front sends its request at once
constexpr size_t MAX_BODY = HAKO_CALL_CHUNK; // no datagram of ours is longer

Napi::Value Throw(Napi::Env env, const std::string &what, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

void CloseAll(const std::vector<int> &fds) {
  for (int fd : fds)
    if (fd >= 0) close(fd);
}

// One datagram: header + body, fds as SCM_RIGHTS. 0 or errno.
int SendCall(int conn, uint32_t type, const void *body, size_t len, const std::vector<int> &fds) {
  struct hako_call_hdr h = {HAKO_CALL_MAGIC, HAKO_CALL_VERSION, type, (uint32_t)len};
  struct iovec iov[2] = {{&h, sizeof h}, {const_cast<void *>(body), len}};
  std::vector<char> control(fds.empty() ? 0 : CMSG_SPACE(sizeof(int) * fds.size()));
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = iov;
  mh.msg_iovlen = len ? 2 : 1;
  if (!fds.empty()) {
    mh.msg_control = control.data();
    mh.msg_controllen = control.size();
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t r;
  do r = sendmsg(conn, &mh, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return errno;
  return (size_t)r == sizeof h + len ? 0 : EMSGSIZE;
}

// One datagram received: its type and body, the fds that rode along (close-on-exec).
// 0, or an errno (EPIPE at EOF, EPROTO for a malformed message: its fds closed).
int RecvCall(int conn, uint32_t *type, std::vector<char> &body, std::vector<int> &fds) {
  body.assign(sizeof(struct hako_call_hdr) + MAX_BODY, 0);
  union {
    char buf[CMSG_SPACE(sizeof(int) * HAKO_CALL_MAX_FDS)];
    struct cmsghdr align;
  } u;
  struct iovec iov = {body.data(), body.size()};
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  ssize_t r;
  do r = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  fds.clear();
  if (r >= 0)
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; i++) {
        int f;
        memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
        fds.push_back(f);
      }
    }
  if (r < 0) return errno == EAGAIN ? ETIMEDOUT : errno;
  if (r == 0) return EPIPE;
  struct hako_call_hdr h;
  bool bad = (size_t)r < sizeof h || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC));
  if (!bad) {
    memcpy(&h, body.data(), sizeof h);
    bad = h.magic != HAKO_CALL_MAGIC || h.version != HAKO_CALL_VERSION || h.len != (size_t)r - sizeof h;
  }
  if (bad) {
    CloseAll(fds);
    fds.clear();
    return EPROTO;
  }
  *type = h.type;
  body.erase(body.begin(), body.begin() + sizeof h);
  body.resize(h.len);
  return 0;
}

// Receives the answer of the given type with a body of exactly len bytes into out.
int RecvAnswer(int conn, uint32_t want, void *out, size_t len, std::vector<int> &fds) {
  uint32_t type = 0;
  std::vector<char> body;
  int e = RecvCall(conn, &type, body, fds);
  if (e) return e;
  if (type != want || body.size() != len) {
    CloseAll(fds);
    fds.clear();
    return EPROTO;
  }
  memcpy(out, body.data(), len);
  return 0;
}

// plannerListen(path) -> fd. The caller holds the planner lock: a socket file
// left there is a dead planner's. Bound through /proc/self/fd/N of its
// directory, so a long state root fits sun_path.
Napi::Value PlannerListen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash + 1 == path.size()) return Throw(env, "planner socket " + path, EINVAL);
  std::string dirPath = slash == 0 ? "/" : path.substr(0, slash);
  int dir = open(dirPath.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return Throw(env, "open " + dirPath, errno);
  std::string via = "/proc/self/fd/" + std::to_string(dir) + "/" + path.substr(slash + 1);
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (via.size() >= sizeof a.sun_path) {
    close(dir);
    return Throw(env, "planner socket " + path, ENAMETOOLONG);
  }
  memcpy(a.sun_path, via.c_str(), via.size());
  if (unlinkat(dir, path.c_str() + slash + 1, 0) < 0 && errno != ENOENT) {
    int e = errno;
    close(dir);
    return Throw(env, "remove the stale " + path, e);
  }
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) {
    int e = errno;
    close(dir);
    return Throw(env, "socket", e);
  }
  int e = 0;
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0)
    e = errno;
  else if (fchmodat(dir, path.c_str() + slash + 1, 0600, 0) < 0 || listen(s, 128) < 0)
    e = errno;
  if (e) {
    close(s);
    close(dir);
    return Throw(env, "listen on " + path, e);
  }
  close(dir);
  return Napi::Number::New(env, s);
}

struct Call {
  int conn = -1;
  pid_t pid = 0;
  uid_t uid = 0;
  uint32_t umask = 0;
  std::vector<std::string> argv, env;
  std::vector<int> fds; // cwd, 0, 1, 2
};

// Reads REQUEST and its PAYLOADs from a connected front. false: malformed, or
// too slow (everything it brought is closed by the caller).
bool ReadRequest(Call &c) {
  uint32_t type = 0;
  std::vector<char> body;
  if (RecvCall(c.conn, &type, body, c.fds)) return false;
  struct hako_call_request rq;
  if (type != CALL_REQUEST || body.size() != sizeof rq || c.fds.size() != 4) return false;
  memcpy(&rq, body.data(), sizeof rq);
  if (rq.payload_len > MAX_PAYLOAD || rq.argc == 0 || rq.argc > rq.payload_len || rq.envc > rq.payload_len - rq.argc)
    return false;
  std::string payload;
  payload.reserve(rq.payload_len);
  while (payload.size() < rq.payload_len) {
    std::vector<int> extra;
    if (RecvCall(c.conn, &type, body, extra)) return false;
    CloseAll(extra);
    if (type != CALL_PAYLOAD || !extra.empty() || body.empty() || body.size() > rq.payload_len - payload.size())
      return false;
    payload.append(body.data(), body.size());
  }
  // Exactly argc + envc NUL-terminated strings, and nothing after them.
  size_t at = 0;
  for (uint32_t i = 0; i < rq.argc + rq.envc; i++) {
    size_t end = payload.find('\0', at);
    if (end == std::string::npos) return false;
    (i < rq.argc ? c.argv : c.env).push_back(payload.substr(at, end - at));
    at = end + 1;
  }
  if (at != payload.size()) return false;
  c.umask = rq.umask;
  return true;
}

// acceptCall(listenFd) -> { conn, pid, uid, umask, argv, env, cwdFd, stdio } | null
// Blocks this thread. Another uid's connection, or a malformed request, is
// closed without a word and the next one accepted. null: the socket was shut down.
Napi::Value AcceptCall(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int lfd = info[0].As<Napi::Number>().Int32Value();
  for (;;) {
    int conn = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
        if (errno == EMFILE || errno == ENFILE) usleep(10000);
        continue;
      }
      if (errno == EINVAL || errno == EBADF) return env.Null();
      return Throw(env, "accept a call", errno);
    }
    struct ucred peer;
    socklen_t plen = sizeof peer;
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &plen) < 0 || peer.uid != geteuid()) {
      close(conn);
      continue;
    }
    struct timeval tv = {REQUEST_TIMEOUT_S, 0};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    Call c;
    c.conn = conn;
    c.pid = peer.pid;
    c.uid = peer.uid;
    if (!ReadRequest(c)) {
      CloseAll(c.fds);
      close(conn);
      continue;
    }
    // From here on the front waits on us, and we on it (a WAIT lasts as long as the process).
    struct timeval none = {0, 0};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    Napi::Object out = Napi::Object::New(env);
    out.Set("conn", conn);
    out.Set("pid", (double)c.pid);
    out.Set("uid", (double)c.uid);
    out.Set("umask", c.umask);
    Napi::Array argv = Napi::Array::New(env, c.argv.size());
    for (size_t i = 0; i < c.argv.size(); i++) argv.Set(i, Napi::String::New(env, c.argv[i]));
    Napi::Array envs = Napi::Array::New(env, c.env.size());
    for (size_t i = 0; i < c.env.size(); i++) envs.Set(i, Napi::String::New(env, c.env[i]));
    out.Set("argv", argv);
    out.Set("env", envs);
    out.Set("cwdFd", c.fds[0]);
    Napi::Array stdio = Napi::Array::New(env, 3);
    for (uint32_t i = 0; i < 3; i++) stdio.Set(i, c.fds[i + 1]);
    out.Set("stdio", stdio);
    return out;
  }
}

// plannerShutdown(listenFd): every thread blocked in acceptCall returns null.
Napi::Value PlannerShutdown(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), shutdown(info[0].As<Napi::Number>().Int32Value(), SHUT_RDWR) < 0 ? errno : 0);
}

// callFallback(conn): the front runs today's path with the same argv.
Napi::Value CallFallback(const Napi::CallbackInfo &info) {
  int e = SendCall(info[0].As<Napi::Number>().Int32Value(), CALL_FALLBACK, nullptr, 0, {});
  if (e) return Throw(info.Env(), "send FALLBACK to the front", e);
  return info.Env().Undefined();
}

// callTaken(conn): the planner acts on the call from now on; a planner that ends after this is
// not followed by today's path running the call a second time (the front kills what it spawned).
Napi::Value CallTaken(const Napi::CallbackInfo &info) {
  int e = SendCall(info[0].As<Napi::Number>().Int32Value(), CALL_TAKEN, nullptr, 0, {});
  if (e) return Throw(info.Env(), "send TAKEN to the front", e);
  return info.Env().Undefined();
}

// callExit(conn, code): the front exits with code.
Napi::Value CallExit(const Napi::CallbackInfo &info) {
  struct hako_call_exit x = {info[1].As<Napi::Number>().Int32Value()};
  int e = SendCall(info[0].As<Napi::Number>().Int32Value(), CALL_EXIT, &x, sizeof x, {});
  if (e) return Throw(info.Env(), "send EXIT to the front", e);
  return info.Env().Undefined();
}

// spawnVia(conn, plan, cloneFlags, parentNs, fdFrom, fdTo, cgroupFd, childFlags)
//   -> { pid, pidfd, fd, cgroupErrno }, as the addon's spawn, with the front cloning.
Napi::Value SpawnVia(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int conn = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<unsigned char> plan = info[1].As<Napi::Buffer<unsigned char>>();
  uint64_t flags = (uint64_t)info[2].As<Napi::Number>().Int64Value();
  Napi::Array parentNs = info[3].As<Napi::Array>();
  Napi::Array from = info[4].As<Napi::Array>();
  Napi::Array to = info[5].As<Napi::Array>();
  int cgroupFd = info[6].As<Napi::Number>().Int32Value();
  int childFlags = info[7].As<Napi::Number>().Int32Value();
  if (hako_init_fd() < 0) return Throw(env, "hako-init is not loaded", EBADF);
  if (from.Length() != to.Length()) return Throw(env, "spawn: fdFrom and fdTo differ in length", EINVAL);

  std::vector<int32_t> wireFrom, wireTo;
  std::vector<int> sentFrom;
  for (uint32_t i = 0; i < from.Length(); i++) {
    int f = from.Get(i).As<Napi::Number>().Int32Value();
    wireTo.push_back(to.Get(i).As<Napi::Number>().Int32Value());
    // The caller's stdio is the front's own 0..2: named, not sent.
    if (f >= 0 && f <= 2) {
      wireFrom.push_back(f);
    } else {
      wireFrom.push_back(-(int32_t)sentFrom.size() - 1);
      sentFrom.push_back(f);
    }
  }
  std::vector<int> nsFds;
  std::vector<uint32_t> nsTypes;
  for (uint32_t i = 0; i < parentNs.Length(); i++) {
    Napi::Value v = parentNs.Get(i);
    std::string p, t;
    if (v.IsObject()) {
      Napi::Object o = v.As<Napi::Object>();
      if (o.Get("path").IsString()) p = o.Get("path").As<Napi::String>().Utf8Value();
      if (o.Get("type").IsString()) t = o.Get("type").As<Napi::String>().Utf8Value();
    }
    if (p.empty() || (t != "pid" && t != "time")) {
      CloseAll(nsFds);
      return Throw(env, "parent namespace " + std::to_string(i) + " must be { path, type: \"pid\" | \"time\" }",
                   EINVAL);
    }
    int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      CloseAll(nsFds);
      return Throw(env, "open namespace " + p, e);
    }
    nsFds.push_back(fd);
    nsTypes.push_back(t == "time" ? CLONE_NEWTIME : CLONE_NEWPID);
  }
  int planFd = hako_sealed_plan(plan.Data(), plan.Length());
  if (planFd < 0) {
    CloseAll(nsFds);
    return Throw(env, "write the plan into a memfd", -planFd);
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    int e = errno;
    close(planFd);
    CloseAll(nsFds);
    return Throw(env, "socketpair", e);
  }
  // Every message then carries its sender's pid, as the kernel saw it.
  int one = 1;
  setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);

  std::vector<int> fds = {hako_init_fd(), planFd, sv[1]};
  if (cgroupFd >= 0) fds.push_back(cgroupFd);
  fds.insert(fds.end(), sentFrom.begin(), sentFrom.end());
  fds.insert(fds.end(), nsFds.begin(), nsFds.end());
  struct hako_call_spawn sp = {flags, childFlags, (uint32_t)wireFrom.size(), (uint32_t)nsTypes.size(),
                               cgroupFd >= 0 ? 1u : 0u};
  std::string body((const char *)&sp, sizeof sp);
  body.append((const char *)wireTo.data(), wireTo.size() * sizeof(int32_t));
  body.append((const char *)wireFrom.data(), wireFrom.size() * sizeof(int32_t));
  body.append((const char *)nsTypes.data(), nsTypes.size() * sizeof(uint32_t));
  int e = fds.size() > HAKO_CALL_MAX_FDS || body.size() > MAX_BODY ? E2BIG : 0;
  if (!e) e = SendCall(conn, CALL_SPAWN, body.data(), body.size(), fds);
  // The front holds its own copies now.
  close(sv[1]);
  close(planFd);
  CloseAll(nsFds);
  struct hako_call_spawned got = {-1, 0, -1};
  std::vector<int> back;
  if (!e) e = RecvAnswer(conn, CALL_SPAWNED, &got, sizeof got, back);
  if (!e && got.pid > 0 && back.size() != 1) e = EPROTO;
  if (!e && got.pid <= 0 && !back.empty()) e = EPROTO;
  if (e) {
    CloseAll(back);
    close(sv[0]);
    return Throw(env, "ask the front to clone", e);
  }
  if (got.pid <= 0) {
    close(sv[0]);
    return Throw(env, "clone", got.err > 0 ? got.err : EIO);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", (double)got.pid);
  out.Set("pidfd", back[0]);
  out.Set("fd", sv[0]);
  out.Set("cgroupErrno", got.cgroup_errno);
  return out;
}

Napi::Object StatusObject(Napi::Env env, const struct hako_call_status &st) {
  Napi::Object out = Napi::Object::New(env);
  if (st.err)
    out.Set("error", st.err);
  else if (WIFEXITED(st.status))
    out.Set("code", WEXITSTATUS(st.status));
  else if (WIFSIGNALED(st.status))
    out.Set("signal", WTERMSIG(st.status));
  return out;
}

// reapVia(conn, pid) -> exit status object, or null while it runs (the front's waitpid WNOHANG).
Napi::Value ReapVia(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int conn = info[0].As<Napi::Number>().Int32Value();
  struct hako_call_pid p = {info[1].As<Napi::Number>().Int32Value()};
  struct hako_call_status st = {0, 0, 0};
  std::vector<int> fds;
  int e = SendCall(conn, CALL_REAP, &p, sizeof p, {});
  if (!e) e = RecvAnswer(conn, CALL_REAPED, &st, sizeof st, fds);
  CloseAll(fds);
  if (e) return Throw(env, "ask the front to reap", e);
  if (st.pid <= 0) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  if (WIFEXITED(st.status)) out.Set("code", WEXITSTATUS(st.status));
  if (WIFSIGNALED(st.status)) out.Set("signal", WTERMSIG(st.status));
  return out;
}

// WAIT lasts as long as the process: off the worker's loop, on node's thread pool.
class WaitViaWorker : public Napi::AsyncWorker {
public:
  WaitViaWorker(Napi::Env env, int conn, int pid)
      : Napi::AsyncWorker(env), conn_(conn), pid_(pid), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    struct hako_call_pid p = {pid_};
    std::vector<int> fds;
    err_ = SendCall(conn_, CALL_WAIT, &p, sizeof p, {});
    if (!err_) err_ = RecvAnswer(conn_, CALL_WAITED, &st_, sizeof st_, fds);
    CloseAll(fds);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (err_) {
      Napi::Error e = Napi::Error::New(env, std::string("ask the front to wait: ") + strerror(err_));
      e.Set("errno", Napi::Number::New(env, err_));
      deferred_.Reject(e.Value());
      return;
    }
    deferred_.Resolve(StatusObject(env, st_));
  }

private:
  int conn_;
  int pid_;
  int err_ = 0;
  struct hako_call_status st_ = {0, 0, 0};
  Napi::Promise::Deferred deferred_;
};

// waitVia(conn, pid) -> Promise<{code}|{signal}|{error}>, as waitPid.
Napi::Value WaitVia(const Napi::CallbackInfo &info) {
  auto *w =
      new WaitViaWorker(info.Env(), info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// subreaperVia(conn): the front becomes the subreaper of what it starts.
Napi::Value SubreaperVia(const Napi::CallbackInfo &info) {
  int conn = info[0].As<Napi::Number>().Int32Value();
  std::vector<int> fds;
  int e = SendCall(conn, CALL_SUBREAPER, nullptr, 0, {});
  if (!e) e = RecvAnswer(conn, CALL_DONE, nullptr, 0, fds);
  CloseAll(fds);
  if (e) return Throw(info.Env(), "ask the front to be a subreaper", e);
  return info.Env().Undefined();
}

} // namespace

namespace hako {
void RegisterPlannerLink(Napi::Env env, Napi::Object exports) {
  exports.Set("plannerListen", Napi::Function::New(env, PlannerListen));
  exports.Set("plannerShutdown", Napi::Function::New(env, PlannerShutdown));
  exports.Set("acceptCall", Napi::Function::New(env, AcceptCall));
  exports.Set("callFallback", Napi::Function::New(env, CallFallback));
  exports.Set("callTaken", Napi::Function::New(env, CallTaken));
  exports.Set("callExit", Napi::Function::New(env, CallExit));
  exports.Set("spawnVia", Napi::Function::New(env, SpawnVia));
  exports.Set("reapVia", Napi::Function::New(env, ReapVia));
  exports.Set("waitVia", Napi::Function::New(env, WaitVia));
  exports.Set("subreaperVia", Napi::Function::New(env, SubreaperVia));
}
} // namespace hako
