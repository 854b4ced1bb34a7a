/*
 * The fm_status_t for an SQLite result code, shared by the areas that keep SQLite databases
 * (security's keys.db, the registry). Header only: SQLite's codes are in sqlite3.h.
 */
#ifndef FM_SECURITY_SQLITE_STATUS_H
#define FM_SECURITY_SQLITE_STATUS_H

#include "core/error.h"

#include <sqlite3.h>

static inline int fm_sqlite_status(int sqlite_rc) {
    switch (sqlite_rc & 0xff) {
    case SQLITE_NOMEM:
        return FM_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return FM_EBUSY;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_SCHEMA:
    case SQLITE_ERROR: /* on a database we did not write: a missing table or column */
        return FM_EFORMAT;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return FM_EDENIED;
    default:
        return FM_EIO;
    }
}

#endif
