/* maintq submit: builds job descriptors from the command line, a file or a JSON-lines
 * batch, validates them (descriptor rules and the job type's params check), signs them
 * when a key is configured, and adds them to Redis through the submit script (unique
 * windows and delays are applied there atomically). --wait blocks on LISTEN
 * maintq_results until the job's final row is in Postgres and exits with its status. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
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
    int line;
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

/* Sends jobs[0..n) in chunks through the submit script, pipelined; writes each job's
 * winning id into ids (36 chars + NUL each). Returns 0 or -EIO with the error printed. */
static int send_jobs(redisContext *ctx, const struct submit_opts *o, struct pending_job *jobs,
                     size_t n, char (*ids)[UUID_STR_LEN])
{
    struct redis_script s;
    redisReply *reply;
    size_t chunks = (n + SUBMIT_CHUNK - 1) / SUBMIT_CHUNK;
    int r = 0;

    redis_script_init(&s, rq_lua_submit);
    reply = redisCommand(ctx, "SCRIPT LOAD %s", s.text);
    if (!reply || reply->type != REDIS_REPLY_STRING) {
        cli_error("submit", "redis: cannot load the submit script: %s",
                  reply && reply->type == REDIS_REPLY_ERROR ? reply->str : ctx->errstr);
        freeReplyObject(reply);
        return -EIO;
    }
    freeReplyObject(reply);
    for (size_t c = 0; c < chunks; c++) {
        struct rq_args a = {0};
        int e = 0;

        e |= rq_args_push_str(&a, "EVALSHA");
        e |= rq_args_push_str(&a, s.sha1);
        e |= rq_args_push_str(&a, "0");
        e |= rq_args_push_str(&a, o->prefix);
        for (size_t i = c * SUBMIT_CHUNK; i < n && i < (c + 1) * SUBMIT_CHUNK; i++) {
            const struct descriptor *d = jobs[i].d;

            e |= rq_args_push_str(&a, d->queue);
            e |= rq_args_push_str(&a, d->id);
            e |= rq_args_push_str(&a, jobs[i].text);
            e |= rq_args_push_int(&a, d->max_attempts);
            e |= rq_args_push_int(&a, o->delay_us / 1000);
            e |= rq_args_push_int(&a, d->unique_for_s * 1000);
            e |= rq_args_push_str(&a, d->unique_key ? d->unique_key : "");
        }
        if (e == 0)
            e = redisAppendCommandArgv(ctx, a.argc, a.cargv, a.argvlen) == REDIS_OK ? 0 : -1;
        rq_args_release(&a);
        if (e) {
            cli_error("submit", "redis: cannot queue the command");
            return -EIO;
        }
    }
    for (size_t c = 0; c < chunks; c++) {
        void *rp = NULL;

        if (redisGetReply(ctx, &rp) != REDIS_OK || !rp) {
            cli_error("submit", "redis: %s", ctx->errstr[0] ? ctx->errstr : "no reply");
            return -EIO;
        }
        reply = rp;
        if (reply->type != REDIS_REPLY_ARRAY) {
            if (r == 0)
                cli_error("submit", "redis: submit script failed: %s",
                          reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
            r = -EIO;
        } else {
            for (size_t i = 0; i < reply->elements; i++) {
                size_t k = c * SUBMIT_CHUNK + i;

                if (k < n && reply->element[i]->type == REDIS_REPLY_STRING)
                    snprintf(ids[k], UUID_STR_LEN, "%s", reply->element[i]->str);
            }
        }
        freeReplyObject(reply);
    }
    return r;
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

/* Reads a --batch file: one descriptor object per line; blank lines are skipped. Bad
 * lines are reported with their number and left out. Returns the number of bad lines, or
 * -1 when the file cannot be read. */
static int read_batch(const char *path, const struct submit_opts *o, struct pending_job **ret,
                      size_t *ret_n)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    struct pending_job *jobs = NULL;
    size_t n = 0, cap = 0, len = 0;
    char *line = NULL;
    ssize_t got;
    int lineno = 0, bad = 0;

    if (!f) {
        cli_error("submit", "--batch \"%s\": %s", path, strerror(errno));
        return -1;
    }
    while ((got = getline(&line, &len, f)) >= 0) {
        struct errbuf eb = {{0}};
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
        if (n == cap) {
            struct pending_job *nj;

            cap = cap ? cap * 2 : 1024;
            nj = realloc(jobs, cap * sizeof(*jobs));
            if (!nj) {
                json_decref(obj);
                cli_error("submit", "out of memory at line %d", lineno);
                bad = -1;
                break;
            }
            jobs = nj;
        }
        if (prepare(obj, o, &jobs[n], &eb) < 0) {
            fprintf(stderr, "maintq submit: line %d: %s\n", lineno, eb.msg);
            bad++;
        } else {
            jobs[n++].line = lineno;
        }
        json_decref(obj);
    }
    free(line);
    if (f != stdin)
        fclose(f);
    *ret = jobs;
    *ret_n = n;
    return bad;
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
    struct pending_job *jobs = NULL;
    char (*ids)[UUID_STR_LEN] = NULL;
    size_t n = 0;
    redisContext *ctx = NULL;
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
    if (batch) {
        bad = read_batch(batch, &o, &jobs, &n);
        if (bad < 0)
            goto out;
    } else {
        struct errbuf eb = {{0}};
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
        jobs = calloc(1, sizeof(*jobs));
        if (!obj || !jobs || prepare(obj, &o, &jobs[0], &eb) < 0) {
            json_decref(obj);
            cli_error("submit", "%s", eb.msg[0] ? eb.msg : "out of memory");
            rc = CLI_EXIT_USAGE;
            goto out;
        }
        json_decref(obj);
        n = 1;
    }
    if (n > 0) {
        ids = calloc(n, sizeof(*ids));
        if (!ids || cli_redis_open("submit", o.redis_url, &ctx) < 0)
            goto out;
        if (send_jobs(ctx, &o, jobs, n, ids) < 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int dedup = strcmp(ids[i], jobs[i].d->id) != 0;

        if (o.json)
            printf("{\"id\":\"%s\",\"queue\":\"%s\",\"deduplicated\":%s}\n", ids[i],
                   jobs[i].d->queue, dedup ? "true" : "false");
        else
            printf("%s%s\n", ids[i], dedup ? " (already submitted within the unique window)" : "");
    }
    fflush(stdout);
    if (bad > 0) {
        fprintf(stderr, "maintq submit: %zu submitted, %d bad line(s) left out\n", n, bad);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    rc = CLI_EXIT_OK;
    if (o.wait && n == 1)
        rc = cli_wait_for_job("submit", o.db_url, ids[0], o.wait_timeout_us, o.json);
out:
    for (size_t i = 0; jobs && i < n; i++)
        pending_release(&jobs[i]);
    free(jobs);
    free(ids);
    free(o.sign_key);
    free(o.sign_key_id);
    if (ctx)
        redisFree(ctx);
    return rc;
}

const struct cli_command cli_cmd_submit = {
    .name = "submit",
    .summary = "add jobs to a queue (from arguments, a file or a JSON-lines batch)",
    .usage = usage,
    .run = run_submit,
};
