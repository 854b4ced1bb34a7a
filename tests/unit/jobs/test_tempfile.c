/*
 * Tests of the temporary files of the jobs area (jobs/tempfile.c): they hold what is written to
 * them, can be opened by their /proc/self/fd path, never have a name in their directory, and a
 * directory that does not exist is named in the error.
 */
#include "jobs/jobs_internal.h"
#include "fm_test.h"

#include <stdio.h>
#include <unistd.h>

static void test_temp_files_have_no_name(void) {
    char dir[] = "/tmp/fm-tempfile-XXXXXX";
    FM_CHECK(mkdtemp(dir) != NULL);
    fm_error_t err;
    int fd = fm_jobs_temp_fd(dir, &err);
    FM_CHECK(fd >= 0);
    FM_CHECK(write(fd, "a,b\n1,2\n", 8) == 8);
    char path[64];
    fm_jobs_fd_path(fd, path, sizeof path);
    FILE *fp = fopen(path, "r");
    char line[16] = "";
    FM_CHECK(fp && fgets(line, sizeof line, fp));
    FM_CHECK_STR(line, "a,b\n");
    if (fp) fclose(fp);
    close(fd);
    FM_CHECK(rmdir(dir) == 0); /* empty: the file never had a name there */
    FM_CHECK_INT(fm_jobs_temp_fd("/nonexistent-dir-for-test", &err), -1);
    FM_CHECK(strstr(err.msg, "/nonexistent-dir-for-test") != NULL);
}

FM_TEST_MAIN(FM_TEST_CASE(test_temp_files_have_no_name))
