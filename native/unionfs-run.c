/*
 * unionfs-run: the small privileged half of `unionfs run`.
 *
 * The TypeScript side turns the command line into a plan (src/runner/plan.ts); this program
 * executes it and nothing else. It is C because a V8 process is multi-threaded:
 * unshare(CLONE_NEWUSER) refuses threaded callers and fork-without-exec is unsafe there.
 *
 *   unionfs-run [OPTION...] [STEP...] -- COMMAND [ARG...]
 *
 * Options (the process around the steps):
 *   --root DIR       host directory that becomes "/"; every step's target is a path inside it
 *   --ns LIST        namespaces to create, comma-separated: mount,pid,uts,ipc,net,user (the
 *                    network namespace is made by a process of its own, in parallel)
 *   --map-root       with "user": map the caller's uid and gid to 0 inside (rootless runs)
 *   --cgroup FILE    a cgroup.procs file the payload joins just before exec (repeatable)
 *   --hold DIR       keep a shared flock on DIR for the whole run (repeatable): the layer
 *                    store then sees the layer as in use and gc leaves it alone
 *   --init           PID 1 is a reaper that forwards signals; the command runs as its child
 *   --user SPEC      uid[:gid] or name[:group], names resolved in the new root's /etc files
 *   --cwd DIR        working directory of the command, inside the new root (default /)
 *   --env K=V        the command's environment (repeatable; nothing else is inherited)
 *   --status-file F  report to file F (or --status-fd N: to fd N): "ok" once the command is
 *                    exec'd, or "error CODE MESSAGE"; then "exit N" or "signal N" when it is gone
 *   --hint PREFIX TEXT  a set-up error whose message starts with PREFIX gets " (TEXT)" appended
 *   --handover       `unionfs run` has handed the run over and only waits (native/unionfs-wait.c):
 *                    errors go to stderr as "unionfs: MESSAGE"
 *   --cleanup PATH   remove the tree PATH once the command is gone, on every way out after the
 *                    arguments are read (repeatable); a mount or symlink below is never entered
 *
 * Steps, executed in order by PID 1 of the new namespaces:
 *   mount SRC DST FSTYPE FLAGS DATA  mount(2); "-" for none; FLAGS comma-separated from
 *                                    ro,nosuid,nodev,noexec,relatime,strictatime,bind,rec;
 *                                    flags on a bind apply to the new mount (mount_setattr)
 *   mkdir PATH MODE                  unless it exists as a directory
 *   file PATH                        an empty file unless it exists (a bind-mount target)
 *   symlink TARGET PATH
 *   readonly PATH                    bind PATH onto itself, read-only (recursively)
 *   mask PATH                        hide PATH: /dev/null over a file, an empty tmpfs over a dir
 *   pivot                            pivot_root into the root and detach the old root
 *   hostname NAME
 *   loopback                         bring up "lo" (a new network namespace starts with it down)
 * A step name prefixed with "?" is skipped when its source or target does not exist.
 * Targets are resolved inside the root without following symlinks: an image cannot redirect a
 * mount to a place outside itself.
 *
 * Exit status: the command's, 128+N if a signal killed it; 125 when set-up failed, 126/127
 * when the command could not be executed (as docker and the shell do).
 *
 * If the caller dies first (its cleanup never runs), the command is killed and the --cgroup
 * directories and --cleanup trees are removed; the command itself always dies with this process.
 *
 * Signals: INT, TERM, HUP, QUIT, USR1, USR2, WINCH, ALRM and CONT are passed on to the command
 * (which runs in a session of its own, so a terminal's signals reach it once, through here);
 * the third of INT, TERM, HUP and QUIT kills it, for a PID 1 that ignores them.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "forwarded-signals.h"

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

#define EXIT_SETUP 125
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127
#define MAX_LIST 1024
#define KILL_AFTER 3

extern char **environ;

struct step {
  const char *op;
  char **args;
  int optional;
};

static struct {
  const char *root;
  int ns;
  int map_root;
  int init;
  const char *user;
  const char *cwd;
  const char *cgroups[MAX_LIST];
  int ncgroups;
  int cgroup_fds[MAX_LIST];
  char *env[MAX_LIST + 2];
  int nenv;
  int status_fd;
  const char *status_file;
  const char *hint_prefix;
  const char *hint_text;
  int handover;
  const char *cleanups[MAX_LIST];
  int ncleanups;
  struct step steps[MAX_LIST * 4];
  int nsteps;
  char **command;
} cfg = {.status_fd = -1};

/* The write end of the error pipe in the namespace child (-1 in the outer process). */
static int error_fd = -1;
static volatile pid_t child_pid = 0;
/* This program's own process, the one that cleans up (its children fail through error_fd). */
static pid_t outer_pid = 0;

