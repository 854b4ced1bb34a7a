/*
 * Tests of the server's pure parts: the route table and its matcher, the status mapping, the
 * configuration (defaults, listen addresses, config files, environment), and the jsmn-based JSON
 * helpers (tokenising, skipping, in-place unescaping, primitives). The server end to end is
 * tested in tests/integration/test_serve*.py.
 */
#include "fm_test.h"
#include "server/internal.h"
#include "server/jsonfast.h"

#include <unistd.h>

static fm_request_t *request(const char *method, const char *path) {
    static fm_request_t req;
    memset(&req, 0, sizeof req);
    snprintf(req.method, sizeof req.method, "%s", method);
    snprintf(req.path, sizeof req.path, "%s", path);
    return &req;
}

static void test_routes(void) {
    fm_error_t err;
    fm_request_t *r = request("POST", "/v2/models/credit/infer");
    FM_CHECK_INT(fm_routes_match(r, &err), 0);
    FM_CHECK(r->route->handler == fm_h_v2_infer);
    FM_CHECK_INT(r->nparams, 1);
    FM_CHECK_STR(r->params[0], "credit");
    r = request("POST", "/v2/models/credit/versions/12/infer");
    FM_CHECK_INT(fm_routes_match(r, &err), 0);
    FM_CHECK_INT(r->nparams, 2);
    FM_CHECK_STR(r->params[1], "12");
    r = request("POST", "/v1/models/credit:predict");
    FM_CHECK_INT(fm_routes_match(r, &err), 0);
    FM_CHECK(r->route->handler == fm_h_tf_predict);
    FM_CHECK_STR(r->params[0], "credit");
    r = request("POST", "/v1/models/credit/labels/production:predict");
    FM_CHECK_INT(fm_routes_match(r, &err), 0);
    FM_CHECK_STR(r->params[1], "production");
    r = request("GET", "/v1/models/credit");
    FM_CHECK_INT(fm_routes_match(r, &err), 0);
    FM_CHECK(r->route->handler == fm_h_tf_status);
    r = request("GET", "/v2/health/ready/");
    FM_CHECK_INT(fm_routes_match(r, &err), 0);
    r = request("GET", "/v2/models/credit/infer");
    FM_CHECK_INT(fm_routes_match(r, &err), FM_EUNSUPPORTED);
    char allow[64];
    fm_routes_allowed("/v2/models/credit/infer", allow, sizeof allow);
    FM_CHECK_STR(allow, "POST");
    fm_routes_allowed("/api/models/m/labels/production", allow, sizeof allow);
    FM_CHECK_STR(allow, "PUT, DELETE");
    r = request("GET", "/v3/nothing");
    FM_CHECK_INT(fm_routes_match(r, &err), FM_ENOTFOUND);
    r = request("GET", "/v2/models//ready");
    FM_CHECK(fm_routes_match(r, &err) != 0 || strlen(r->params[0]) > 0);
    r = request("POST", "/v1/models/:predict");
    FM_CHECK(fm_routes_match(r, &err) != 0); /* no model name: never routed to predict */
    /* Every route has a handler, a known method and a pattern starting with '/'. */
    size_t n;
    const fm_route_t *t = fm_routes_table(&n);
    for (size_t i = 0; i < n; i++) {
        FM_CHECK(t[i].handler != NULL && t[i].pattern[0] == '/');
        FM_CHECK(!strcmp(t[i].method, "GET") || !strcmp(t[i].method, "POST") ||
                 !strcmp(t[i].method, "PUT") || !strcmp(t[i].method, "DELETE"));
    }
}

static void test_status_mapping(void) {
    FM_CHECK_INT(fm_http_status(FM_EPARSE), 400);
    FM_CHECK_INT(fm_http_status(FM_ENOTFOUND), 404);
    FM_CHECK_INT(fm_http_status(FM_EDATA), 422);
    FM_CHECK_INT(fm_http_status(FM_ELIMIT), 413);
    FM_CHECK_INT(fm_http_status(FM_EBUSY), 503);
    FM_CHECK_INT(fm_http_status(FM_ESTATE), 503);
    FM_CHECK_INT(fm_http_status(FM_EUNSUPPORTED), 415);
    FM_CHECK_INT(fm_http_status(FM_EIO), 500);
}

