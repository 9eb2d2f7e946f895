/*
 * The signals `unionfs run` passes on to its command, and how a process that passes them on
 * waits for its child. Shared by the helper (unionfs-run.c) and the waiter (unionfs-wait.c), so
 * that a run passes on the same signals whichever of them `unionfs run` is; src/cli/
 * run-command.ts lists the same ones for Node. SIGCHLD is an init's own business.
 */
#ifndef UNIONFS_FORWARDED_SIGNALS_H
#define UNIONFS_FORWARDED_SIGNALS_H

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

static const int FORWARDED[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGCONT};
#define NFORWARDED (int)(sizeof FORWARDED / sizeof FORWARDED[0])

static inline void forwarded_signals(sigset_t *set) {
  sigemptyset(set);
  for (int i = 0; i < NFORWARDED; i++) sigaddset(set, FORWARDED[i]);
}

/*
 * Waits for the child `pid` to exit and reaps it; its wait status, or -1 (errno set). Between
 * its exit and the reaping, the forwarded signals are blocked and `*target` (the pid the
 * handlers pass them to) is cleared: until it is reaped, its pid cannot go to another process,
 * so no signal passed on ever reaches a stranger.
 */
static inline int reap_after_forwarding(pid_t pid, volatile pid_t *target) {
  siginfo_t info;
  while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0) {
    if (errno != EINTR) return -1;
  }
  sigset_t forwarded;
  forwarded_signals(&forwarded);
  sigprocmask(SIG_BLOCK, &forwarded, NULL);
  *target = 0;
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

#endif