/* docker's default capability set; everything else leaves the bounding set before exec. */
static const int KEPT_CAPS[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,     CAP_MKNOD,
                                CAP_NET_RAW, CAP_SETGID,      CAP_SETUID,           CAP_SETFCAP,    CAP_SETPCAP,
                                CAP_NET_BIND_SERVICE,         CAP_SYS_CHROOT,       CAP_KILL,       CAP_AUDIT_WRITE};

/* ---- reporting ---------------------------------------------------------------------------- */

static void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    buf += n;
    len -= (size_t)n;
  }
}

static void status_line(const char *fmt, ...) {
  if (cfg.status_fd < 0) return;
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  write_all(cfg.status_fd, line, (size_t)n);
}

/* Who speaks on stderr: `unionfs` when this process is `unionfs run` (--handover). */
static const char *speaker(void) { return cfg.handover ? "unionfs" : "unionfs-run"; }

/*
 * Reports a set-up error, "CODE MESSAGE", from this process: to the status fd, else to stderr;
 * with the --hint appended when the message starts with its prefix.
 */
static void report_error(const char *line) {
  const char *text = strchr(line, ' ');
  text = text != NULL ? text + 1 : line;
  int hinted = cfg.hint_prefix != NULL && strncmp(text, cfg.hint_prefix, strlen(cfg.hint_prefix)) == 0;
  const char *open = hinted ? " (" : "", *hint = hinted ? cfg.hint_text : "", *close = hinted ? ")" : "";
  if (cfg.status_fd >= 0) status_line("error %s%s%s%s", line, open, hint, close);
  else dprintf(2, "%s: %s%s%s%s\n", speaker(), text, open, hint, close);
}

static void remove_cleanups(void);

/*
 * Fails with `code`: the message goes up the error pipe in the namespace child; this program's
 * own process reports it and removes the --cleanup trees. `err` is an errno to append (0 for none).
 */
static void __attribute__((noreturn, format(printf, 3, 4))) fail(int code, int err, const char *fmt, ...) {
  char msg[3000];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) msg[0] = '\0';
  char line[4096];
  int len = err != 0 ? snprintf(line, sizeof line, "%d %s: %s", code, msg, strerror(err))
                     : snprintf(line, sizeof line, "%d %s", code, msg);
  if (len < 0) len = 0;
  if (len >= (int)sizeof line) len = (int)sizeof line - 1;
  line[len] = '\0';
  if (error_fd >= 0) {
    write_all(error_fd, line, (size_t)len);
  } else {
    report_error(line);
    if (getpid() == outer_pid) remove_cleanups();
  }
  _exit(code);
}

#define setup_fail(...) fail(EXIT_SETUP, errno, __VA_ARGS__)

/* ---- argument parsing --------------------------------------------------------------------- */

static void usage(const char *why) {
  fail(EXIT_SETUP, 0, "usage: unionfs-run [--root DIR] [--ns LIST] ... [STEP...] -- COMMAND [ARG...] (%s)", why);
}

static int step_arity(const char *op) {
  static const struct {
    const char *name;
    int args;
  } table[] = {{"mount", 5}, {"mkdir", 2},    {"file", 1}, {"symlink", 2},
               {"readonly", 1}, {"mask", 1}, {"pivot", 0}, {"hostname", 1},
               {"loopback", 0}};
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (strcmp(op, table[i].name) == 0) return table[i].args;
  }
  return -1;
}

static int parse_ns(const char *list) {
  int flags = 0;
  char *copy = strdup(list);
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
    if (strcmp(tok, "mount") == 0) flags |= CLONE_NEWNS;
    else if (strcmp(tok, "pid") == 0) flags |= CLONE_NEWPID;
    else if (strcmp(tok, "uts") == 0) flags |= CLONE_NEWUTS;
    else if (strcmp(tok, "ipc") == 0) flags |= CLONE_NEWIPC;
    else if (strcmp(tok, "net") == 0) flags |= CLONE_NEWNET;
    else if (strcmp(tok, "user") == 0) flags |= CLONE_NEWUSER;
    else usage("unknown namespace");
  }
  free(copy);
  return flags;
}

/*
 * The lock lives as long as this process keeps the descriptor, which it does until it exits
 * after the command; the command itself never sees it (close-on-exec). A missing directory is
 * left for the mount to report.
 */
static void hold_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) flock(fd, LOCK_SH | LOCK_NB);
}

