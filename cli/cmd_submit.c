/* maintq submit: builds job descriptors from the command line, a file or a JSON-lines
 * batch, validates them (descriptor rules and the job type's params check), signs them
 * when a key is configured, and adds them to Redis through the submit script (unique
 * windows and delays are applied there atomically). --wait blocks on LISTEN
 * maintq_results until the job's final row is in Postgres and exits with its status. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cli.h"
#include "cli_conn.h"
#include "cli_wait.h"
#include "descriptor.h"
#include "descriptor_sig.h"
#include "job.h"
#include "parse.h"
#include "resp.h"
#include "rq.h"
#include "rq_scripts.h"

#define SUBMIT_CHUNK 500 /* jobs per script call in a batch */

static const char usage[] =
    "usage: maintq submit TYPE [key=value...] [options]\n"
    "       maintq submit --file job.json [options]\n"
    "       maintq submit --batch jobs.jsonl [options]\n"
    "\n"
    "Adds jobs to the queue and prints each job's id. Values of key=value are JSON when\n"
    "they parse as JSON (42, true, [\"a\"]) and strings otherwise.\n"
    "\n"
    "  --queue Q            queue (default: default)\n"
    "  --delay DURATION     start no earlier than now + DURATION (30s, 5m, 2h)\n"
    "  --timeout DURATION   time limit of one attempt (default 300s)\n"
    "  --attempts N         attempts before the dead letter (default 3)\n"
    "  --lock KEY           never run at the same time as another job with KEY\n"
    "  --unique-for DUR     a second submit within DUR returns the first job's id\n"
    "  --unique-key K       the key of --unique-for (default: type and params)\n"
    "  --wait               wait for the result, print it, exit with its status\n"
    "                       (0 ok, 1 warning, 2 critical, 3 anything else)\n"
    "  --wait-timeout DUR   give up waiting after DUR (exit 3)\n"
    "  --json               print JSON instead of text\n"
    "  --redis-url URL      default $MAINTQ_REDIS_URL\n"
    "  --database-url URL   for --wait; default $MAINTQ_DATABASE_URL\n"
    "  --prefix P           Redis key prefix (default {maintq})\n"
    "Descriptors are signed when MAINTQ_SIGNING_KEY=keyid:secret is set.\n";

struct submit_opts {
    const char *queue, *lock, *unique_key, *redis_url, *db_url, *prefix;
    int64_t delay_us, timeout_us, attempts, unique_for_us, wait_timeout_us;
    int wait, json;
    char submitter[128];
    char *sign_key_id; /* owned */
    char *sign_key;    /* owned: the secret */
};

/* One validated job ready for the script. */
struct pending_job {
    struct descriptor *d; /* owned */
    char *text;           /* owned */
};

static int set_opt_int(json_t *obj, const char *key, int64_t v)
{
    return v > 0 ? json_object_set_new(obj, key, json_integer(v)) : 0;
}

/* Applies command-line settings to a descriptor object where it does not set them. */
static void apply_defaults(json_t *obj, const struct submit_opts *o)
{
    if (o->queue && !json_object_get(obj, "queue"))
        json_object_set_new(obj, "queue", json_string(o->queue));
    if (o->lock && !json_object_get(obj, "lock"))
        json_object_set_new(obj, "lock", json_string(o->lock));
    if (!json_object_get(obj, "timeout_s"))
        set_opt_int(obj, "timeout_s", (o->timeout_us + 999999) / 1000000);
    if (!json_object_get(obj, "max_attempts"))
        set_opt_int(obj, "max_attempts", o->attempts);
    if (o->unique_for_us > 0 && !json_object_get(obj, "unique_for_s"))
        set_opt_int(obj, "unique_for_s", (o->unique_for_us + 999999) / 1000000);
}

/* Sets obj's unique_key to the default, the type and a digest of the canonical params,
 * before validation. A type or params of the wrong kind is left for validation to name. */
