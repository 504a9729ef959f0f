#include "pump.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "addon.h"
#include "cgroup.h"
#include "probe.h"
#include "spawn.h"
#include "spawner.h"
#include "sys.h"

namespace pidwatch {
namespace {

// One row per job, as src/cli/run/pump.ts reads them.
enum RowSlot {
  kRowIndex,     // the job's index: the order it was pushed in
  kRowCode,      // exit code, or -1 (killed by a signal, or never started)
  kRowSignal,    // terminating signal, or 0
  kRowStart,     // ms since the epoch, just before the spawn
  kRowRuntime,   // ms from the spawn to the exit
  kRowReceived,  // bytes the job wrote to stdout
  kRowFlags,     // RowFlag bits
  kRowErrno,     // with kSpawnFailed or kWriteFailed
  kRowSize
};
enum RowFlag : int {
  kAborted = 1,      // ended after abort(): not printed
  kSpawnFailed = 2,  // never started: a failure entry names the step
  kWriteFailed = 4,  // printing its output failed (EPIPE: nobody reads stdout)
};

struct PumpJob {
  double index = 0;
  double seq = 0;
  std::string file;
  std::vector<std::string> argv;
};

struct Failure {
  double index;
  std::string syscall;
  std::string path;
};

double now_ms(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Writes len bytes, waiting for room where fd is non-blocking (Node makes a pipe
// on stdout non-blocking). Returns 0 or an errno.
int write_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        poll(&pfd, 1, -1);
        continue;
      }
      return errno;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

// Copies the first `size` bytes of `from` to `to`: sendfile where the kernel
// takes it (no copy through user space), else read and write. Returns 0 or an errno.
int copy_file(int from, int to, off_t size) {
  off_t off = 0;
  bool use_sendfile = true;
  char buf[64 * 1024];
  while (off < size) {
    if (use_sendfile) {
      ssize_t n = sendfile(to, from, &off, static_cast<size_t>(size - off));
      if (n > 0) continue;
      if (n == 0) return 0;  // the file shrank: what it holds was sent
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pfd = {to, POLLOUT, 0};
        poll(&pfd, 1, -1);
        continue;
      }
      if (errno != EINVAL && errno != ENOSYS) return errno;
      use_sendfile = false;  // a terminal, for one, takes no sendfile
    }
    ssize_t n = pread(from, buf, static_cast<size_t>(std::min<off_t>(size - off, sizeof buf)), off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    if (int err = write_all(to, buf, static_cast<size_t>(n))) return err;
    off += n;
  }
  return 0;
}

// Two memory files for a job's stdout and stderr, new for each job: one job's flock
// on its stdout, or a process it left behind (--no-tree), must not reach the next.
// Returns 0 or an errno (then neither is open).
int open_memory_files(int files[2]) {
  files[0] = memfd_create("pidwatch-stdout", MFD_CLOEXEC);
  files[1] = files[0] < 0 ? -1 : memfd_create("pidwatch-stderr", MFD_CLOEXEC);
  if (files[1] >= 0) return 0;
  int err = errno;
  if (files[0] >= 0) close(files[0]);
  return err;
}

// Removes a leaf and forgets it; one still busy stays registered, to be removed at exit.
void drop_leaf(LeafDir* leaf) {
  if (leaf_remove(leaf) == 0) registry_remove(leaf->path);
  else leaf_close(leaf);
}

off_t file_size(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_size : 0;
}


class Pump;
void OnPumpClosed(uv_handle_t* handle);

// More threads than this and the general runner takes the run.
constexpr int kMaxPumpThreads = 256;

// The pumps of one environment (main thread or worker).
struct PumpEnv {
  napi_env env = nullptr;
  uv_loop_t* loop = nullptr;
  napi_async_context context = nullptr;
  unsigned next_id = 1;
  std::unordered_map<unsigned, Pump*> pumps;
};

// A slot's thread, and what signal() needs of the job it runs.
struct Worker {
  Pump* pump = nullptr;
  int number = 0;
  pthread_t thread{};
  // Under the pump's mutex: the job is running (pidfd and leaf are its own).
  bool running = false;
  int pidfd = -1;
  LeafDir leaf;  // the leaf its jobs start in (trees); a fresh one after a kill
  unsigned leaf_generation = 0;
};

class Pump {
 public:
  Pump(PumpEnv* penv, napi_env env, uv_loop_t* loop, unsigned id, int concurrency, bool tree,
       std::string cgroup_parent, std::vector<std::string> env_strings, std::string path,
       bool has_path)
      : penv_(penv),
        env_(env),
        loop_(loop),
        id_(id),
        tree_(tree),
        cgroup_parent_(std::move(cgroup_parent)),
        env_strings_(std::move(env_strings)),
        path_(std::move(path)),
        has_path_(has_path),
        workers_(static_cast<size_t>(concurrency)),
        slot_used_(static_cast<size_t>(concurrency), false) {}

  ~Pump() {
    if (callback_) napi_delete_reference(env_, callback_);
    if (null_fd_ >= 0) close(null_fd_);
    for (Worker& w : workers_) {
      if (w.leaf.dir_fd >= 0) leaf_close(&w.leaf);
    }
  }

  // Starts the threads; 0 or an errno (then nothing runs and the pump is deleted).
  int Start(napi_value callback, napi_async_context context, size_t refill_below, bool each_row) {
    refill_below_ = refill_below;
    each_row_ = each_row;
    null_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    async_ = new uv_async_t;
    if (uv_async_init(loop_, async_, OnAsync) != 0) {
      delete async_;
      async_ = nullptr;
      return EAGAIN;
    }
    async_->data = this;
    context_ = context;
    napi_create_reference(env_, callback, 1, &callback_);
    int err = 0;
    for (size_t i = 0; i < workers_.size() && err == 0; i++) {
      Worker& w = workers_[i];
      w.pump = this;
      w.number = static_cast<int>(i);
      err = create_thread_without_signals(&w.thread, Main, &w);
      if (err == 0) threads_++;
    }
    pthread_mutex_lock(&mu_);
    live_threads_ = threads_;
    if (err != 0) stopping_ = true;  // the threads started end at once
    pthread_mutex_unlock(&mu_);
    pthread_cond_broadcast(&wake_);
    return err;
  }

  void Push(PumpJob job) {
    pthread_mutex_lock(&mu_);
    if (!stopping_ && !ended_) queue_.push_back(std::move(job));
    pthread_mutex_unlock(&mu_);
    pthread_cond_signal(&wake_);
  }

  // No more jobs will be pushed (end), or none of the queued ones is to start
  // (stop: SIGHUP); with abort, jobs that end from now on are not printed.
  void Close(bool stop, bool abort) {
    pthread_mutex_lock(&mu_);
    ended_ = true;
    if (stop) queue_.clear();
    if (abort) aborted_ = true;
    pthread_mutex_unlock(&mu_);
    pthread_cond_broadcast(&wake_);
  }

  // Sends sig to every running job (its whole tree for trees), and to a job whose
  // spawn is under way as soon as it runs. Returns how many jobs it reached.
  int Signal(int sig) {
    pthread_mutex_lock(&mu_);
    pending_signal_ = sig;
    int reached = 0;
    for (Worker& w : workers_) {
      if (!w.running) continue;
      SignalJob(w, sig);
      reached++;
    }
    pthread_mutex_unlock(&mu_);
    return reached;
  }

  // Environment teardown: no JS runs from here on. Kills every job, waits for the
  // threads, and closes the async handle (counted in *pending).
  void Teardown(void* closure, int* pending, void (*on_closed)(uv_handle_t*)) {
    Close(true, true);
    Signal(SIGKILL);
    JoinThreads();
    if (!async_) return;
    async_->data = closure;
    ++*pending;
    uv_close(reinterpret_cast<uv_handle_t*>(async_), on_closed);
    async_ = nullptr;
  }

  // A pump whose Start failed: its threads end, and it is deleted with its handle.
  void Abandon() {
    Close(true, true);
    JoinThreads();
    if (async_) {
      async_->data = this;
      uv_close(reinterpret_cast<uv_handle_t*>(async_), OnPumpClosed);
      async_ = nullptr;
    } else {
      delete this;
    }
  }

 private:
  static void* Main(void* arg);
  static void OnAsync(uv_async_t* handle);
  void Run(Worker& w, PumpJob& job, int slot, double* row, std::vector<Failure>* failures);
  int EnsureLeaf(Worker& w);
  void SignalJob(Worker& w, int sig) {  // under mu_
    if (tree_ && w.leaf.dir_fd >= 0) leaf_signal(w.leaf, sig);
    else if (w.pidfd >= 0) sys_pidfd_send_signal(w.pidfd, sig);
  }
  void JoinThreads() {
    for (int i = 0; i < threads_; i++) pthread_join(workers_[static_cast<size_t>(i)].thread, nullptr);
    threads_ = 0;
  }
  void Deliver();
  void Call(const std::vector<double>& rows, const std::vector<Failure>& failures, bool last);

  PumpEnv* const penv_;
  napi_env env_;
  uv_loop_t* loop_;
  const unsigned id_;
  const bool tree_;
  const std::string cgroup_parent_;
  const std::vector<std::string> env_strings_;
  const std::string path_;
  const bool has_path_;

  pthread_mutex_t mu_ = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t wake_ = PTHREAD_COND_INITIALIZER;
  // Held while a job's output is printed: two jobs' never mix.
  pthread_mutex_t print_mu_ = PTHREAD_MUTEX_INITIALIZER;
  std::vector<Worker> workers_;
  std::deque<PumpJob> queue_;      // under mu_
  std::vector<bool> slot_used_;    // under mu_: job slots (PARALLEL_JOBSLOT - 1)
  std::vector<double> rows_;       // under mu_
  std::vector<Failure> failures_;  // under mu_
  size_t refill_below_ = 0;        // JS is woken when fewer jobs than this are queued
  bool each_row_ = false;          // JS is woken for every row (it logs each)
  int null_fd_ = -1;               // /dev/null, every job's stdin
  bool ended_ = false;             // under mu_
  bool stopping_ = false;          // under mu_
  bool aborted_ = false;           // under mu_
  int pending_signal_ = 0;         // under mu_: the last signal sent, for jobs still starting
  int live_threads_ = 0;           // under mu_
  int threads_ = 0;                // loop thread: threads to join
  uv_async_t* async_ = nullptr;
  napi_ref callback_ = nullptr;
  napi_async_context context_ = nullptr;
};

void* Pump::Main(void* arg) {
  Worker& w = *static_cast<Worker*>(arg);
  Pump* p = w.pump;
  pthread_mutex_lock(&p->mu_);
  for (;;) {
    while (!p->stopping_ && !p->ended_ && p->queue_.empty()) pthread_cond_wait(&p->wake_, &p->mu_);
    if (p->stopping_ || p->queue_.empty()) break;
    PumpJob job = std::move(p->queue_.front());
    p->queue_.pop_front();
    // GNU parallel's job slot: the lowest one free.
    int slot = static_cast<int>(std::find(p->slot_used_.begin(), p->slot_used_.end(), false) -
                                p->slot_used_.begin());
    p->slot_used_[static_cast<size_t>(slot)] = true;
    pthread_mutex_unlock(&p->mu_);

    double row[kRowSize];
    std::vector<Failure> failures;
    p->Run(w, job, slot, row, &failures);

    pthread_mutex_lock(&p->mu_);
    p->slot_used_[static_cast<size_t>(slot)] = false;
    p->rows_.insert(p->rows_.end(), row, row + kRowSize);
    for (Failure& f : failures) p->failures_.push_back(std::move(f));
    const int flags = static_cast<int>(row[kRowFlags]);
    // Nobody reads the output: start nothing more (JS aborts the run).
    if (flags & kWriteFailed) p->stopping_ = true;
    // JS is woken for what it must act on: a row to log (each_row_), a failure to
    // report, or a queue running low while jobs remain; other rows wait for one of
    // those or for the end, and one wake-up then takes many (the loop thread's
    // work per job was mostly its wake-ups).
    if (p->each_row_ || flags != 0 || (!p->ended_ && p->queue_.size() <= p->refill_below_))
      uv_async_send(p->async_);
  }
  pthread_mutex_unlock(&p->mu_);
  // The leaf goes before the run is reported finished: a finished run leaves no cgroup.
  if (w.leaf.dir_fd >= 0) {
    leaf_wait_empty(w.leaf, 1000);
    drop_leaf(&w.leaf);
  }
  pthread_mutex_lock(&p->mu_);
  p->live_threads_--;
  uv_async_send(p->async_);
  pthread_mutex_unlock(&p->mu_);
  return nullptr;
}

int Pump::EnsureLeaf(Worker& w) {
  if (w.leaf.dir_fd >= 0 && !w.leaf.killed) return 0;
  if (w.leaf.dir_fd >= 0) {
    // Killed (cgroup.kill): never reused, as a child placed in it would die at birth.
    drop_leaf(&w.leaf);
    w.leaf = LeafDir{};
  }
  int r;
  do {
    std::string path = cgroup_parent_ + "/r" + std::to_string(id_) + "-" +
                       std::to_string(w.number) + "-" + std::to_string(w.leaf_generation++);
    r = leaf_create(path, &w.leaf);
  } while (r == -EEXIST);
  if (r < 0) return -r;
  registry_add(w.leaf.path, false);
  return 0;
}

void Pump::Run(Worker& w, PumpJob& job, int slot, double* row, std::vector<Failure>* failures) {
  row[kRowIndex] = job.index;
  row[kRowCode] = -1;
  row[kRowSignal] = 0;
  row[kRowStart] = now_ms(CLOCK_REALTIME);
  row[kRowRuntime] = 0;
  row[kRowReceived] = 0;
  row[kRowFlags] = 0;
  row[kRowErrno] = 0;
  auto fail = [&](int err, const char* syscall, const std::string& path) {
    row[kRowFlags] = kSpawnFailed;
    row[kRowErrno] = err;
    failures->push_back(Failure{job.index, syscall, path});
  };

  if (tree_) {
    if (int err = EnsureLeaf(w)) {
      fail(err, "mkdir", cgroup_parent_);
      return;
    }
  }
  int files[2];
  if (int err = open_memory_files(files)) {
    fail(err, "memfd_create", job.file);
    return;
  }
  const int out = files[0], err_fd = files[1];

  SpawnRequest req;
  req.file = job.file;
  req.argv = std::move(job.argv);
  req.env.reserve(env_strings_.size() + 2);
  req.env.assign(env_strings_.begin(), env_strings_.end());
  req.env.push_back("PARALLEL_SEQ=" + std::to_string(static_cast<long long>(job.seq)));
  req.env.push_back("PARALLEL_JOBSLOT=" + std::to_string(slot + 1));
  req.path_env = path_;
  req.has_path_env = has_path_;
  req.stdio = {null_fd_ >= 0 ? null_fd_ : kStdioNull, out, err_fd};
  if (tree_) {
    req.cgroup_fd = w.leaf.dir_fd;
    req.cgroup_procs = w.leaf.procs_path.c_str();
  }
  req.pdeathsig = true;  // killOnParentExit, as every job of `pidwatch run`

  const double started = now_ms(CLOCK_MONOTONIC);
  SpawnResult res;
  spawn_process(req, capabilities().tier(), &res);
  if (res.err != 0) {
    fail(res.err, res.syscall ? res.syscall : "spawn", res.path.empty() ? job.file : res.path);
    close(out);
    close(err_fd);
    return;
  }

  pthread_mutex_lock(&mu_);
  w.running = true;
  w.pidfd = res.pidfd;
  // A signal sent while the spawn was under way reaches it now.
  if (pending_signal_ != 0) SignalJob(w, pending_signal_);
  pthread_mutex_unlock(&mu_);

  struct pollfd pfd = {res.pidfd, POLLIN, 0};
  while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
  }
  ExitInfo info;
  int waited = sys_waitid_exit(kPidfdIdType, res.pidfd, 0, &info);
  row[kRowRuntime] = now_ms(CLOCK_MONOTONIC) - started;
  if (waited == 0 && info.known) {
    row[kRowCode] = info.code;
    row[kRowSignal] = info.signal;
  }

  if (tree_) {
    // The leader is gone: what is left of its tree is killed, and waited for.
    CgroupEvents ev;
    if (leaf_events(w.leaf, &ev) == 0 && ev.populated) {
      pthread_mutex_lock(&mu_);
      leaf_signal(w.leaf, SIGKILL);
      pthread_mutex_unlock(&mu_);
      while (!leaf_wait_empty(w.leaf, 1000)) {
      }
    }
  }
  pthread_mutex_lock(&mu_);
  w.running = false;
  w.pidfd = -1;
  const bool aborted = aborted_;
  pthread_mutex_unlock(&mu_);
  close(res.pidfd);

  const off_t out_size = file_size(out), err_size = file_size(err_fd);
  row[kRowReceived] = static_cast<double>(out_size);
  if (aborted) {
    row[kRowFlags] = kAborted;
  } else {
    pthread_mutex_lock(&print_mu_);
    int err = copy_file(out, 1, out_size);
    if (err == 0) err = copy_file(err_fd, 2, err_size);
    pthread_mutex_unlock(&print_mu_);
    if (err != 0) {
      row[kRowFlags] = kWriteFailed;
      row[kRowErrno] = err;
    }
  }
  close(out);
  close(err_fd);
}

// ---- the loop side ----

void Pump::OnAsync(uv_async_t* handle) { static_cast<Pump*>(handle->data)->Deliver(); }

// The async handle of a pump that ends: the pump goes with it.
void OnPumpClosed(uv_handle_t* handle) {
  Pump* pump = static_cast<Pump*>(handle->data);
  delete reinterpret_cast<uv_async_t*>(handle);
  delete pump;
}

void Pump::Deliver() {
  std::vector<double> rows;
  std::vector<Failure> failures;
  pthread_mutex_lock(&mu_);
  rows.swap(rows_);
  failures.swap(failures_);
  const bool last = live_threads_ == 0;
  pthread_mutex_unlock(&mu_);
  if (last) {
    JoinThreads();
    penv_->pumps.erase(id_);
  }
  if (!rows.empty() || last) Call(rows, failures, last);
  if (last && async_) {
    uv_close(reinterpret_cast<uv_handle_t*>(async_), OnPumpClosed);
    async_ = nullptr;
  }
}

void Pump::Call(const std::vector<double>& rows, const std::vector<Failure>& failures, bool last) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(env_, &scope) != napi_ok) return;
  napi_value fn, global, result, buffer, array, list = nullptr;
  void* data = nullptr;
  bool ok = napi_get_reference_value(env_, callback_, &fn) == napi_ok && fn &&
            napi_get_global(env_, &global) == napi_ok &&
            napi_create_arraybuffer(env_, rows.size() * sizeof(double), &data, &buffer) ==
                napi_ok &&
            napi_create_typedarray(env_, napi_float64_array, rows.size(), buffer, 0, &array) ==
                napi_ok;
  if (ok && !rows.empty()) memcpy(data, rows.data(), rows.size() * sizeof(double));
  if (ok && !failures.empty() && napi_create_array(env_, &list) == napi_ok) {
    for (size_t i = 0; i < failures.size(); i++) {
      napi_value entry, index, syscall, path;
      napi_create_array_with_length(env_, 3, &entry);
      napi_create_double(env_, failures[i].index, &index);
      napi_create_string_utf8(env_, failures[i].syscall.c_str(), NAPI_AUTO_LENGTH, &syscall);
      napi_create_string_utf8(env_, failures[i].path.data(), failures[i].path.size(), &path);
      napi_set_element(env_, entry, 0, index);
      napi_set_element(env_, entry, 1, syscall);
      napi_set_element(env_, entry, 2, path);
      napi_set_element(env_, list, static_cast<uint32_t>(i), entry);
    }
  }
  if (ok) {
    napi_value argv[4];
    argv[0] = array;
    napi_create_uint32(env_, static_cast<uint32_t>(rows.size() / kRowSize), &argv[1]);
    if (list == nullptr) napi_get_null(env_, &list);
    argv[2] = list;
    napi_get_boolean(env_, last, &argv[3]);
    // The JS handler never throws; an exception here means the environment is going away.
    if (napi_make_callback(env_, context_, global, fn, 4, argv, &result) ==
        napi_pending_exception) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env_, &ignored);
    }
  }
  napi_close_handle_scope(env_, scope);
}

