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

#include "forwarded-signals.h"

#define EXIT_SETUP 125

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
  for (int i = 0; i < NFORWARDED; i++) sigaction(FORWARDED[i], &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int status = reap_after_forwarding((pid_t)pid, &helper);
  if (status < 0) {
    dprintf(2, "unionfs: cannot wait for the run's helper %ld: %s\n", pid, strerror(errno));
    return EXIT_SETUP;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