static int set_default_unique_key(json_t *obj)
{
    const json_t *type = json_object_get(obj, "type"), *params = json_object_get(obj, "params");
    char *canon = params ? json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char key[160];
    size_t n;

    if (!json_is_string(type) || (params && !json_is_object(params))) {
        free(canon);
        return 0;
    }
    if (!canon)
        return -ENOMEM;
    EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL);
    free(canon);
    n = (size_t)snprintf(key, sizeof(key), "%.64s:", json_string_value(type));
    for (unsigned int i = 0; i < 16; i++)
        n += (size_t)snprintf(key + n, sizeof(key) - n, "%02x", md[i]);
    return json_object_set_new(obj, "unique_key", json_string(key)) < 0 ? -ENOMEM : 0;
}

/* Validates obj (borrowed) into a pending job. Prints nothing; eb names the field. */
static int prepare(json_t *obj, const struct submit_opts *o, struct pending_job *ret,
                   struct errbuf *eb)
{
    struct pending_job p = {0};
    const struct job_type *t;
    int r;

    apply_defaults(obj, o);
    if (o->unique_for_us > 0 && !json_object_get(obj, "unique_key") && o->unique_key)
        json_object_set_new(obj, "unique_key", json_string(o->unique_key));
    if (json_object_get(obj, "unique_for_s") && !json_object_get(obj, "unique_key") &&
        set_default_unique_key(obj) < 0)
        return -ENOMEM;
    r = descriptor_from_json(obj, 0, &p.d, eb);
    if (r < 0)
        return r;
    t = job_type_find(p.d->type);
    if (!t) {
        errbuf_set(eb, "type: unknown job type \"%s\"", p.d->type);
        r = -EINVAL;
        goto fail;
    }
    if (t->check && (r = t->check(p.d->params, eb)) < 0)
        goto fail;
    r = descriptor_fill_defaults(p.d, o->submitter);
    if (r < 0) {
        errbuf_set(eb, "descriptor: cannot fill defaults (%s)", strerror(-r));
        goto fail;
    }
    if (o->sign_key) {
        r = descriptor_sign(p.d, o->sign_key_id, (const uint8_t *)o->sign_key,
                            strlen(o->sign_key));
        if (r < 0) {
            errbuf_set(eb, "MAINTQ_SIGNING_KEY: cannot sign (key id of [A-Za-z0-9_.-], "
                           "secret of 16+ bytes)");
            goto fail;
        }
    }
    r = descriptor_to_json(p.d, true, &p.text, NULL);
    if (r < 0) {
        errbuf_set(eb, "descriptor: %s", r == -E2BIG ? "larger than 65536 bytes" : "no memory");
        goto fail;
    }
    *ret = p;
    return 0;
fail:
    descriptor_free(p.d);
    return r;
}

static void pending_release(struct pending_job *p)
{
    descriptor_free(p->d);
    free(p->text);
}

/* --- the submit pipeline ---------------------------------------------------------------
 * Jobs go to Redis in script calls of SUBMIT_CHUNK jobs. A call is written as soon as it is
 * full, and replies are read while later lines are still being validated, with at most
 * SUBMIT_WINDOW calls unanswered: Redis runs one chunk while this process prepares the
 * next, and neither side buffers the whole batch. Ids are printed, in input order, as
 * their chunk is answered. */

#define SUBMIT_WINDOW 8

struct sent_job {
    char id[UUID_STR_LEN]; /* the job's own id (the script answers the standing one) */
    char queue[65];
};

struct sent_chunk {
    size_t n;
    int first_line, last_line; /* of the input; 0 for a job from the command line */
    struct sent_job jobs[SUBMIT_CHUNK];
};