PumpEnv* EnvOf(const Napi::CallbackInfo& info) { return static_cast<PumpEnv*>(info.Data()); }

Pump* Find(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) return nullptr;
  PumpEnv* penv = EnvOf(info);
  auto it = penv->pumps.find(info[0].As<Napi::Number>().Uint32Value());
  return it == penv->pumps.end() ? nullptr : it->second;
}

// pumpStart(concurrency, tree, env, onRows, refillBelow, eachRow) -> id (> 0), or
// -errno when it cannot run (nothing was started). env: the jobs' environment as
// NUL-ended strings; each job gets its PARALLEL_SEQ and PARALLEL_JOBSLOT added.
// onRows(rows, count, failures, last) gets the rows of the jobs that ended
// (RowSlot, a Float64Array), the failed spawns as [index, syscall, path] (or
// null), and `last` once every thread has ended: no call follows that one. It is
// called when fewer than refillBelow jobs are queued, for a failure, at the end,
// and with eachRow for every job.
Napi::Value PumpStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6 || !info[0].IsNumber() || !info[1].IsBoolean() || !info[2].IsString() ||
      !info[3].IsFunction() || !info[4].IsNumber() || !info[5].IsBoolean())
    return ThrowTypeError(env, "pidwatch native pumpStart: bad arguments");
  PumpEnv* penv = EnvOf(info);
  const int concurrency = info[0].As<Napi::Number>().Int32Value();
  if (concurrency < 1 || concurrency > kMaxPumpThreads)
    return ThrowTypeError(env, "pidwatch native pumpStart: bad concurrency");
  const bool tree = info[1].As<Napi::Boolean>().Value();
  std::string parent;
  if (tree) {
    int err = 0;
    parent = cgroup_parent(&err);
    if (parent.empty()) return Napi::Number::New(env, -(err != 0 ? err : ENOENT));
  }
  std::vector<std::string> strings = SplitNul(info[2].As<Napi::String>().Utf8Value());
  std::string path;
  bool has_path = false;
  for (const std::string& s : strings) {
    if (s.compare(0, 5, "PATH=") != 0) continue;
    path = s.substr(5);
    has_path = true;
  }
  if (!penv->context) {
    napi_value name;
    napi_create_string_utf8(env, "pidwatch:pump", NAPI_AUTO_LENGTH, &name);
    if (napi_async_init(env, nullptr, name, &penv->context) != napi_ok) penv->context = nullptr;
  }
  const unsigned id = penv->next_id++;
  Pump* pump = new Pump(penv, env, penv->loop, id, concurrency, tree, std::move(parent),
                        std::move(strings), std::move(path), has_path);
  const double refill_below = std::max(0.0, info[4].As<Napi::Number>().DoubleValue());
  if (int err = pump->Start(info[3], penv->context, static_cast<size_t>(refill_below),
                            info[5].As<Napi::Boolean>().Value())) {
    pump->Abandon();
    return Napi::Number::New(env, -err);
  }
  penv->pumps[id] = pump;
  return Napi::Number::New(env, id);
}