static void test_config(void) {
    fm_server_config_t c;
    fm_error_t err;
    fm_server_config_defaults(&c);
    FM_CHECK_STR(c.host, "127.0.0.1");
    FM_CHECK_INT(c.port, 8080);
    FM_CHECK_INT(c.batch_max_size, 0);
    FM_CHECK_INT(c.max_body_bytes, 8 << 20);
    FM_CHECK_INT(fm_server_config_listen(&c, "0.0.0.0:9000", &err), 0);
    FM_CHECK_STR(c.host, "0.0.0.0");
    FM_CHECK_INT(c.port, 9000);
    FM_CHECK_INT(fm_server_config_listen(&c, "[::1]:0", &err), 0);
    FM_CHECK_STR(c.host, "::1");
    FM_CHECK_INT(c.port, 0);
    FM_CHECK_INT(fm_server_config_listen(&c, ":7000", &err), 0);
    FM_CHECK_STR(c.host, "127.0.0.1");
    FM_CHECK_INT(fm_server_config_listen(&c, "localhost", &err), FM_EINVAL);
    FM_CHECK_INT(fm_server_config_listen(&c, "h:99999", &err), FM_EINVAL);
    FM_CHECK_INT(fm_server_config_listen(&c, "h:12x", &err), FM_EINVAL);

    char path[] = "/tmp/fm_config_XXXXXX";
    int fd = mkstemp(path);
    const char *good = "{\"home\": \"/srv/h\", \"listen\": \"127.0.0.1:9100\", \"threads\": 3,"
                       " \"batch\": {\"max_size\": 16, \"max_delay_us\": 200, \"queue\": 9}}";
    FM_CHECK(write(fd, good, strlen(good)) == (ssize_t)strlen(good));
    close(fd);
    fm_server_config_defaults(&c);
    FM_CHECK_INT(fm_server_config_load(&c, path, &err), 0);
    FM_CHECK_STR(c.home, "/srv/h");
    FM_CHECK_INT(c.port, 9100);
    FM_CHECK_INT(c.threads, 3);
    FM_CHECK_INT(c.batch_max_size, 16);
    FM_CHECK_INT(c.queue_limit, 9);
    const char *bad[] = {"{\"thread\": 3}", "{\"threads\": 0}", "[1]", "{\"batch\": {\"size\": 1}}",
                         "{\"listen\": 5}", "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *fp = fopen(path, "w");
        fputs(bad[i], fp);
        fclose(fp);
        int rc = fm_server_config_load(&c, path, &err);
        FM_CHECK_MSG(rc != 0, "accepted %s", bad[i]);
        FM_CHECK(strstr(err.msg, path) != NULL);
    }
    unlink(path);

    setenv("FINMAAS_THREADS", "5", 1);
    setenv("FINMAAS_LISTEN", "127.0.0.1:8181", 1);
    fm_server_config_defaults(&c);
    FM_CHECK_INT(fm_server_config_from_env(&c, &err), 0);
    FM_CHECK_INT(c.threads, 5);
    FM_CHECK_INT(c.port, 8181);
    setenv("FINMAAS_THREADS", "many", 1);
    FM_CHECK_INT(fm_server_config_from_env(&c, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "FINMAAS_THREADS") != NULL);
    unsetenv("FINMAAS_THREADS");
    unsetenv("FINMAAS_LISTEN");
    cJSON *d = fm_server_config_describe(&c);
    FM_CHECK(cJSON_GetObjectItem(d, "listen") && cJSON_GetObjectItem(d, "batch"));
    cJSON_Delete(d);
}

static void test_jsonfast(void) {
    fm_error_t err;
    fm_jdoc_t d;
    char text[] =
        "{\"a\": [1, [2, 3], {\"x\": null}], \"s\": \"h\\u00e9\\n\\\"q\\\" \\ud83d\\ude00\","
        " \"t\": true, \"n\": -1.5e2}";
    FM_CHECK_INT(fm_jdoc_parse(&d, text, strlen(text), &err), 0);
    FM_CHECK(fm_jdoc_is(&d, 1, "a"));
    int after_a = fm_jdoc_next(&d, 2);
    FM_CHECK(fm_jdoc_is(&d, after_a, "s"));
    const char *s;
    size_t n;
    FM_CHECK_INT(fm_jdoc_string(&d, after_a + 1, &s, &n, &err), 0);
    FM_CHECK_INT(n, strlen("h\xc3\xa9\n\"q\" \xf0\x9f\x98\x80"));
    FM_CHECK(memcmp(s, "h\xc3\xa9\n\"q\" \xf0\x9f\x98\x80", n) == 0);
    /* A second read gives the same text. */
    FM_CHECK_INT(fm_jdoc_string(&d, after_a + 1, &s, &n, &err), 0);
    FM_CHECK(memcmp(s, "h\xc3\xa9\n\"q\" \xf0\x9f\x98\x80", n) == 0);
    double v;
    FM_CHECK_INT(fm_jdoc_primitive(&d, after_a + 3, &v), FM_JPRIM_TRUE);
    FM_CHECK_INT(fm_jdoc_primitive(&d, after_a + 5, &v), FM_JPRIM_NUMBER);
    FM_CHECK_NEAR(v, -150.0, 0);
    long l;
    FM_CHECK_INT(fm_jdoc_int(&d, 3, 0, 10, &l), 0);
    FM_CHECK_INT(l, 1);
    fm_jdoc_free(&d);

    const char *bad[] = {"",           "[1,2]",   "{\"a\": 1",       "{\"a\": 1} x", "{\"a\": tru}",
                         "{\"a\" 1}x", "\"str\"", "{\"a\": \"\\x\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", bad[i]);
        int rc = fm_jdoc_parse(&d, buf, strlen(buf), &err);
        if (rc == 0) {
            /* jsmn accepted the shape; the bad escape or primitive shows up when read. */
            double x;
            const char *t;
            size_t tn;
            int bad_value =
                d.n > 2 &&
                ((d.t[2].type == JSMN_PRIMITIVE && fm_jdoc_primitive(&d, 2, &x) == FM_JPRIM_BAD) ||
                 (d.t[2].type == JSMN_STRING && fm_jdoc_string(&d, 2, &t, &tn, &err) != 0));
            FM_CHECK_MSG(bad_value, "accepted %s", bad[i]);
        }
        fm_jdoc_free(&d);
    }
    /* More tokens than the inline array. */
    fm_buf_t big = FM_BUF_INIT;
    fm_buf_puts(&big, "{\"data\": [");
    for (int i = 0; i < 5000; i++)
        fm_buf_printf(&big, "%s%d", i ? "," : "", i);
    fm_buf_puts(&big, "]}");
    FM_CHECK_INT(fm_jdoc_parse(&d, big.data, big.len, &err), 0);
    FM_CHECK_INT(d.n, 5003);
    FM_CHECK_INT(fm_jdoc_next(&d, 2), 5003);
    fm_jdoc_free(&d);
    fm_buf_free(&big);
}

FM_TEST_MAIN(FM_TEST_CASE(test_routes), FM_TEST_CASE(test_status_mapping),
             FM_TEST_CASE(test_config), FM_TEST_CASE(test_jsonfast))