struct submitter {
    redisContext *ctx; /* owned, connected at the first job */
    const struct submit_opts *o;
    struct redis_script script;
    struct resp_cmd cmd;                          /* the chunk being filled */
    struct sent_chunk chunks[SUBMIT_WINDOW + 1]; /* a ring: oldest unanswered at head */
    size_t head, count;                          /* count includes the one being filled */
    size_t submitted;
    char first_id[UUID_STR_LEN]; /* the standing id of the first job, for --wait */
    size_t refused;              /* chunks the script failed on (printed) */
    bool failed;                 /* the connection failed (printed): nothing more is sent */
};

static struct sent_chunk *filling(struct submitter *sm)
{
    return &sm->chunks[(sm->head + sm->count - 1) % (SUBMIT_WINDOW + 1)];
}

/* Connects and loads the script: at the first good job, so that a batch of only bad
 * lines is reported in full without needing Redis. */
static int submitter_connect(struct submitter *sm)
{
    redisReply *reply;

    if (cli_redis_open("submit", sm->o->redis_url, &sm->ctx) < 0)
        return -EIO;
    redis_script_init(&sm->script, rq_lua_submit);
    reply = redisCommand(sm->ctx, "SCRIPT LOAD %s", sm->script.text);
    if (!reply || reply->type != REDIS_REPLY_STRING) {
        cli_error("submit", "redis: cannot load the submit script: %s",
                  reply && reply->type == REDIS_REPLY_ERROR ? reply->str : sm->ctx->errstr);
        freeReplyObject(reply);
        return -EIO;
    }
    freeReplyObject(reply);
    return 0;
}

/* The connection broke: nothing more is sent or read. */
static void connection_failed(struct submitter *sm, int from_line)
{
    char why[512];

    redis_error_text(why, sizeof(why), sm->ctx->errstr[0] ? sm->ctx->errstr : "no reply");
    if (from_line > 0)
        cli_error("submit", "redis: %s; the jobs from line %d on may not have been submitted",
                  why, from_line);
    else
        cli_error("submit", "redis: %s; the job may not have been submitted", why);
    sm->failed = true;
}

/* Reads the reply of the oldest unanswered chunk and prints its ids. A chunk the script
 * failed on is named and the later ones still count: a script is not rolled back, so some
 * of its jobs may be in, which the message says. */
static int read_chunk_reply(struct submitter *sm)
{
    struct sent_chunk *ch = &sm->chunks[sm->head];
    redisReply *reply;
    void *rp = NULL;
    int r = 0;

    if (redisGetReply(sm->ctx, &rp) != REDIS_OK || !rp) {
        connection_failed(sm, ch->first_line);
        return -EIO;
    }
    reply = rp;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != ch->n) {
        char why[512];

        redis_error_text(why, sizeof(why),
                         reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        if (ch->first_line > 0)
            fprintf(stderr,
                    "maintq submit: lines %d-%d: redis refused them (%s); some of these jobs "
                    "may have been submitted\n",
                    ch->first_line, ch->last_line, why);
        else
            cli_error("submit", "redis refused the job (%s)", why);
        sm->refused++;
        r = -EIO;
    } else {
        for (size_t i = 0; i < ch->n; i++) {
            const redisReply *e = reply->element[i];
            const char *id = e->type == REDIS_REPLY_STRING ? e->str : ch->jobs[i].id;
            bool dedup = strcmp(id, ch->jobs[i].id) != 0;

            if (sm->submitted == 0)
                snprintf(sm->first_id, sizeof(sm->first_id), "%s", id);
            sm->submitted++;
            if (sm->o->json)
                printf("{\"id\":\"%s\",\"queue\":\"%s\",\"deduplicated\":%s}\n", id,
                       ch->jobs[i].queue, dedup ? "true" : "false");
            else
                printf("%s%s\n", id,
                       dedup ? " (already submitted within the unique window)" : "");
        }
    }
    freeReplyObject(reply);
    sm->head = (sm->head + 1) % (SUBMIT_WINDOW + 1);
    sm->count--;
    return r;
}

