/* RESP encoding of Redis commands: an array of bulk strings, the bytes hiredis's
 * redisFormatCommandArgv() makes. Ours writes length headers without printf and builds a
 * command in one growing buffer, which matters on the hot paths: a worker's finish batch
 * and a batch submit are several thousand arguments each. The bytes go to
 * redisAsyncFormattedCommand() or redisAppendFormattedCommand(). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* Room kept in front of the arguments for the array header and up to a few leading
 * arguments (a script call's EVALSHA, SHA1 and key count), so encoding never moves the
 * arguments. */
#define RESP_HEADROOM 96

/* A command being built. Zero-initialise, add arguments, encode, release. An add that
 * fails (out of memory) is remembered in b.err and later adds do nothing, so a caller can
 * add a whole batch and check once. */
struct resp_cmd {
    struct strbuf b; /* RESP_HEADROOM bytes, then each argument as a bulk string; b.err is
                      * 0, or -ENOMEM from the first add that failed */
    int argc;        /* arguments added */
};

void resp_cmd_add(struct resp_cmd *c, const void *s, size_t len);
void resp_cmd_add_str(struct resp_cmd *c, const char *s);
void resp_cmd_add_int(struct resp_cmd *c, int64_t v);

/* Completes the command: writes the array header and then the nlead strings of lead (each
 * NUL-terminated) into the headroom, so the command is lead... followed by the added
 * arguments. *ret points into c->buf (valid until the next add or release) and *ret_len
 * is the command's length. Encoding again, with another lead, is allowed. Returns 0, c->err,
 * or -E2BIG when the lead does not fit the headroom, or -EINVAL when the command would be
 * empty. */
int resp_cmd_encode(struct resp_cmd *c, int nlead, const char *const *lead, const char **ret,
                    size_t *ret_len);

/* Frees the buffer and leaves an empty command that can be reused. */
void resp_cmd_release(struct resp_cmd *c);