// pumpPush(id, index, seq, file, argv): queues a job (argv[0] is its argv0).
Napi::Value PumpPush(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Pump* pump = Find(info);
  if (pump == nullptr || info.Length() < 5 || !info[1].IsNumber() || !info[2].IsNumber() ||
      !info[3].IsString() || !info[4].IsArray())
    return ThrowTypeError(env, "pidwatch native pumpPush: bad arguments");
  PumpJob job;
  job.index = info[1].As<Napi::Number>().DoubleValue();
  job.seq = info[2].As<Napi::Number>().DoubleValue();
  job.file = info[3].As<Napi::String>().Utf8Value();
  Napi::Array argv = info[4].As<Napi::Array>();
  const uint32_t n = argv.Length();
  job.argv.reserve(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = argv.Get(i);
    if (!v.IsString()) return ThrowTypeError(env, "pidwatch native pumpPush: bad arguments");
    job.argv.push_back(v.As<Napi::String>().Utf8Value());
  }
  pump->Push(std::move(job));
  return env.Undefined();
}

// pumpClose(id, stop, abort): no more jobs (see Pump::Close).
Napi::Value PumpClose(const Napi::CallbackInfo& info) {
  Pump* pump = Find(info);
  if (pump != nullptr && info.Length() >= 3)
    pump->Close(info[1].ToBoolean().Value(), info[2].ToBoolean().Value());
  return info.Env().Undefined();
}