/* Writes the chunk being filled; reads the oldest reply when the window is full. */
static int send_chunk(struct submitter *sm)
{
    const char *lead[] = {"EVALSHA", sm->script.sha1, "0"};
    const char *bytes;
    size_t len;
    int done = 0;

    if (resp_cmd_encode(&sm->cmd, 3, lead, &bytes, &len) < 0 ||
        redisAppendFormattedCommand(sm->ctx, bytes, len) != REDIS_OK) {
        cli_error("submit", "out of memory; the jobs from line %d on were not submitted",
                  filling(sm)->first_line);
        sm->failed = true;
        return -ENOMEM;
    }
    resp_cmd_release(&sm->cmd);
    do {
        if (redisBufferWrite(sm->ctx, &done) != REDIS_OK) {
            connection_failed(sm, sm->chunks[sm->head].first_line);
            return -EIO;
        }
    } while (!done);
    if (sm->count > SUBMIT_WINDOW)
        return read_chunk_reply(sm);
    return 0;
}

/* Adds one validated job (borrowed) from the given input line. */
static int submitter_add(struct submitter *sm, const struct pending_job *job, int line)
{
    const struct descriptor *d = job->d;
    struct sent_chunk *ch;

    if (sm->failed)
        return -EIO;
    if (!sm->ctx && submitter_connect(sm) < 0) {
        sm->failed = true;
        return -EIO;
    }
    if (sm->cmd.argc == 0) {
        sm->count++;
        ch = filling(sm);
        ch->n = 0;
        ch->first_line = line;
        resp_cmd_add_str(&sm->cmd, sm->o->prefix);
    }
    ch = filling(sm);
    ch->last_line = line;
    snprintf(ch->jobs[ch->n].id, UUID_STR_LEN, "%s", d->id);
    snprintf(ch->jobs[ch->n].queue, sizeof(ch->jobs[ch->n].queue), "%s", d->queue);
    ch->n++;
    resp_cmd_add_str(&sm->cmd, d->queue);
    resp_cmd_add_str(&sm->cmd, d->id);
    resp_cmd_add_str(&sm->cmd, job->text);
    resp_cmd_add_int(&sm->cmd, d->max_attempts);
    resp_cmd_add_int(&sm->cmd, sm->o->delay_us / 1000);
    resp_cmd_add_int(&sm->cmd, d->unique_for_s * 1000);
    resp_cmd_add_str(&sm->cmd, d->unique_key ? d->unique_key : "");
    return ch->n == SUBMIT_CHUNK ? send_chunk(sm) : 0;
}

/* Sends what is left and reads every outstanding reply. */
static int submitter_finish(struct submitter *sm)
{
    if (!sm->failed && sm->cmd.argc > 0)
        send_chunk(sm);
    while (!sm->failed && sm->count > 0)
        read_chunk_reply(sm);
    fflush(stdout);
    return sm->failed || sm->refused ? -EIO : 0;
}

static struct submitter *submitter_free(struct submitter *sm)
{
    if (!sm)
        return NULL;
    resp_cmd_release(&sm->cmd);
    if (sm->ctx)
        redisFree(sm->ctx);
    free(sm);
    return NULL;
}

static json_t *params_from_args(int argc, char **argv, struct errbuf *eb)
{
    json_t *params = json_object();

    for (int i = 0; i < argc && params; i++) {
        char *eq = strchr(argv[i], '=');
        json_t *v;

        if (!eq || eq == argv[i]) {
            errbuf_set(eb, "\"%s\": expected key=value", argv[i]);
            json_decref(params);
            return NULL;
        }
        v = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        if (!v)
            v = json_string(eq + 1);
        if (!v) {
            errbuf_set(eb, "params.%.*s: not valid UTF-8", (int)(eq - argv[i]), argv[i]);
            json_decref(params);
            return NULL;
        }
        *eq = '\0';
        json_object_set_new(params, argv[i], v);
        *eq = '=';
    }
    return params;
}