static void parse_args(int argc, char **argv) {
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0'; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--map-root") == 0) { cfg.map_root = 1; continue; }
    if (strcmp(opt, "--init") == 0) { cfg.init = 1; continue; }
    if (strcmp(opt, "--handover") == 0) { cfg.handover = 1; continue; }
    if (i + 1 >= argc) usage("option needs a value");
    const char *val = argv[++i];
    if (strcmp(opt, "--root") == 0) cfg.root = val;
    else if (strcmp(opt, "--ns") == 0) cfg.ns = parse_ns(val);
    else if (strcmp(opt, "--user") == 0) cfg.user = val;
    else if (strcmp(opt, "--cwd") == 0) cfg.cwd = val;
    else if (strcmp(opt, "--status-fd") == 0) cfg.status_fd = atoi(val);
    else if (strcmp(opt, "--status-file") == 0) cfg.status_file = val;
    else if (strcmp(opt, "--cgroup") == 0 && cfg.ncgroups < MAX_LIST) cfg.cgroups[cfg.ncgroups++] = val;
    else if (strcmp(opt, "--env") == 0 && cfg.nenv < MAX_LIST) cfg.env[cfg.nenv++] = (char *)val;
    else if (strcmp(opt, "--hold") == 0) hold_dir(val);
    else if (strcmp(opt, "--cleanup") == 0 && cfg.ncleanups < MAX_LIST) cfg.cleanups[cfg.ncleanups++] = val;
    else if (strcmp(opt, "--hint") == 0 && i + 1 < argc) {
      cfg.hint_prefix = val;
      cfg.hint_text = argv[++i];
    }
    else usage("unknown option or too many values");
  }
  while (i < argc && strcmp(argv[i], "--") != 0) {
    struct step *s = &cfg.steps[cfg.nsteps];
    if (cfg.nsteps >= (int)(sizeof cfg.steps / sizeof cfg.steps[0])) usage("too many steps");
    s->optional = argv[i][0] == '?';
    s->op = argv[i] + s->optional;
    int arity = step_arity(s->op);
    if (arity < 0) usage("unknown step");
    if (i + arity >= argc) usage("step needs more arguments");
    s->args = &argv[i + 1];
    cfg.nsteps++;
    i += 1 + arity;
  }
  if (i >= argc - 1) usage("no command");
  cfg.command = &argv[i + 1];
  if (cfg.nsteps > 0 && cfg.root == NULL) usage("steps need --root");
}

/* ---- paths inside the root ---------------------------------------------------------------- */

/*
 * The host path of `path` inside the root, checked component by component with lstat: no
 * component may be a symlink (the image must not steer a mount elsewhere). The last
 * component may be missing when `may_be_missing`; returns NULL (errno ENOENT) otherwise.
 */
static char *in_root(const char *path, int may_be_missing) {
  static char buf[8192];
  if (path[0] != '/') {
    errno = EINVAL;
    setup_fail("%s: not an absolute path", path);
  }
  size_t len = (size_t)snprintf(buf, sizeof buf, "%s", cfg.root);
  if (len > 1 && buf[len - 1] == '/') buf[--len] = '\0';
  const char *p = path;
  while (*p != '\0') {
    while (*p == '/') p++;
    if (*p == '\0') break;
    const char *end = strchrnul(p, '/');
    size_t n = (size_t)(end - p);
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
      errno = EINVAL;
      setup_fail("%s: '.' and '..' are not allowed", path);
    }
    if (len + 1 + n + 1 > sizeof buf) {
      errno = ENAMETOOLONG;
      setup_fail("%s", path);
    }
    if (!(len == 1 && buf[0] == '/')) buf[len++] = '/';
    memcpy(buf + len, p, n);
    len += n;
    buf[len] = '\0';
    struct stat st;
    if (lstat(buf, &st) < 0) {
      if (errno == ENOENT && *end == '\0' && may_be_missing) return buf;
      if (errno == ENOENT) return NULL;
      setup_fail("%s", path);
    }
    if (S_ISLNK(st.st_mode)) {
      errno = ELOOP;
      setup_fail("%s is a symlink inside the root; refusing to follow it", path);
    }
    p = end;
  }
  return buf;
}

/* ---- the network namespace ---------------------------------------------------------------- */

/*
 * A new network namespace is the slowest to make (~0.5 ms: the kernel registers lo and the
 * per-namespace sysctls), so a process of its own, the maker, makes it while PID 1 does the
 * mounts, and PID 1 joins it before the first step that needs it: a sysfs mount (which shows
 * the mounter's network), lo, the pivot (after which the maker's /proc entry is out of reach),
 * or the exec. The maker holds the namespace until then, and is killed once PID 1 has exec'd.
 */
static pid_t net_maker = 0;
static int net_maker_pidfd = -1;
/* read end of the maker's report, its errno or 0 (-1: no maker, PID 1 unshares the net itself) */
static int net_ready_fd = -1;

