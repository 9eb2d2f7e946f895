/*
 * unionfs-wait: what `unionfs run` becomes once its native helper runs, when nothing is left
 * for Node to do but wait (src/runner/run.ts, "handover").
 *
 *   unionfs-wait PID
 *
 * PID is the helper, a child of this process (it was Node's, and an exec keeps children). The
 * caller waits for this process, so it stays: it passes signals on to the helper and exits
 * with the helper's status (128+N if a signal killed it). Node could do the same, but its own
 * exit (~3 ms here) would then follow the run; exec'd right after the helper starts, Node's
 * teardown happens while the helper sets the run up.
 *
 * It starts with every signal blocked (the exec from Node blocks them, so that none is lost)
 * and unblocks them once it can pass them on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_SETUP 125

/* The signals `unionfs run` passes on (the helper passes them to the command). */
static const int FORWARDED[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGCONT};
#define NFORWARDED (int)(sizeof FORWARDED / sizeof FORWARDED[0])

static volatile pid_t helper = 0;

static void forward(int sig) {
  if (helper > 0) kill(helper, sig);
}

int main(int argc, char **argv) {
  char *end = NULL;
  long pid = argc == 2 ? strtol(argv[1], &end, 10) : 0;
  if (pid <= 0 || end == NULL || *end != '\0') {
    dprintf(2, "usage: unionfs-wait PID\n");
    return EXIT_SETUP;
  }
  helper = (pid_t)pid;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward;
  sa.sa_flags = SA_RESTART;
  sigset_t forwarded, none;
  sigemptyset(&forwarded);
  sigemptyset(&none);
  for (int i = 0; i < NFORWARDED; i++) {
    sigaction(FORWARDED[i], &sa, NULL);
    sigaddset(&forwarded, FORWARDED[i]);
  }
  signal(SIGPIPE, SIG_IGN);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* Wait without reaping, then stop passing signals on: once reaped, the pid may be another's. */
  siginfo_t info;
  while (waitid(P_PID, (id_t)helper, &info, WEXITED | WNOWAIT) < 0) {
    if (errno == EINTR) continue;
    dprintf(2, "unionfs: cannot wait for the run's helper %d: %s\n", (int)helper, strerror(errno));
    return EXIT_SETUP;
  }
  sigprocmask(SIG_BLOCK, &forwarded, NULL);
  helper = 0;
  int status = 0;
  while (waitpid((pid_t)pid, &status, 0) < 0) {
    if (errno != EINTR) return EXIT_SETUP;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