/* Submits a --batch file: one descriptor object per line; blank lines are skipped. Bad
 * lines are reported with their number and left out. Returns the number of bad lines, or
 * -1 when the file cannot be read or Redis failed (printed). */
static int submit_batch(const char *path, struct submitter *sm)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    size_t len = 0;
    char *line = NULL;
    ssize_t got;
    int lineno = 0, bad = 0;

    if (!f) {
        cli_error("submit", "--batch \"%s\": %s", path, strerror(errno));
        return -1;
    }
    while (!sm->failed && (got = getline(&line, &len, f)) >= 0) {
        struct errbuf eb = {{0}};
        struct pending_job job;
        json_error_t jerr;
        json_t *obj;

        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)got)
            continue;
        obj = json_loadb(line, (size_t)got, JSON_REJECT_DUPLICATES, &jerr);
        if (!obj) {
            fprintf(stderr, "maintq submit: line %d: invalid JSON: %s\n", lineno, jerr.text);
            bad++;
            continue;
        }
        if (prepare(obj, sm->o, &job, &eb) < 0) {
            fprintf(stderr, "maintq submit: line %d: %s\n", lineno, eb.msg);
            bad++;
        } else {
            submitter_add(sm, &job, lineno);
            pending_release(&job);
        }
        json_decref(obj);
    }
    if (!sm->failed && ferror(f)) {
        cli_error("submit", "--batch \"%s\": read error after line %d", path, lineno);
        sm->failed = true;
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return sm->failed ? -1 : bad;
}

static int parse_signing_key(struct submit_opts *o)
{
    const char *env = getenv("MAINTQ_SIGNING_KEY");
    const char *colon;

    if (!env || !*env)
        return 0;
    colon = strchr(env, ':');
    if (!colon) {
        cli_error("submit", "MAINTQ_SIGNING_KEY: expected keyid:secret");
        return -EINVAL;
    }
    o->sign_key_id = strndup(env, (size_t)(colon - env));
    o->sign_key = strdup(colon + 1);
    return o->sign_key_id && o->sign_key ? 0 : -ENOMEM;
}

