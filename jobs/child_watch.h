/* The worker loop's one SIGCHLD watcher. Handlers that run child processes register each
 * pid with a callback; on SIGCHLD the watcher reaps only the pids it was given (never
 * waitpid(-1): other code in the process may own children). A handler that is cancelled
 * hands its child over with child_watch_kill(), so the process group is terminated and
 * the leader reaped after the handler's state is gone: no zombie, no orphaned group. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>

struct child_watch;

/* Installs the SIGCHLD event on base (borrowed, must outlive the watcher). One watcher per
 * loop; create it before the first child is started. Returns 0 or -ENOMEM. */
int child_watch_new(struct event_base *base, struct child_watch **ret_cw);

/* Kills (SIGKILL to the group and the pid) and reaps every child still known, without
 * calling callbacks. Accepts NULL; returns NULL. */
struct child_watch *child_watch_free(struct child_watch *cw);

/* Watches pid, a direct child of this process that leads its own process group. on_exit
 * is called once, from the loop, after the pid was reaped; wstatus is as from waitpid(),
 * or -1 when the status was lost (someone else reaped it). userdata: borrowed.
 * Returns 0, -EEXIST (already watched) or -ENOMEM. */
int child_watch_add(struct child_watch *cw, pid_t pid,
                    void (*on_exit)(pid_t pid, int wstatus, void *userdata), void *userdata);

/* Takes over the process group led by pid: its callback (if any) is dropped, SIGTERM goes
 * to the group (and to pid itself while unreaped, in case it left the group) now, SIGKILL
 * after grace_us, and pid is reaped when it exits. pid need not be watched any more: a
 * leader already reaped may leave members behind that still hold resources. Returns 0 or
 * -ENOMEM (then SIGKILL was sent at once and pid stays watched without a callback). */
int child_watch_kill(struct child_watch *cw, pid_t pid, int64_t grace_us);

/* Children still watched or being killed (for shutdown and tests). */
size_t child_watch_count(const struct child_watch *cw);