static void start_net_maker(void) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) setup_fail("pipe");
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) setup_fail("fork");
  if (pid == 0) {
    close(ready[0]);
    /* only SIGKILL ends it: a terminal's Ctrl-C is for the command, passed on by the parent */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) _exit(EXIT_SETUP);
    int err = unshare(CLONE_NEWNET) < 0 ? errno : 0;
    write_all(ready[1], (const char *)&err, sizeof err);
    for (;;) pause();
  }
  close(ready[1]);
  net_maker = pid;
  net_ready_fd = ready[0];
  /* without pidfds (Linux < 5.3) PID 1 joins through /proc */
  net_maker_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
}

/* In PID 1: waits for the maker's namespace and enters it (once; later calls return at once). */
static void join_net(void) {
  if (net_ready_fd < 0) return;
  int err = 0;
  if (read(net_ready_fd, &err, sizeof err) != (ssize_t)sizeof err) err = ECHILD;
  close(net_ready_fd);
  net_ready_fd = -1;
  if (err != 0) {
    errno = err;
    setup_fail("create a network namespace");
  }
  /* setns takes a pidfd since Linux 5.8 */
  if (net_maker_pidfd >= 0 && setns(net_maker_pidfd, CLONE_NEWNET) == 0) {
    close(net_maker_pidfd);
    return;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/net", (int)net_maker);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) setup_fail("join the network namespace");
  close(fd);
}

static void stop_net_maker(void) {
  if (net_maker <= 0) return;
  kill(net_maker, SIGKILL);
  while (waitpid(net_maker, NULL, 0) < 0 && errno == EINTR) {
  }
  net_maker = 0;
}

/* ---- steps -------------------------------------------------------------------------------- */

struct mount_flags {
  unsigned long flags;   /* for mount(2) */
  unsigned long long attr; /* for mount_setattr(2) after a bind */
};

static struct mount_flags parse_mount_flags(const char *list) {
  struct mount_flags f = {0, 0};
  if (strcmp(list, "-") == 0) return f;
  char *copy = strdup(list);
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
    if (strcmp(tok, "ro") == 0) { f.flags |= MS_RDONLY; f.attr |= MOUNT_ATTR_RDONLY; }
    else if (strcmp(tok, "nosuid") == 0) { f.flags |= MS_NOSUID; f.attr |= MOUNT_ATTR_NOSUID; }
    else if (strcmp(tok, "nodev") == 0) { f.flags |= MS_NODEV; f.attr |= MOUNT_ATTR_NODEV; }
    else if (strcmp(tok, "noexec") == 0) { f.flags |= MS_NOEXEC; f.attr |= MOUNT_ATTR_NOEXEC; }
    else if (strcmp(tok, "relatime") == 0) f.flags |= MS_RELATIME;
    else if (strcmp(tok, "strictatime") == 0) f.flags |= MS_STRICTATIME;
    else if (strcmp(tok, "bind") == 0) f.flags |= MS_BIND;
    else if (strcmp(tok, "rec") == 0) f.flags |= MS_REC;
    else usage("unknown mount flag");
  }
  free(copy);
  return f;
}

static const char *dash_null(const char *s) { return strcmp(s, "-") == 0 ? NULL : s; }

/* Applies mount attributes to a bind mount (and, with rec, everything below it). */
static void set_bind_attrs(const char *target, const char *shown, unsigned long long attr, int rec) {
  if (attr == 0) return;
  struct mount_attr ma = {.attr_set = attr};
  if (syscall(SYS_mount_setattr, AT_FDCWD, target, rec ? AT_RECURSIVE : 0, &ma, sizeof ma) == 0) return;
  if (errno != ENOSYS) setup_fail("mount_setattr %s", shown);
  /* Kernels before 5.12: a bind remount of the top mount only. */
  unsigned long flags = MS_REMOUNT | MS_BIND;
  if (attr & MOUNT_ATTR_RDONLY) flags |= MS_RDONLY;
  if (attr & MOUNT_ATTR_NOSUID) flags |= MS_NOSUID;
  if (attr & MOUNT_ATTR_NODEV) flags |= MS_NODEV;
  if (attr & MOUNT_ATTR_NOEXEC) flags |= MS_NOEXEC;
  if (mount(NULL, target, NULL, flags, NULL) < 0) setup_fail("remount %s", shown);
}

