/*
 * Error codes and error messages.
 *
 * Every finmaas function that can fail returns an int: 0 (FM_OK) on success or a negative FM_E*
 * code. When the caller passes an fm_error_t, the function also leaves there a message that names
 * the thing that went wrong (file, line, column, field, model). One list, FM_ERROR_LIST, generates
 * both the enum and fm_strerror(), so a code can never lack its text.
 *
 * Only src/cli prints errors and exits; the server (later) maps codes to HTTP statuses in one
 * place. assert() is for bugs, never for bad input.
 */
#ifndef FM_CORE_ERROR_H
#define FM_CORE_ERROR_H

#include <stddef.h>

/* X(name, value, text) */
#define FM_ERROR_LIST(X)                                                                           \
    X(OK, 0, "ok")                                                                                 \
    X(ENOMEM, -1, "out of memory")                                                                 \
    X(EIO, -2, "input/output error")                                                               \
    X(EPARSE, -3, "malformed input")                                                               \
    X(EINVAL, -4, "invalid argument")                                                              \
    X(ENOTFOUND, -5, "not found")                                                                  \
    X(EFORMAT, -6, "corrupt or unsupported file")                                                  \
    X(ERANGE, -7, "value out of range")                                                            \
    X(EUNSUPPORTED, -8, "not supported")                                                           \
    X(ELIMIT, -9, "size limit exceeded")                                                           \
    X(EEXIST, -10, "already exists")                                                               \
    X(ESTATE, -11, "operation not valid in this state")                                            \
    X(ECANCELED, -12, "canceled")                                                                  \
    X(EDENIED, -13, "permission denied")                                                           \
    X(EBUSY, -14, "busy")                                                                          \
    X(EDATA, -15, "unusable data")

typedef enum {
#define FM_ERROR_ENUM(name, value, text) FM_##name = value,
    FM_ERROR_LIST(FM_ERROR_ENUM)
#undef FM_ERROR_ENUM
} fm_status_t;

#define FM_ERROR_MESSAGE_MAX 512

/* The detailed result of a failed call. Plain data: callers declare one on the stack. */
typedef struct fm_error {
    int code;                       /* FM_OK or a negative FM_E* code */
    char msg[FM_ERROR_MESSAGE_MAX]; /* one line, no trailing newline; "" when code is FM_OK */
} fm_error_t;

/* The fixed text of a code, e.g. "malformed input". Never NULL; unknown codes give "unknown error".
 */
const char *fm_strerror(int code);

/* The enum name of a code without the FM_ prefix, e.g. "EPARSE". Never NULL. */
const char *fm_error_name(int code);

/* Clears err to FM_OK. err may be NULL. */
void fm_error_clear(fm_error_t *err);

/*
 * Records code and a printf-style message in err (err may be NULL) and returns code, so that a
 * failing function can end with `return fm_error_set(err, FM_EPARSE, "...", ...);`.
 */
int fm_error_set(fm_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Puts prefix (printf-style) in front of the message already in err, keeping its code, and returns
 * that code. Used to add context ("model 'credit': ") on the way up. err may be NULL.
 */
int fm_error_prefix(fm_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message of err, or the code's fixed text when no message was recorded. */
const char *fm_error_message(const fm_error_t *err);

/*
 * message with every occurrence of dir (and the '/' after it) left out, so that an error shown to
 * a client does not tell where the server keeps its files: "<dir>/keys.db: ..." becomes
 * "keys.db: ...". Returns message itself when message is NULL or dir is NULL, empty or not in it;
 * otherwise out, which holds size bytes (a longer result is cut to fit).
 */
const char *fm_error_without_dir(const char *message, const char *dir, char *out, size_t size);

#endif