// pumpSignal(id, signal) -> how many running jobs it reached.
Napi::Value PumpSignal(const Napi::CallbackInfo& info) {
  Pump* pump = Find(info);
  if (pump == nullptr || info.Length() < 2 || !info[1].IsNumber())
    return Napi::Number::New(info.Env(), 0);
  return Napi::Number::New(info.Env(), pump->Signal(info[1].As<Napi::Number>().Int32Value()));
}

// ---- environment teardown ----

struct Teardown {
  PumpEnv* penv = nullptr;
  napi_async_cleanup_hook_handle hook = nullptr;
  int pending = 0;
  bool armed = false;
};

void FinishTeardown(Teardown* t) {
  napi_remove_async_cleanup_hook(t->hook);
  delete t->penv;
  delete t;
}

void OnTeardownClosed(uv_handle_t* handle) {
  Teardown* t = static_cast<Teardown*>(handle->data);
  delete reinterpret_cast<uv_async_t*>(handle);
  if (--t->pending == 0 && t->armed) FinishTeardown(t);
}

void OnEnvCleanup(napi_async_cleanup_hook_handle hook, void* arg) {
  PumpEnv* penv = static_cast<PumpEnv*>(arg);
  Teardown* t = new Teardown{penv, hook};
  for (auto& entry : penv->pumps) {
    entry.second->Teardown(t, &t->pending, OnTeardownClosed);
    delete entry.second;
  }
  penv->pumps.clear();
  t->armed = true;
  if (t->pending == 0) FinishTeardown(t);
}

}  // namespace

void InitPump(Napi::Env env, Napi::Object exports) {
  PumpEnv* penv = new PumpEnv;
  penv->env = env;
  napi_get_uv_event_loop(env, &penv->loop);
  napi_add_async_cleanup_hook(env, OnEnvCleanup, penv, nullptr);
  exports.Set("pumpStart", Napi::Function::New<PumpStart>(env, "pumpStart", penv));
  exports.Set("pumpPush", Napi::Function::New<PumpPush>(env, "pumpPush", penv));
  exports.Set("pumpClose", Napi::Function::New<PumpClose>(env, "pumpClose", penv));
  exports.Set("pumpSignal", Napi::Function::New<PumpSignal>(env, "pumpSignal", penv));
}

}  // namespace pidwatch
