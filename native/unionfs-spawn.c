/*
 * unionfs-spawn.node: posix_spawn for Node, so that `unionfs run` can start its native helper
 * without node:child_process (src/sys/spawn.ts is the only user).
 *
 * Why: loading child_process costs ~15 M instructions (it brings net and streams along), a
 * third of what `unionfs run` adds to Node's start-up; and libuv starts a child with fork(),
 * which copies the page tables of the whole Node process, where posix_spawn vforks.
 *
 *   spawn(file, argv, onExit) -> pid, or -errno when the program could not be started;
 *                                onExit(status) once it has exited: its wait status, or -errno
 *   handover(file, argv, waiter, onExit)
 *                             -> spawn(file, argv) as above, then this process becomes
 *                                `waiter PID` (execve: same pid, environment, stdin/stdout/
 *                                stderr, children; other descriptors by their close-on-exec
 *                                flags) and never returns; if the exec fails, the child is
 *                                waited for as by spawn and its pid returned; -errno when the
 *                                child could not be started
 *
 * The child gets what child_process.spawn(file, args, { stdio: "inherit", detached: true })
 * gives: a new session, no blocked signals, every signal at its default action, Node's
 * stdin/stdout/stderr and environment; of other descriptors only those Node itself inherited
 * without close-on-exec (Node opens all of its own close-on-exec), as with libuv.
 *
 * A thread per child waits for it (waitpid on its pid only: libuv reaps the children of
 * child_process by pid too, so both work in one process) and reports through a thread-safe
 * function, which also keeps Node's event loop alive until then.
 *
 * N-API only (no V8, no libuv): its ABI is stable across Node versions.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 4
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* One started child, owned by its waiter thread, which reports its status through `report`. */
struct child {
  pid_t pid;
  napi_threadsafe_function report;
};

static napi_value int_value(napi_env env, int32_t n) {
  napi_value v;
  napi_create_int32(env, n, &v);
  return v;
}

/* A JS string as a malloc'ed C string; NULL if it is not a string or has a NUL inside. */
static char *c_string(napi_env env, napi_value value) {
  size_t len;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s == NULL) return NULL;
  napi_get_value_string_utf8(env, value, s, len + 1, &len);
  if (strlen(s) != len) {
    free(s);
    return NULL;
  }
  return s;
}

static void free_strings(char **strings, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) free(strings[i]);
  free(strings);
}

/* file and argv (a non-empty array of strings) as C strings; 0, or a TypeError thrown. */
static int c_command(napi_env env, napi_value file_value, napi_value argv_value, char **file, char ***argv,
                     uint32_t *n) {
  *file = NULL;
  *argv = NULL;
  *n = 0;
  if (napi_get_array_length(env, argv_value, n) != napi_ok || *n == 0) return -1;
  *argv = calloc(*n + 1, sizeof **argv);
  *file = c_string(env, file_value);
  int ok = *argv != NULL && *file != NULL;
  for (uint32_t i = 0; ok && i < *n; i++) {
    napi_value item;
    ok = napi_get_element(env, argv_value, i, &item) == napi_ok && ((*argv)[i] = c_string(env, item)) != NULL;
  }
  if (ok) return 0;
  free(*file);
  if (*argv != NULL) free_strings(*argv, *n);
  return -1;
}

static int spawn_session(pid_t *pid, const char *file, char **argv) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  int err = posix_spawn_file_actions_init(&actions);
  if (err != 0) return err;
  err = posix_spawnattr_init(&attr);
  if (err != 0) {
    posix_spawn_file_actions_destroy(&actions);
    return err;
  }
  /* dup2 onto itself clears close-on-exec: our stdio is the child's whatever flag it has */
  for (int fd = 0; fd <= 2 && err == 0; fd++) err = posix_spawn_file_actions_adddup2(&actions, fd, fd);
  sigset_t none, every;
  sigemptyset(&none);
  /* Every bit, not sigfillset(): that leaves out glibc's internal signals (32, 33), which
     posix_spawn would then leave ignored in the child and, through exec, in the command. */
  memset(&every, 0xff, sizeof every);
  if (err == 0) err = posix_spawnattr_setsigmask(&attr, &none);
  if (err == 0) err = posix_spawnattr_setsigdefault(&attr, &every);
  if (err == 0) err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (err == 0) err = posix_spawn(pid, file, &actions, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  return err;
}

/*
 * On the waiter thread: wait for the child (and nothing else), then hand the status to JS. The
 * status travels in its own allocation, freed by whoever ends up with it, so that nothing the
 * main thread touches is freed here, and nothing this thread touches is freed there (as Node
 * would when it exits while the child still runs).
 */
static void *wait_for_child(void *arg) {
  struct child *child = arg;
  int status = 0;
  pid_t got;
  do got = waitpid(child->pid, &status, 0);
  while (got < 0 && errno == EINTR);
  int *report = malloc(sizeof *report);
  if (report != NULL) {
    *report = got < 0 ? -errno : status;
    if (napi_call_threadsafe_function(child->report, report, napi_tsfn_blocking) != napi_ok) free(report);
  }
  napi_release_threadsafe_function(child->report, napi_tsfn_release);
  free(child);
  return NULL;
}