static void step_mount(struct step *s) {
  const char *src = dash_null(s->args[0]);
  const char *shown = s->args[1];
  const char *fstype = dash_null(s->args[2]);
  struct mount_flags f = parse_mount_flags(s->args[3]);
  const char *data = dash_null(s->args[4]);
  if (fstype != NULL && strcmp(fstype, "sysfs") == 0) join_net(); /* sysfs shows the mounter's net */
  if ((f.flags & MS_BIND) && s->optional && src != NULL && access(src, F_OK) < 0) return;
  char *target = in_root(shown, 0);
  if (target == NULL) {
    if (s->optional) return;
    setup_fail("mount on %s", shown);
  }
  if (f.flags & MS_BIND) {
    if (mount(src, target, NULL, f.flags & (MS_BIND | MS_REC), NULL) < 0)
      setup_fail("bind %s on %s", src != NULL ? src : "-", shown);
    set_bind_attrs(target, shown, f.attr, (f.flags & MS_REC) != 0);
    return;
  }
  if (mount(src, target, fstype, f.flags, data) < 0) {
    if (s->optional && (errno == ENODEV || errno == ENOENT)) return;
    setup_fail("mount %s on %s", fstype != NULL ? fstype : "-", shown);
  }
}

static void step_mkdir(struct step *s) {
  char *path = in_root(s->args[0], 1);
  if (path == NULL) {
    if (s->optional) return;
    setup_fail("mkdir %s", s->args[0]);
  }
  mode_t mode = (mode_t)strtoul(s->args[1], NULL, 8);
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (S_ISDIR(st.st_mode)) return;
    errno = ENOTDIR;
    setup_fail("mkdir %s", s->args[0]);
  }
  if (mkdir(path, mode) < 0 && errno != EEXIST) setup_fail("mkdir %s", s->args[0]);
  if (chmod(path, mode) < 0) setup_fail("chmod %s", s->args[0]);
}

static void step_file(struct step *s) {
  char *path = in_root(s->args[0], 1);
  if (path == NULL) {
    if (s->optional) return;
    setup_fail("create %s", s->args[0]);
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) setup_fail("create %s", s->args[0]);
  close(fd);
}

static void step_symlink(struct step *s) {
  char *path = in_root(s->args[1], 1);
  if (path == NULL || symlink(s->args[0], path) < 0) {
    if (s->optional || errno == EEXIST) return;
    setup_fail("symlink %s", s->args[1]);
  }
}

static void step_readonly(struct step *s) {
  char *path = in_root(s->args[0], 0);
  if (path == NULL) {
    if (s->optional) return;
    setup_fail("read-only %s", s->args[0]);
  }
  char copy[8192];
  snprintf(copy, sizeof copy, "%s", path);
  if (mount(copy, copy, NULL, MS_BIND | MS_REC, NULL) < 0) setup_fail("bind %s", s->args[0]);
  set_bind_attrs(copy, s->args[0], MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 1);
}

static void step_mask(struct step *s) {
  char *path = in_root(s->args[0], 0);
  if (path == NULL) {
    if (s->optional) return;
    setup_fail("mask %s", s->args[0]);
  }
  struct stat st;
  if (lstat(path, &st) < 0) setup_fail("mask %s", s->args[0]);
  int rc = S_ISDIR(st.st_mode) ? mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)
                               : mount("/dev/null", path, NULL, MS_BIND, NULL);
  if (rc < 0) setup_fail("mask %s", s->args[0]);
}

static void step_pivot(void) {
  join_net();
  if (chdir(cfg.root) < 0) setup_fail("chdir %s", cfg.root);
  /* pivot_root(".", "."): the old root ends up on top of the new one, then is detached. */
  if (syscall(SYS_pivot_root, ".", ".") < 0) setup_fail("pivot_root %s", cfg.root);
  if (umount2(".", MNT_DETACH) < 0) setup_fail("detach the old root");
  if (chdir("/") < 0) setup_fail("chdir /");
  cfg.root = "/";
}

static void step_loopback(void) {
  join_net();
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) setup_fail("socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) setup_fail("get flags of lo");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) setup_fail("bring up lo");
  close(fd);
}

static void run_steps(void) {
  for (int i = 0; i < cfg.nsteps; i++) {
    struct step *s = &cfg.steps[i];
    if (strcmp(s->op, "mount") == 0) step_mount(s);
    else if (strcmp(s->op, "mkdir") == 0) step_mkdir(s);
    else if (strcmp(s->op, "file") == 0) step_file(s);
    else if (strcmp(s->op, "symlink") == 0) step_symlink(s);
    else if (strcmp(s->op, "readonly") == 0) step_readonly(s);
    else if (strcmp(s->op, "mask") == 0) step_mask(s);
    else if (strcmp(s->op, "pivot") == 0) step_pivot();
    else if (strcmp(s->op, "loopback") == 0) step_loopback();
    else if (strcmp(s->op, "hostname") == 0) {
      if (sethostname(s->args[0], strlen(s->args[0])) < 0) setup_fail("sethostname %s", s->args[0]);
    }
  }
}

/* ---- the user, from the new root's /etc/passwd and /etc/group ----------------------------- */

