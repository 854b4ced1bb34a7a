/*
 * Scratch files for the unit tests: one scratch directory per test process under /tmp, made on
 * first use and removed when the process exits, paths and homes in it, and rm -rf of a tree in
 * it. A test that forks must leave its children with _exit, so that only the parent removes it.
 */
#ifndef FM_TEST_FS_H
#define FM_TEST_FS_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fm_test_scratch[64];

/* rm -rf of a scratch tree (only ever called on paths under the scratch directory). */
static inline void fm_test_remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char child[PATH_MAX];
            int n = snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            if (n > 0 && (size_t)n < sizeof child) fm_test_remove_tree(child);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static inline void fm_test_remove_scratch(void) {
    if (fm_test_scratch[0]) fm_test_remove_tree(fm_test_scratch);
}

/* The path of name in this process's scratch directory, made on first use (exits when /tmp
 * cannot hold it). Nothing is created or removed at the path itself. */
static inline void fm_test_scratch_path(char *buf, size_t size, const char *name) {
    if (!fm_test_scratch[0]) {
        snprintf(fm_test_scratch, sizeof fm_test_scratch, "/tmp/fm_test_XXXXXX");
        if (!mkdtemp(fm_test_scratch)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(fm_test_remove_scratch);
    }
    snprintf(buf, size, "%s/%s", fm_test_scratch, name);
}

/* The same path with whatever was there removed. */
static inline void fm_test_fresh_path(char *buf, size_t size, const char *name) {
    fm_test_scratch_path(buf, size, name);
    fm_test_remove_tree(buf);
}

/* A home directory (mode 0700) at the scratch path of name: made when absent, kept as it is
 * when present. */
static inline void fm_test_home(char *buf, size_t size, const char *name) {
    fm_test_scratch_path(buf, size, name);
    mkdir(buf, 0700);
}

#endif