/* On Node's thread: onExit(status). The pending report kept the event loop alive until now. */
static void call_on_exit(napi_env env, napi_value on_exit, void *context, void *data) {
  (void)context;
  int *report = data;
  if (env != NULL) { /* else Node is shutting down */
    napi_value undefined, status = int_value(env, *report);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, on_exit, 1, &status, NULL);
  }
  free(report);
}

/* A detached thread with every signal blocked: Node's signal handling stays on Node's threads. */
static int start_waiter(struct child *child) {
  pthread_attr_t attr;
  pthread_t thread;
  sigset_t all, old;
  int err = pthread_attr_init(&attr);
  if (err != 0) return err;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  err = pthread_create(&thread, &attr, wait_for_child, child);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  return err;
}

/*
 * Starts `file` in a session of its own and reports its exit to `on_exit`; with `waiter`,
 * this process then becomes `waiter PID` (see handover above), and comes back only if that
 * exec failed. The pid, or -errno when the child could not be started.
 *
 * With a waiter, spawn and exec are one step: no waiter thread exists yet that could reap the
 * child before the exec and lose its status. Every signal is blocked in this thread for the
 * exec and stays blocked in the new program, which unblocks them when it can pass them on.
 * That covers this thread only: until the exec ends Node's other threads, a signal may still
 * land on one of them and go to a Node handler that is about to vanish (or, without one, end
 * the process). src/runner/run.ts says so.
 */
static pid_t start_child(napi_env env, napi_value on_exit, const char *file, char **argv, const char *waiter) {
  struct child *child = calloc(1, sizeof *child);
  if (child == NULL) return -ENOMEM;
  napi_value name;
  napi_create_string_utf8(env, "unionfs-spawn", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, on_exit, NULL, name, 0, 1, NULL, NULL, NULL, call_on_exit,
                                      &child->report) != napi_ok) {
    free(child);
    return -EAGAIN;
  }
  sigset_t all, old;
  memset(&all, 0xff, sizeof all);
  if (waiter != NULL) pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = 0;
  int err = spawn_session(&pid, file, argv);
  if (err == 0 && waiter != NULL) {
    /* Node's stdin/stdout/stderr may be close-on-exec: the waiter keeps them all the same */
    int fd_flags[3];
    for (int fd = 0; fd <= 2; fd++) {
      fd_flags[fd] = fcntl(fd, F_GETFD);
      if (fd_flags[fd] > 0) fcntl(fd, F_SETFD, fd_flags[fd] & ~FD_CLOEXEC);
    }
    char pid_text[24];
    snprintf(pid_text, sizeof pid_text, "%d", (int)pid);
    char *waiter_argv[] = {(char *)waiter, pid_text, NULL};
    execve(waiter, waiter_argv, environ);
    /* no waiter program: this process waits, as after spawn() */
    for (int fd = 0; fd <= 2; fd++) {
      if (fd_flags[fd] > 0) fcntl(fd, F_SETFD, fd_flags[fd]);
    }
  }
  if (err == 0) {
    child->pid = pid;
    err = start_waiter(child);
    if (err != 0) {
      /* nothing could report its exit: take it back before it does anything */
      kill(pid, SIGKILL);
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) continue;
    }
  }
  if (waiter != NULL) pthread_sigmask(SIG_SETMASK, &old, NULL);
  /* without a waiter thread, nothing else releases the function or frees `child` */
  if (err != 0) {
    napi_release_threadsafe_function(child->report, napi_tsfn_abort);
    free(child);
    return -err;
  }
  return pid;
}

/* spawn(file: string, argv: string[], onExit: (status: number) => void): number */
static napi_value js_spawn(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  char *file;
  char **argv;
  uint32_t n;
  napi_valuetype on_exit_type = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 3 ||
      napi_typeof(env, args[2], &on_exit_type) != napi_ok || on_exit_type != napi_function ||
      c_command(env, args[0], args[1], &file, &argv, &n) != 0) {
    napi_throw_type_error(env, NULL, "spawn(file, argv, onExit): a non-empty argv of strings without NUL and a function expected");
    return NULL;
  }
  pid_t pid = start_child(env, args[2], file, argv, NULL);
  free(file);
  free_strings(argv, n);
  return int_value(env, pid);
}

/* handover(file: string, argv: string[], waiter: string, onExit: (status: number) => void): number */
static napi_value js_handover(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4];
  char *file;
  char **argv;
  uint32_t n;
  napi_valuetype on_exit_type = napi_undefined;
  char *waiter = NULL;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 4 ||
      napi_typeof(env, args[3], &on_exit_type) != napi_ok || on_exit_type != napi_function ||
      (waiter = c_string(env, args[2])) == NULL || c_command(env, args[0], args[1], &file, &argv, &n) != 0) {
    free(waiter);
    napi_throw_type_error(env, NULL, "handover(file, argv, waiter, onExit): strings without NUL and a function expected");
    return NULL;
  }
  pid_t pid = start_child(env, args[3], file, argv, waiter);
  free(waiter);
  free(file);
  free_strings(argv, n);
  return int_value(env, pid);
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, js_spawn, NULL, &fn);
  napi_set_named_property(env, exports, "spawn", fn);
  napi_create_function(env, "handover", NAPI_AUTO_LENGTH, js_handover, NULL, &fn);
  napi_set_named_property(env, exports, "handover", fn);
  return exports;
}
