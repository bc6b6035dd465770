/* `exec`: runs one allowlisted program, without a shell, and maps its exit to a status
 * the monitoring way: exit 0 -> ok, 1 -> warning, 2 -> critical, any other code or death
 * by a signal -> failed (the three lists can be changed with ok_exit_codes,
 * warning_exit_codes and critical_exit_codes; a code in none of them is failed).
 *
 * The child is started with posix_spawn() rather than a hand-written fork()+exec(): glibc
 * does the vfork-style clone, resets signal dispositions and mask, puts the child in its
 * own process group (setpgid), wires stdin to /dev/null and stdout+stderr to one pipe,
 * closes every other descriptor (even ones some library forgot to mark O_CLOEXEC), and
 * reports a failed exec as an error of start() instead of an anonymous exit code 127.
 * The child's environment is only params.env plus PATH=/usr/sbin:/usr/bin:/sbin:/bin
 * (params.env may set its own PATH): the worker's environment holds secrets.
 *
 * The run ends when the process was reaped (jobs/child_watch.c) AND the pipe reached EOF,
 * in either order. Only the last 64 KiB of output are kept, in a ring buffer, and made
 * valid UTF-8 for the result. cancel() hands the process group to child_watch, which sends
 * SIGTERM, then SIGKILL after 2 s, and reaps the leader after this state is gone. */
#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child_watch.h"
#include "clock.h"

#define EXEC_TAIL_MAX (64 * 1024)
#define EXEC_KILL_GRACE_US (2 * USEC_PER_SEC)
#define EXEC_DEFAULT_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
#define EXEC_READS_PER_WAKEUP 16

static const char *const exec_keys[] = {
    "argv", "env", "cwd", "ok_exit_codes", "warning_exit_codes", "critical_exit_codes", NULL,
};

/* The parsed params. Strings in argv and cwd are borrowed from the params JSON. */
struct exec_spec {
    const char **argv;         /* owned array, NULL-terminated; strings borrowed */
    char **envp;               /* owned array and strings, NULL-terminated */
    const char *cwd;           /* borrowed; NULL = the worker's directory */
    unsigned char status[256]; /* enum job_status per exit code */
};

struct exec_state {
    struct exec_spec spec;
    struct job_exec *x; /* borrowed: the run this state belongs to */
    pid_t pid;
    int fd;                 /* owned: read end of the output pipe, -1 once closed */
    struct event *readable; /* owned */
    int exited;             /* the pid was reaped */
    int wstatus;            /* from waitpid(), -1 if lost */
    int eof;                /* the pipe reached end of file */
    int64_t started_us;     /* monotonic */
    size_t head;            /* next write position in tail */
    uint64_t total;         /* bytes read in all */
    unsigned char tail[EXEC_TAIL_MAX];
};

static void exec_spec_release(struct exec_spec *sp)
{
    free(sp->argv);
    sp->argv = NULL;
    if (sp->envp) {
        for (size_t i = 0; sp->envp[i]; i++)
            free(sp->envp[i]);
        free(sp->envp);
        sp->envp = NULL;
    }
}

/* Returns the string of v, or NULL when v is not a string free of NUL bytes. */
static const char *plain_string(const json_t *v)
{
    const char *s = json_string_value(v);

    if (!s || strlen(s) != json_string_length(v))
        return NULL;
    return s;
}

/* An absolute path with no "." or ".." component: the allowlist compares bytes, so a path
 * that could name the same file in a second spelling is refused outright. */
static int path_is_plain_absolute(const char *p)
{
    size_t n = strlen(p);

    if (p[0] != '/')
        return 0;
    if (strstr(p, "/./") || strstr(p, "/../"))
        return 0;
    if ((n >= 2 && strcmp(p + n - 2, "/.") == 0) || (n >= 3 && strcmp(p + n - 3, "/..") == 0))
        return 0;
    return 1;
}