static int all_digits(const char *s) {
  if (*s == '\0') return 0;
  for (; *s != '\0'; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

/*
 * Finds `key` (a name, or a number when numeric) in a colon-separated file: fields[0] is the
 * name, fields[idfield] the id. Fills `fields` with pointers into `line` (unused ones with "")
 * and returns how many the entry had; 0 if there is none.
 */
static int find_entry(const char *file, const char *key, int idfield, char *line, size_t size, char **fields,
                      int nfields) {
  FILE *f = fopen(file, "re");
  if (f == NULL) return 0;
  int numeric = all_digits(key);
  int found = 0;
  while (!found && fgets(line, (int)size, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    int n = 0;
    for (char *p = line; p != NULL && n < nfields; n++) {
      fields[n] = p;
      p = strchr(p, ':');
      if (p != NULL) *p++ = '\0';
    }
    for (int i = n; i < nfields; i++) fields[i] = "";
    if (n <= idfield) continue;
    if (numeric ? strcmp(fields[idfield], key) == 0 : strcmp(fields[0], key) == 0) found = n;
  }
  fclose(f);
  return found;
}

struct identity {
  uid_t uid;
  gid_t gid;
  char home[1024];
};

static struct identity resolve_user(const char *spec) {
  struct identity id = {0, 0, "/root"};
  char user[256], group[256] = "";
  snprintf(user, sizeof user, "%s", spec != NULL ? spec : "0");
  char *colon = strchr(user, ':');
  if (colon != NULL) {
    *colon = '\0';
    snprintf(group, sizeof group, "%s", colon + 1);
  }
  char line[4096];
  char *f[7];
  if (find_entry("/etc/passwd", user, 2, line, sizeof line, f, 7) >= 4) {
    id.uid = (uid_t)strtoul(f[2], NULL, 10);
    id.gid = (gid_t)strtoul(f[3], NULL, 10);
    snprintf(id.home, sizeof id.home, "%s", f[5][0] != '\0' ? f[5] : "/");
  } else if (all_digits(user)) {
    id.uid = (uid_t)strtoul(user, NULL, 10);
    snprintf(id.home, sizeof id.home, "%s", id.uid == 0 ? "/root" : "/");
  } else {
    fail(EXIT_SETUP, 0, "no user '%s' in the image's /etc/passwd", user);
  }
  if (group[0] != '\0') {
    if (find_entry("/etc/group", group, 2, line, sizeof line, f, 4) >= 3) id.gid = (gid_t)strtoul(f[2], NULL, 10);
    else if (all_digits(group)) id.gid = (gid_t)strtoul(group, NULL, 10);
    else fail(EXIT_SETUP, 0, "no group '%s' in the image's /etc/group", group);
  }
  return id;
}

/* ---- the command -------------------------------------------------------------------------- */

static void drop_capabilities(void) {
  for (int cap = 0; cap <= 63; cap++) {
    int kept = 0;
    for (size_t i = 0; i < sizeof KEPT_CAPS / sizeof KEPT_CAPS[0]; i++) kept |= KEPT_CAPS[i] == cap;
    if (kept) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break; /* past the last capability this kernel knows */
      setup_fail("drop capability %d", cap);
    }
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

static void __attribute__((noreturn)) exec_command(void) {
  struct identity id = resolve_user(cfg.user);
  drop_capabilities();
  /* In a rootless run setgroups(2) is denied (the kernel's rule for unprivileged maps). */
  if (!cfg.map_root && setgroups(1, &id.gid) < 0) setup_fail("setgroups %u", id.gid);
  if (setgid(id.gid) < 0) setup_fail("setgid %u%s", id.gid, cfg.map_root ? " (a rootless run maps only 0)" : "");
  if (setuid(id.uid) < 0) setup_fail("setuid %u%s", id.uid, cfg.map_root ? " (a rootless run maps only 0)" : "");
  /* A change of credentials clears the parent-death signal; set it again. */
  if (!cfg.init) prctl(PR_SET_PDEATHSIG, SIGKILL);
  const char *cwd = cfg.cwd != NULL ? cfg.cwd : "/";
  if (chdir(cwd) < 0) setup_fail("chdir %s", cwd);
  int has_home = 0;
  for (int i = 0; i < cfg.nenv; i++) has_home |= strncmp(cfg.env[i], "HOME=", 5) == 0;
  static char home[1100];
  if (!has_home) {
    snprintf(home, sizeof home, "HOME=%s", id.home);
    cfg.env[cfg.nenv++] = home;
  }
  cfg.env[cfg.nenv] = NULL;
  environ = cfg.env; /* execvp searches the command's PATH, not ours */
  execvp(cfg.command[0], cfg.command);
  int err = errno;
  fail(err == ENOENT || err == ENOTDIR ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC, err, "exec %s", cfg.command[0]);
}

static void join_cgroups(void) {
  for (int i = 0; i < cfg.ncgroups; i++) {
    /* "0" is the writing process, in v1 and v2 alike (our pid in this namespace is 1). */
    if (write(cfg.cgroup_fds[i], "0", 1) != 1) setup_fail("join cgroup %s", cfg.cgroups[i]);
    close(cfg.cgroup_fds[i]);
  }
}

static int wait_status_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* PID 1 with --init: reaps every child, forwards signals, exits with the command's status. */
static void __attribute__((noreturn)) run_init(void) {
  sigset_t set, old;
  forwarded_signals(&set);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, &old);
  pid_t pid = fork();
  if (pid < 0) setup_fail("fork");
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    exec_command();
  }
  close(error_fd);
  error_fd = -1;
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&set, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      kill(pid, sig);
      continue;
    }
    int status;
    pid_t done;
    while ((done = waitpid(-1, &status, WNOHANG)) > 0) {
      if (done == pid) _exit(wait_status_code(status));
    }
  }
}