static int run_submit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"batch", required_argument, NULL, 'b'},
        {"queue", required_argument, NULL, 'q'},
        {"delay", required_argument, NULL, 'D'},
        {"timeout", required_argument, NULL, 't'},
        {"attempts", required_argument, NULL, 'a'},
        {"lock", required_argument, NULL, 'l'},
        {"unique-for", required_argument, NULL, 'u'},
        {"unique-key", required_argument, NULL, 'U'},
        {"wait", no_argument, NULL, 'w'},
        {"wait-timeout", required_argument, NULL, 'W'},
        {"json", no_argument, NULL, 'j'},
        {"redis-url", required_argument, NULL, 'r'},
        {"database-url", required_argument, NULL, 'd'},
        {"prefix", required_argument, NULL, 'P'},
        {0},
    };
    struct submit_opts o = {.prefix = RQ_DEFAULT_PREFIX};
    const char *file = NULL, *batch = NULL;
    struct submitter *sm = NULL;
    char host[64] = "localhost";
    const char *user = getenv("USER");
    int opt, bad = 0, rc = CLI_EXIT_UNKNOWN;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            file = optarg;
            break;
        case 'b':
            batch = optarg;
            break;
        case 'q':
            o.queue = optarg;
            break;
        case 'l':
            o.lock = optarg;
            break;
        case 'U':
            o.unique_key = optarg;
            break;
        case 'r':
            o.redis_url = optarg;
            break;
        case 'd':
            o.db_url = optarg;
            break;
        case 'P':
            o.prefix = optarg;
            break;
        case 'w':
            o.wait = 1;
            break;
        case 'j':
            o.json = 1;
            break;
        case 'D':
        case 't':
        case 'u':
        case 'W': {
            int64_t *dst = opt == 'D' ? &o.delay_us
                           : opt == 't' ? &o.timeout_us
                           : opt == 'u' ? &o.unique_for_us
                                        : &o.wait_timeout_us;

            if (parse_duration_us(optarg, dst) < 0) {
                cli_error("submit", "--%s: \"%s\" is not a duration (e.g. 30s, 5m, 2h)",
                          opt == 'D' ? "delay" : opt == 't' ? "timeout"
                                     : opt == 'u' ? "unique-for" : "wait-timeout",
                          optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        }
        case 'a':
            if (parse_int64(optarg, 1, 100, &o.attempts) < 0) {
                cli_error("submit", "--attempts: \"%s\" is not a number in 1-100", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        default:
            cli_error("submit", "unknown option '%s' (see maintq submit --help)",
                      argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    /* getopt moved TYPE and key=value arguments behind the options. */
    if (!!file + !!batch + (optind < argc) != 1) {
        cli_error("submit", "give exactly one of TYPE [key=value...], --file or --batch");
        return CLI_EXIT_USAGE;
    }
    if (batch && o.wait) {
        cli_error("submit", "--wait works with one job, not with --batch");
        return CLI_EXIT_USAGE;
    }
    gethostname(host, sizeof(host) - 1);
    snprintf(o.submitter, sizeof(o.submitter), "%s@%s", user && *user ? user : "cli", host);
    if (parse_signing_key(&o) < 0)
        goto out;
    sm = calloc(1, sizeof(*sm)); /* about half a megabyte: not on the stack */
    if (!sm) {
        cli_error("submit", "out of memory");
        goto out;
    }
    sm->o = &o;
    if (batch) {
        bad = submit_batch(batch, sm);
    } else {
        struct errbuf eb = {{0}};
        struct pending_job job;
        json_t *obj;

        if (file) {
            json_error_t jerr;

            obj = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
            if (!obj) {
                cli_error("submit", "%s: line %d: %s", file, jerr.line, jerr.text);
                rc = CLI_EXIT_USAGE;
                goto out;
            }
        } else {
            json_t *params = params_from_args(argc - optind - 1, argv + optind + 1, &eb);

            if (!params) {
                cli_error("submit", "%s", eb.msg);
                rc = CLI_EXIT_USAGE;
                goto out;
            }
            obj = json_pack("{s:s,s:o}", "type", argv[optind], "params", params);
        }
        if (!obj || prepare(obj, &o, &job, &eb) < 0) {
            json_decref(obj);
            cli_error("submit", "%s", eb.msg[0] ? eb.msg : "out of memory");
            rc = CLI_EXIT_USAGE;
            goto out;
        }
        json_decref(obj);
        submitter_add(sm, &job, 0);
        pending_release(&job);
    }
    if (submitter_finish(sm) < 0 || bad != 0) {
        if (batch && !sm->failed && bad >= 0)
            fprintf(stderr,
                    "maintq submit: %zu submitted, %d bad line(s) left out, %zu chunk(s) "
                    "refused by redis\n",
                    sm->submitted, bad, sm->refused);
        /* Bad input is a usage error; Redis refusing or failing is not. */
        rc = sm->failed || sm->refused || bad < 0 ? CLI_EXIT_UNKNOWN : CLI_EXIT_USAGE;
        goto out;
    }
    rc = CLI_EXIT_OK;
    if (o.wait && sm->submitted == 1)
        rc = cli_wait_for_job("submit", o.db_url, sm->first_id, o.wait_timeout_us, o.json);
out:
    submitter_free(sm);
    free(o.sign_key);
    free(o.sign_key_id);
    return rc;
}

const struct cli_command cli_cmd_submit = {
    .name = "submit",
    .summary = "add jobs to a queue (from arguments, a file or a JSON-lines batch)",
    .usage = usage,
    .run = run_submit,
};