static int parse_argv(const json_t *v, struct exec_spec *sp, struct errbuf *eb)
{
    size_t n;

    if (!v) {
        errbuf_set(eb, "params.argv: required");
        return -EINVAL;
    }
    if (!json_is_array(v) || json_array_size(v) == 0) {
        errbuf_set(eb, "params.argv: expected non-empty array of strings");
        return -EINVAL;
    }
    n = json_array_size(v);
    sp->argv = calloc(n + 1, sizeof(*sp->argv));
    if (!sp->argv) {
        errbuf_set(eb, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        sp->argv[i] = plain_string(json_array_get(v, i));
        if (!sp->argv[i]) {
            errbuf_set(eb, "params.argv[%zu]: expected string without NUL bytes", i);
            return -EINVAL;
        }
    }
    if (!path_is_plain_absolute(sp->argv[0])) {
        errbuf_set(eb, "params.argv[0]: expected absolute path without . or .. components");
        return -EINVAL;
    }
    return 0;
}

static int parse_env(const json_t *v, struct exec_spec *sp, struct errbuf *eb)
{
    const char *key;
    json_t *value;
    size_t n = 0;
    int have_path = 0;

    if (v && !json_is_object(v)) {
        errbuf_set(eb, "params.env: expected object of strings");
        return -EINVAL;
    }
    sp->envp = calloc((v ? json_object_size(v) : 0) + 2, sizeof(*sp->envp));
    if (!sp->envp) {
        errbuf_set(eb, "out of memory");
        return -ENOMEM;
    }
    if (v) {
        json_object_foreach((json_t *)(uintptr_t)v, key, value) {
            const char *s = plain_string(value);
            size_t len;

            if (key[0] == '\0' || strchr(key, '=')) {
                errbuf_set(eb, "params.env: name \"%s\" is empty or contains '='", key);
                return -EINVAL;
            }
            if (!s) {
                errbuf_set(eb, "params.env.%s: expected string without NUL bytes", key);
                return -EINVAL;
            }
            len = strlen(key) + 1 + strlen(s) + 1;
            sp->envp[n] = malloc(len);
            if (!sp->envp[n]) {
                errbuf_set(eb, "out of memory");
                return -ENOMEM;
            }
            snprintf(sp->envp[n], len, "%s=%s", key, s);
            n++;
            if (strcmp(key, "PATH") == 0)
                have_path = 1;
        }
    }
    if (!have_path) {
        sp->envp[n] = strdup(EXEC_DEFAULT_PATH);
        if (!sp->envp[n]) {
            errbuf_set(eb, "out of memory");
            return -ENOMEM;
        }
    }
    return 0;
}

/* Fills sp->status from one list. An explicit list conflicting with an earlier one is an
 * error; a default list simply leaves out codes an explicit list has claimed. */
static int parse_codes(const json_t *params, const char *field, const int default_code,
                       enum job_status status, int explicit_pass, struct exec_spec *sp,
                       struct errbuf *eb)
{
    const json_t *v = params ? json_object_get(params, field) : NULL;
    size_t i;
    json_t *c;

    if (!explicit_pass) {
        if (!v && sp->status[default_code] == JOB_STATUS_FAILED)
            sp->status[default_code] = (unsigned char)status;
        return 0;
    }
    if (!v)
        return 0;
    if (!json_is_array(v)) {
        errbuf_set(eb, "params.%s: expected array of integers", field);
        return -EINVAL;
    }
    json_array_foreach(v, i, c) {
        json_int_t code;

        if (!json_is_integer(c)) {
            errbuf_set(eb, "params.%s[%zu]: expected integer", field, i);
            return -EINVAL;
        }
        code = json_integer_value(c);
        if (code < 0 || code > 255) {
            errbuf_set(eb, "params.%s[%zu]: exit codes are 0 to 255", field, i);
            return -ERANGE;
        }
        if (sp->status[code] != JOB_STATUS_FAILED && sp->status[code] != status) {
            errbuf_set(eb, "params.%s[%zu]: %lld is already in %s_exit_codes", field, i,
                       (long long)code, job_status_name((enum job_status)sp->status[code]));
            return -EINVAL;
        }
        sp->status[code] = (unsigned char)status;
    }
    return 0;
}

static int exec_parse(const json_t *params, struct exec_spec *sp, struct errbuf *eb)
{
    static const struct {
        const char *field;
        int default_code;
        enum job_status status;
    } lists[] = {
        {"ok_exit_codes", 0, JOB_STATUS_OK},
        {"warning_exit_codes", 1, JOB_STATUS_WARNING},
        {"critical_exit_codes", 2, JOB_STATUS_CRITICAL},
    };
    const json_t *cwd;
    int r;

    memset(sp, 0, sizeof(*sp));
    memset(sp->status, JOB_STATUS_FAILED, sizeof(sp->status));
    r = job_params_check_object(params, exec_keys, eb);
    if (r < 0)
        return r;
    if (!params) {
        errbuf_set(eb, "params.argv: required");
        return -EINVAL;
    }
    r = parse_argv(json_object_get(params, "argv"), sp, eb);
    if (r < 0)
        return r;
    r = parse_env(json_object_get(params, "env"), sp, eb);
    if (r < 0)
        return r;
    cwd = json_object_get(params, "cwd");
    if (cwd) {
        sp->cwd = plain_string(cwd);
        if (!sp->cwd || sp->cwd[0] != '/') {
            errbuf_set(eb, "params.cwd: expected absolute path");
            return -EINVAL;
        }
    }
    for (int pass = 1; pass >= 0; pass--) {
        for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
            r = parse_codes(params, lists[i].field, lists[i].default_code, lists[i].status, pass,
                            sp, eb);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static int exec_check(const json_t *params, struct errbuf *eb)
{
    struct exec_spec sp;
    int r;

    r = exec_parse(params, &sp, eb);
    exec_spec_release(&sp);
    return r;
}

static struct exec_state *exec_state_free(struct exec_state *st)
{
    if (!st)
        return NULL;
    if (st->readable)
        event_free(st->readable);
    if (st->fd >= 0)
        close(st->fd);
    exec_spec_release(&st->spec);
    free(st);
    return NULL;
}

/* Copies s (n bytes) replacing every ill-formed UTF-8 sequence (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF) by U+FFFD, one per maximal ill-formed subpart.
 * Returns a malloc'd buffer (caller frees with free()) of *ret_len bytes, or NULL. */
static char *utf8_sanitize(const unsigned char *s, size_t n, size_t *ret_len)
{
    char *out = malloc(n * 3 + 1);
    size_t o = 0, i = 0;

    if (!out)
        return NULL;
    while (i < n) {
        unsigned char c = s[i];
        unsigned char lo = 0x80, hi = 0xBF;
        size_t need, k;

        if (c < 0x80) {
            out[o++] = (char)c;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3;
        else
            need = 0;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
        else if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        for (k = 1; need && k <= need && i + k < n; k++) {
            unsigned char b = s[i + k];

            if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
                break;
        }
        if (need && k == need + 1) {
            memcpy(out + o, s + i, need + 1);
            o += need + 1;
            i += need + 1;
        } else {
            out[o++] = (char)0xEF;
            out[o++] = (char)0xBF;
            out[o++] = (char)0xBD;
            i += need ? k : 1;
        }
    }
    out[o] = '\0';
    *ret_len = o;
    return out;
}

/* The kept output as one string. Returns a new JSON string or NULL. */
static json_t *exec_tail_json(const struct exec_state *st)
{
    unsigned char *flat; /* owned */
    size_t n, skip = 0, len;
    char *clean; /* owned */
    json_t *j;

    n = st->total < EXEC_TAIL_MAX ? (size_t)st->total : EXEC_TAIL_MAX;
    flat = malloc(n ? n : 1);
    if (!flat)
        return NULL;
    if (st->total <= EXEC_TAIL_MAX) {
        memcpy(flat, st->tail, n);
    } else {
        memcpy(flat, st->tail + st->head, EXEC_TAIL_MAX - st->head);
        memcpy(flat + (EXEC_TAIL_MAX - st->head), st->tail, st->head);
        /* The cut may fall inside a character: drop its orphaned continuation bytes. */
        while (skip < 3 && skip < n && (flat[skip] & 0xC0) == 0x80)
            skip++;
    }
    clean = utf8_sanitize(flat + skip, n - skip, &len);
    free(flat);
    if (!clean)
        return NULL;
    j = json_stringn(clean, len);
    free(clean);
    return j;
}

static void exec_finish(struct exec_state *st)
{
    struct job_exec *x = st->x;
    enum job_status status = JOB_STATUS_FAILED;
    json_t *result; /* new: handed to job_exec_done */
    json_t *exit_code = json_null(), *sig = json_null(), *tail;
    char error[64] = "";
    int64_t duration_ms = (clock_mono_us() - st->started_us) / 1000;

    if (st->wstatus == -1) {
        snprintf(error, sizeof(error), "child status lost");
    } else if (WIFEXITED(st->wstatus)) {
        int code = WEXITSTATUS(st->wstatus);

        exit_code = json_integer(code);
        status = (enum job_status)st->spec.status[code];
        if (status == JOB_STATUS_FAILED)
            snprintf(error, sizeof(error), "exit code %d", code);
    } else if (WIFSIGNALED(st->wstatus)) {
        sig = json_integer(WTERMSIG(st->wstatus));
        snprintf(error, sizeof(error), "killed by signal %d", WTERMSIG(st->wstatus));
    }
    tail = exec_tail_json(st);
    result = json_pack("{s:o*,s:o*,s:o*,s:b,s:I}", "exit_code", exit_code, "signal", sig,
                       "output_tail", tail, "output_truncated", st->total > EXEC_TAIL_MAX,
                       "duration_ms", (json_int_t)duration_ms);
    x->state = exec_state_free(st);
    if (!result || !tail) {
        json_decref(result);
        job_exec_done(x, JOB_STATUS_FAILED, NULL, "out of memory building the result");
        return;
    }
    job_exec_done(x, status, result, status == JOB_STATUS_FAILED ? error : NULL);
}

/* The run ends only when both ends are in: the process is reaped and its output drained. */
static void exec_drive(struct exec_state *st)
{
    if (st->exited && st->eof)
        exec_finish(st);
}

static void exec_on_exit(pid_t pid, int wstatus, void *userdata)
{
    struct exec_state *st = userdata;

    st->exited = 1;
    st->wstatus = wstatus;
    exec_drive(st);
}

static void exec_on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct exec_state *st = arg;

    for (int i = 0; i < EXEC_READS_PER_WAKEUP; i++) {
        ssize_t n = read(st->fd, st->tail + st->head, EXEC_TAIL_MAX - st->head);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0)
            break; /* EOF, or an error that ends the output just the same */
        st->head = (st->head + (size_t)n) % EXEC_TAIL_MAX;
        st->total += (uint64_t)n;
        if (i == EXEC_READS_PER_WAKEUP - 1)
            return; /* let other events run; the level-triggered event fires again */
    }
    event_free(st->readable);
    st->readable = NULL;
    close(st->fd);
    st->fd = -1;
    st->eof = 1;
    exec_drive(st);
}

static int exec_spawn(struct exec_state *st, struct errbuf *eb)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t mask, defaults;
    int fds[2] = {-1, -1};
    int r, err;

    if (pipe2(fds, O_CLOEXEC) < 0) {
        r = -errno;
        errbuf_set(eb, "cannot create pipe: %s", strerror(errno));
        return r;
    }
    if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
        r = -errno;
        errbuf_set(eb, "cannot set pipe non-blocking: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return r;
    }
    st->fd = fds[0];

    sigemptyset(&mask);
    sigfillset(&defaults);
    sigdelset(&defaults, SIGKILL);
    sigdelset(&defaults, SIGSTOP);
    err = posix_spawn_file_actions_init(&fa);
    if (err) {
        close(fds[1]);
        errbuf_set(eb, "out of memory");
        return -err;
    }
    err = posix_spawnattr_init(&attr);
    if (err) {
        posix_spawn_file_actions_destroy(&fa);
        close(fds[1]);
        errbuf_set(eb, "out of memory");
        return -err;
    }
    err = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (!err)
        err = posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    if (!err)
        err = posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
    if (!err)
        err = posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
    if (!err && st->spec.cwd)
        err = posix_spawn_file_actions_addchdir_np(&fa, st->spec.cwd);
    if (!err)
        err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF);
    if (!err)
        err = posix_spawnattr_setpgroup(&attr, 0);
    if (!err)
        err = posix_spawnattr_setsigmask(&attr, &mask);
    if (!err)
        err = posix_spawnattr_setsigdefault(&attr, &defaults);
    if (err) {
        errbuf_set(eb, "cannot prepare the child: %s", strerror(err));
    } else {
        /* posix_spawn takes char *const[]; it does not modify the strings. */
        err = posix_spawn(&st->pid, st->spec.argv[0], &fa, &attr,
                          (char *const *)(uintptr_t)st->spec.argv, st->spec.envp);
        if (err && st->spec.cwd && access(st->spec.cwd, X_OK) < 0)
            errbuf_set(eb, "params.cwd: \"%s\": %s", st->spec.cwd, strerror(errno));
        else if (err)
            errbuf_set(eb, "params.argv[0]: cannot run \"%s\": %s", st->spec.argv[0],
                       strerror(err));
    }
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]); /* the child holds the only write end now: EOF when it and its kin exit */
    return -err;
}