/* The namespace child: PID 1 of the new pid namespace. */
static void __attribute__((noreturn)) child_main(void) {
  /* out of the caller's session: a terminal's Ctrl-C reaches the command once, through us */
  setsid();
  umask(022);
  int flags = cfg.ns & (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | (net_ready_fd < 0 ? CLONE_NEWNET : 0));
  if (flags != 0 && unshare(flags) < 0) setup_fail("create namespaces");
  if ((cfg.ns & CLONE_NEWNS) && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    setup_fail("make mounts private");
  run_steps();
  join_net();
  join_cgroups();
  if (cfg.init) run_init();
  exec_command();
}

/* ---- removing what the run made (--cleanup) ----------------------------------------------- */

/* Set once the arguments are read: a usage error removes nothing. */
static int cleanup_armed = 0;

static int unlink_entry(int dirfd, const char *name) {
  return unlinkat(dirfd, name, 0) == 0 || errno == ENOENT ? 0 : errno;
}

/*
 * rm -rf of `name` in `dirfd` (`type` from readdir, DT_UNKNOWN when not known); 0 or an errno.
 * A symlink is unlinked, never followed. A directory is tried with rmdir first (most of a run
 * dir is empty directories: one call each), and only entered when that says it is not empty;
 * the kernel refuses rmdir on a mount point (EBUSY) before it looks at the contents, so the
 * removal never enters a mount and takes nothing along that a mount shows. No permission gets
 * in the way: this process is root, or root of the run's user namespace, over the caller's
 * files (a rootless overlay's work/work at mode 000 included).
 */
static int remove_entry(int dirfd, const char *name, unsigned char type) {
  if (type != DT_DIR && type != DT_UNKNOWN) return unlink_entry(dirfd, name);
  if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) return 0;
  if (errno == ENOTDIR) return unlink_entry(dirfd, name);
  if (errno != ENOTEMPTY && errno != EEXIST) return errno;
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  DIR *dir = fdopendir(fd);
  if (dir == NULL) {
    int err = errno;
    close(fd);
    return err;
  }
  int err = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    int r = remove_entry(fd, e->d_name, e->d_type);
    if (r != 0 && err == 0) err = r;
  }
  closedir(dir);
  if (err != 0) return err;
  return unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : errno;
}

/* Removes the --cleanup trees. */
static void remove_cleanups(void) {
  if (!cleanup_armed) return;
  cleanup_armed = 0;
  for (int i = 0; i < cfg.ncleanups; i++) {
    const char *path = cfg.cleanups[i];
    int err = remove_entry(AT_FDCWD, path, DT_UNKNOWN);
    if (err == EBUSY) dprintf(2, "%s: left %s in place: something is mounted on or below it\n", speaker(), path);
    else if (err != 0) dprintf(2, "%s: cannot remove %s: %s\n", speaker(), path, strerror(err));
  }
}

/* ---- the outer process -------------------------------------------------------------------- */

static volatile sig_atomic_t terminations = 0;

static void forward(int sig) {
  if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT) {
    if (++terminations >= KILL_AFTER) sig = SIGKILL;
  }
  if (child_pid > 0) kill(child_pid, sig);
}

/*
 * `unionfs run` died without cleaning up (SIGKILL): the parent-death signal brings us here.
 * The command goes with it, and so do the cgroups it was in; the rest is the caller's.
 */
static volatile sig_atomic_t orphaned = 0;

static void on_orphaned(int sig) {
  (void)sig;
  orphaned = 1;
  if (child_pid > 0) kill(child_pid, SIGKILL);
  else _exit(EXIT_SETUP);
}

static void remove_cgroups(void) {
  for (int i = 0; i < cfg.ncgroups; i++) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", cfg.cgroups[i]);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) continue;
    *slash = '\0';
    /* EBUSY while the killed tasks are still being released */
    for (int tries = 0; tries < 100 && rmdir(dir) < 0 && errno == EBUSY; tries++) usleep(10000);
  }
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) setup_fail("open %s", path);
  ssize_t n = write(fd, text, strlen(text));
  if (n < 0) setup_fail("write %s", path);
  close(fd);
}

/* Creates the user namespace and maps the caller to root inside it. */
static void enter_user_namespace(void) {
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER) < 0) setup_fail("create a user namespace");
  if (!cfg.map_root) return;
  char map[64];
  write_file("/proc/self/setgroups", "deny");
  snprintf(map, sizeof map, "0 %u 1\n", uid);
  write_file("/proc/self/uid_map", map);
  snprintf(map, sizeof map, "0 %u 1\n", gid);
  write_file("/proc/self/gid_map", map);
}

/* Reads what the child wrote on the error pipe before exec (empty when the exec happened). */
static int read_child_error(int fd, char *buf, size_t size) {
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, size - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
    if (len == size - 1) break;
  }
  buf[len] = '\0';
  return (int)len;
}

int main(int argc, char **argv) {
  outer_pid = getpid();
  parse_args(argc, argv);
  cleanup_armed = 1;
  if (cfg.status_file != NULL) {
    cfg.status_fd = open(cfg.status_file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (cfg.status_fd < 0) setup_fail("open %s", cfg.status_file);
  }
  if (cfg.status_fd >= 0 && fcntl(cfg.status_fd, F_SETFD, FD_CLOEXEC) < 0) cfg.status_fd = -1;
  for (int i = 0; i < cfg.ncgroups; i++) {
    cfg.cgroup_fds[i] = open(cfg.cgroups[i], O_WRONLY | O_CLOEXEC);
    if (cfg.cgroup_fds[i] < 0) setup_fail("open %s", cfg.cgroups[i]);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_orphaned;
  sigaction(SIGRTMIN + 1, &sa, NULL);
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGRTMIN + 1) < 0 || getppid() != parent) _exit(EXIT_SETUP);
  if (cfg.ns & CLONE_NEWUSER) enter_user_namespace();
  /* before the pid namespace: the first child forked after it is its PID 1 */
  if (cfg.ns & CLONE_NEWNET) start_net_maker();
  /* Only the pid namespace here (it applies to the child we fork). The child makes the others:
   * this process must stay in the caller's mount namespace, where pivot_root cannot move its
   * root and the cgroup paths still resolve for the cleanup of an orphaned run. */
  if ((cfg.ns & CLONE_NEWPID) && unshare(CLONE_NEWPID) < 0) setup_fail("create a pid namespace");

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) setup_fail("pipe");
  sigset_t forwarded, none;
  forwarded_signals(&forwarded);
  sigemptyset(&none);
  /* held until the handlers that pass them on are in place */
  sigprocmask(SIG_BLOCK, &forwarded, NULL);
  pid_t pid = fork();
  if (pid < 0) setup_fail("fork");
  if (pid == 0) {
    close(pipefd[0]);
    error_fd = pipefd[1];
    signal(SIGRTMIN + 1, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) setup_fail("prctl");
    child_main();
  }
  close(pipefd[1]);
  if (net_ready_fd >= 0) { /* PID 1's to use */
    close(net_ready_fd);
    close(net_maker_pidfd);
    net_ready_fd = net_maker_pidfd = -1;
  }
  child_pid = pid;
  if (orphaned) kill(pid, SIGKILL);
  signal(SIGPIPE, SIG_IGN); /* a dead caller must not stop us from reaping and cleaning up */
  sa.sa_handler = forward;
  sa.sa_flags = SA_RESTART;
  for (int i = 0; i < NFORWARDED; i++) sigaction(FORWARDED[i], &sa, NULL);
  sigprocmask(SIG_SETMASK, &none, NULL);

  char err[4096];
  int failed = read_child_error(pipefd[0], err, sizeof err) > 0;
  stop_net_maker();
  if (failed) report_error(err);
  else status_line("ok");
  close(pipefd[0]);
  int status = reap_after_forwarding(pid, &child_pid);
  if (status < 0) setup_fail("wait for the command");
  if (orphaned) {
    remove_cgroups();
    remove_cleanups();
    _exit(EXIT_SETUP);
  }
  if (WIFSIGNALED(status)) status_line("signal %d", WTERMSIG(status));
  else status_line("exit %d", WEXITSTATUS(status));
  remove_cleanups();
  return wait_status_code(status);
}