static int exec_start(struct job_exec *x, struct errbuf *eb)
{
    struct exec_state *st;
    int r;

    st = calloc(1, sizeof(*st));
    if (!st) {
        errbuf_set(eb, "out of memory");
        return -ENOMEM;
    }
    st->x = x;
    st->fd = -1;
    st->pid = -1;
    r = exec_parse(x->params, &st->spec, eb);
    if (r < 0)
        goto fail;
    r = -EPERM;
    for (const char *const *a = x->env ? x->env->exec_allow : NULL; a && *a; a++) {
        if (strcmp(*a, st->spec.argv[0]) == 0) {
            r = 0;
            break;
        }
    }
    if (r < 0) {
        errbuf_set(eb, "params.argv[0]: \"%s\" is not in the worker's exec allowlist",
                   st->spec.argv[0]);
        goto fail;
    }
    if (!x->children) {
        errbuf_set(eb, "exec: the worker has no child watcher");
        r = -EINVAL;
        goto fail;
    }
    st->started_us = clock_mono_us();
    r = exec_spawn(st, eb);
    if (r < 0)
        goto fail;
    r = child_watch_add(x->children, st->pid, exec_on_exit, st);
    if (r < 0) {
        errbuf_set(eb, "out of memory");
        /* Nobody would reap it: stop and reap it here. The wait is short after SIGKILL. */
        kill(-st->pid, SIGKILL);
        while (waitpid(st->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        goto fail;
    }
    st->readable = event_new(x->base, st->fd, EV_READ | EV_PERSIST, exec_on_readable, st);
    if (!st->readable || event_add(st->readable, NULL) < 0) {
        errbuf_set(eb, "cannot watch the output pipe");
        child_watch_kill(x->children, st->pid, 0);
        r = -ENOMEM;
        goto fail;
    }
    x->state = st;
    return 0;
fail:
    exec_state_free(st);
    return r;
}

static void exec_cancel(struct job_exec *x)
{
    struct exec_state *st = x->state;

    if (!st)
        return;
    /* Whether or not the leader was reaped, its group may live on (holding the pipe). */
    child_watch_kill(x->children, st->pid, EXEC_KILL_GRACE_US);
    x->state = exec_state_free(st);
}

const struct job_type job_type_exec = {
    .name = "exec",
    .check = exec_check,
    .start = exec_start,
    .cancel = exec_cancel,
};
