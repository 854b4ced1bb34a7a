/*
 * The page itself: HTML escaping, the append helpers with their sticky error, chart cards, and
 * the page's frame: the head with its style sheet, the error recorder and the embedded Chart.js,
 * the masthead and contents, and at the end the data element with every chart's configuration,
 * the drawing script, the status element and the footer.
 *
 * The page is self-contained: no element loads anything (no src or href to another document,
 * only same-page anchors), so it opens offline and from an e-mail attachment.
 *
 * The status element (#fm-status) is how a browser test, or a reader, learns that the page
 * worked: the scripts record there every error (window.onerror, unhandled rejections,
 * console.error) and, after drawing, how many charts were expected, drawn, and drawn with
 * visible pixels. It stays hidden unless an error was recorded.
 */
#include "report/report_internal.h"

#include "core/clock.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int fm_report_escape(fm_buf_t *out, const char *s, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *entity = NULL;
        switch (s[i]) {
        case '&':
            entity = "&amp;";
            break;
        case '<':
            entity = "&lt;";
            break;
        case '>':
            entity = "&gt;";
            break;
        case '"':
            entity = "&quot;";
            break;
        case '\'':
            entity = "&#39;";
            break;
        default:
            continue;
        }
        if (fm_buf_append(out, s + start, i - start) || fm_buf_puts(out, entity)) return FM_ENOMEM;
        start = i + 1;
    }
    return fm_buf_append(out, s + start, n - start);
}

int fm_report_json_for_script(fm_buf_t *out, const char *json, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (json[i] != '<') continue;
        /* '<' occurs in JSON only inside strings, where \u003c means the same character. */
        if (fm_buf_append(out, json + start, i - start) || fm_buf_puts(out, "\\u003c"))
            return FM_ENOMEM;
        start = i + 1;
    }
    return fm_buf_append(out, json + start, n - start);
}

int fm_report_fail(fm_report_page_t *page, int code, const char *fmt, ...) {
    if (page->rc) return page->rc;
    page->rc = code;
    if (page->err) {
        char msg[FM_ERROR_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fm_error_set(page->err, code, "%s", msg);
    }
    return code;
}

cJSON *fm_report_check(fm_report_page_t *page, cJSON *item) {
    if (!item) fm_report_fail(page, FM_ENOMEM, "out of memory");
    return item;
}

void fm_report_puts(fm_report_page_t *page, const char *s) {
    if (!page->rc && fm_buf_puts(page->out, s)) fm_report_fail(page, FM_ENOMEM, "out of memory");
}

void fm_report_printf(fm_report_page_t *page, const char *fmt, ...) {
    if (page->rc) return;
    va_list ap;
    va_start(ap, fmt);
    int rc = fm_buf_vprintf(page->out, fmt, ap);
    va_end(ap);
    if (rc) fm_report_fail(page, FM_ENOMEM, "out of memory");
}

void fm_report_text(fm_report_page_t *page, const char *s) {
    if (!s || page->rc) return;
    if (fm_report_escape(page->out, s, strlen(s))) fm_report_fail(page, FM_ENOMEM, "out of memory");
}

void fm_report_number(fm_report_page_t *page, double v, int decimals) {
    if (!isfinite(v))
        fm_report_puts(page, "\xe2\x80\x94"); /* an em dash: undefined */
    else
        fm_report_printf(page, "%.*f", decimals, v);
}

void fm_report_general(fm_report_page_t *page, double v) {
    if (!isfinite(v))
        fm_report_puts(page, "\xe2\x80\x94");
    else
        fm_report_printf(page, "%.6g", v);
}

void fm_report_card_begin(fm_report_page_t *page, const char *title, cJSON *config) {
    if (!config || page->rc) {
        cJSON_Delete(config);
        return;
    }
    if (!cJSON_AddItemToArray(page->charts, config)) {
        cJSON_Delete(config);
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        return;
    }
    fm_report_puts(page, "<figure class=\"card\"><figcaption>");
    fm_report_text(page, title);
    fm_report_printf(page,
                     "</figcaption><div class=\"chart-box\"><canvas id=\"fm-chart-%zu\" "
                     "class=\"fm-chart\" role=\"img\" aria-label=\"",
                     page->ncharts);
    fm_report_text(page, title);
    fm_report_puts(page, "\"></canvas></div><div class=\"note\">");
    page->ncharts++;
}

void fm_report_card_end(fm_report_page_t *page) {
    fm_report_puts(page, "</div></figure>\n");
}

void fm_report_card(fm_report_page_t *page, const char *title, const char *note, cJSON *config) {
    if (!config || page->rc) {
        cJSON_Delete(config);
        return;
    }
    fm_report_card_begin(page, title, config);
    fm_report_text(page, note);
    fm_report_card_end(page);
}

/* The style sheet: sober, legible in print, no web fonts (nothing to fetch). */
static const char style[] =
    ":root{--ink:#1d2433;--muted:#5d687a;--line:#dde2ea;--bg:#f3f5f8;--card:#fff;"
    "--accent:#1f4e8c;--alert:#b42318;--alert-bg:#fdecea;--ok:#2e7d5b}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"
    "'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}\n"
    ".masthead{background:#14213d;color:#fff;padding:28px 40px 24px}\n"
    ".masthead .eyebrow{text-transform:uppercase;letter-spacing:.12em;font-size:12px;"
    "color:#aab8d6}\n"
    ".masthead h1{margin:4px 0 6px;font-size:28px;font-weight:600;word-break:break-word}\n"
    ".masthead .sub{color:#d5ddec;font-size:14px}\n"
    ".masthead .sub span{margin-right:18px;white-space:nowrap}\n"
    "nav.toc{background:#fff;border-bottom:1px solid var(--line);padding:10px 40px;"
    "position:sticky;top:0;z-index:2}\n"
    "nav.toc a{color:var(--accent);text-decoration:none;margin-right:22px;font-weight:500}\n"
    "main{max-width:1400px;margin:0 auto;padding:8px 40px 40px}\n"
    "section{margin-top:28px}\n"
    "h2{font-size:20px;font-weight:600;margin:0 0 4px;padding-bottom:6px;"
    "border-bottom:2px solid var(--accent)}\n"
    "h3{font-size:16px;font-weight:600;margin:22px 0 8px}\n"
    "p.lead{color:var(--muted);margin:6px 0 14px}\n"
    "table{border-collapse:collapse;background:var(--card);width:100%;margin:8px 0}\n"
    "th,td{border:1px solid var(--line);padding:6px 10px;text-align:left;vertical-align:top}\n"
    "th{background:#eef1f6;font-weight:600}\n"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "table.card-table th{width:240px}\n"
    "table.compact td,table.compact th{padding:3px 8px;font-size:13px}\n"
    "tr.violation td{background:var(--alert-bg)}\n"
    "tr.reference td{font-weight:600}\n"
    ".badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;"
    "font-weight:600;white-space:nowrap}\n"
    ".badge.bad{background:var(--alert);color:#fff}\n"
    ".badge.good{background:#e3f1ea;color:var(--ok)}\n"
    ".badge.info{background:#e8eef8;color:var(--accent)}\n"
    ".tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px;"
    "margin:12px 0}\n"
    ".tile{background:var(--card);border:1px solid var(--line);border-radius:6px;"
    "padding:12px 14px}\n"
    ".tile .label{color:var(--muted);font-size:12px;text-transform:uppercase;"
    "letter-spacing:.06em}\n"
    ".tile .value{font-size:24px;font-weight:600;font-variant-numeric:tabular-nums}\n"
    ".tile .ref{color:var(--muted);font-size:12px}\n"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:16px;"
    "margin:12px 0}\n"
    ".grid.small{grid-template-columns:repeat(auto-fill,minmax(320px,1fr))}\n"
    ".card{background:var(--card);border:1px solid var(--line);border-radius:6px;margin:0;"
    "padding:12px 14px;break-inside:avoid}\n"
    ".card figcaption{font-weight:600;margin-bottom:6px;word-break:break-word}\n"
    ".chart-box{position:relative;height:300px}\n"
    ".grid.small .chart-box{height:220px}\n"
    ".card .note{color:var(--muted);font-size:12.5px;margin-top:6px}\n"
    "details{margin:6px 0}\n"
    "summary{cursor:pointer;color:var(--accent)}\n"
    ".scroll{overflow-x:auto}\n"
    "td.heat{text-align:right;font-variant-numeric:tabular-nums}\n"
    "footer{border-top:1px solid var(--line);color:var(--muted);font-size:12.5px;"
    "padding:16px 40px 32px;max-width:1400px;margin:0 auto}\n"
    "#fm-status{display:none}\n"
    "#fm-status.failed{display:block;position:fixed;bottom:0;left:0;right:0;z-index:10;"
    "background:var(--alert);color:#fff;padding:10px 40px;white-space:pre-wrap;"
    "font-family:monospace}\n"
    "@media print{body{background:#fff}nav.toc{display:none}.masthead{padding:16px 0;"
    "background:#fff;color:var(--ink)}.masthead .sub,.masthead .eyebrow{color:var(--muted)}"
    "main,footer{padding-left:0;padding-right:0}section{break-before:auto}}\n";

/* Runs before anything else, so that an error anywhere in the page, Chart.js included, is
 * recorded in the status element for the reader and for the browser test. */
static const char error_recorder[] =
    "(function(){'use strict';\n"
    "var errors=[];\n"
    "function show(){var s=document.getElementById('fm-status');if(!s)return;"
    "s.setAttribute('data-errors',String(errors.length));"
    "if(errors.length){s.className='failed';"
    "s.textContent='This page had script errors; some charts may be missing.\\n'+"
    "errors.join('\\n');}}\n"
    "function record(text){errors.push(String(text));show();}\n"
    "window.fmRecordError=record;window.fmShowErrors=show;\n"
    "window.addEventListener('error',function(e){record((e.message||'error')+' ('+"
    "(e.filename||'page')+':'+(e.lineno||0)+')');});\n"
    "window.addEventListener('unhandledrejection',function(e){record('unhandled rejection: '+"
    "(e.reason&&e.reason.message||e.reason));});\n"
    "var consoleError=console.error;\n"
    "console.error=function(){record(Array.prototype.map.call(arguments,String).join(' '));"
    "return consoleError.apply(console,arguments);};\n"
    "})();\n";

/* Draws every chart from the data element, then records what it did on #fm-status. */
static const char draw_script[] =
    "(function(){'use strict';\n"
    "var status=document.getElementById('fm-status');\n"
    "var spec=JSON.parse(document.getElementById('fm-data').textContent);\n"
    "var drawn=0,painted=0;\n"
    "function hasInk(canvas){var w=canvas.width,h=canvas.height;if(!w||!h)return false;\n"
    "var px=canvas.getContext('2d').getImageData(0,0,w,h).data;\n"
    "for(var i=3;i<px.length;i+=4)if(px[i]!==0)return true;return false;}\n"
    "Chart.defaults.animation=false;\n"
    "Chart.defaults.responsive=true;\n"
    "Chart.defaults.maintainAspectRatio=false;\n"
    "Chart.defaults.font.family=\"system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif\";\n"
    "Chart.defaults.font.size=12;\n"
    "Chart.defaults.color='#3b4455';\n"
    "Chart.defaults.plugins.legend.labels.boxWidth=12;\n"
    "Chart.defaults.plugins.legend.labels.filter=function(item){return item.text!=='';};\n"
    "Chart.defaults.plugins.tooltip.filter=function(item){return item.dataset.label!=='';};\n"
    "spec.charts.forEach(function(config,i){\n"
    "var canvas=document.getElementById('fm-chart-'+i);\n"
    "try{if(!canvas)throw new Error('no canvas fm-chart-'+i);\n"
    "new Chart(canvas,config);drawn++;\n"
    "if(hasInk(canvas))painted++;else canvas.setAttribute('data-blank','true');}\n"
    "catch(e){window.fmRecordError('chart '+i+': '+(e&&e.message||e));}});\n"
    "status.setAttribute('data-charts-drawn',String(drawn));\n"
    "status.setAttribute('data-charts-painted',String(painted));\n"
    "status.setAttribute('data-done','true');\n"
    "window.fmShowErrors();\n"
    "})();\n";

/* The title: the given name, else "<family> model of <target>". */
static void write_title(fm_report_page_t *page, const fm_report_input_t *in) {
    if (in->model_name && in->model_name[0]) {
        fm_report_text(page, in->model_name);
    } else {
        fm_report_text(page, in->model->family);
        fm_report_puts(page, " model of ");
        fm_report_text(page, in->model->target);
    }
}

void fm_report_page_begin(fm_report_page_t *page, const fm_report_context_t *ctx) {
    const fm_report_input_t *in = ctx->in;
    const fm_model_t *m = in->model;
    fm_report_printf(page,
                     "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                     "<meta name=\"generator\" content=\"finmaas %s\">\n<title>Validation report: ",
                     FM_VERSION);
    write_title(page, in);
    fm_report_puts(page, "</title>\n<style>\n");
    fm_report_puts(page, style);
    fm_report_puts(page, "</style>\n<script>\n");
    fm_report_puts(page, error_recorder);
    fm_report_printf(page, "</script>\n<script>\n/* Chart.js %s, embedded (MIT licence) */\n",
                     fm_report_chartjs_version());
    if (!page->rc &&
        fm_buf_append(page->out, fm_report_chartjs_source, fm_report_chartjs_source_len))
        fm_report_fail(page, FM_ENOMEM, "out of memory");
    fm_report_puts(page, "\n</script>\n</head>\n<body>\n<header class=\"masthead\">"
                         "<div class=\"eyebrow\">Model validation report</div><h1>");
    write_title(page, in);
    fm_report_puts(page, "</h1><div class=\"sub\"><span>Task: ");
    fm_report_text(page, fm_task_name(m->task));
    if (m->task == FM_TASK_BINARY && m->nclasses == 2) {
        fm_report_puts(page, " (positive class \xe2\x80\x9c");
        fm_report_text(page, m->classes[1]);
        fm_report_puts(page, "\xe2\x80\x9d)");
    }
    fm_report_puts(page, "</span><span>Family: ");
    fm_report_text(page, m->family);
    fm_report_puts(page, "</span>");
    if (in->version >= 0) fm_report_printf(page, "<span>Registry version: %ld</span>", in->version);
    fm_report_puts(page, "<span>Data: ");
    fm_report_text(page, in->data_name ? in->data_name : "(unnamed)");
    fm_report_printf(page, " (%zu rows)</span></div></header>\n", in->n);
    fm_report_puts(page, "<nav class=\"toc\"><a href=\"#model-card\">Model card</a>"
                         "<a href=\"#performance\">Performance</a>");
    if (in->importance || in->mean_abs_attribution)
        fm_report_puts(page, "<a href=\"#importance\">Feature importance</a>");
    if (in->fairness) fm_report_puts(page, "<a href=\"#fairness\">Fairness</a>");
    fm_report_puts(page, "</nav>\n<main>\n");
}

void fm_report_page_end(fm_report_page_t *page, const fm_report_context_t *ctx) {
    char when[32];
    fm_clock_utc_iso8601(when, sizeof when);
    fm_report_puts(page, "</main>\n<footer>Generated ");
    fm_report_text(page, when);
    fm_report_printf(page,
                     " by finmaas %s. Charts drawn by Chart.js %s (MIT licence), embedded in this "
                     "page: it opens offline and loads nothing. Data: ",
                     FM_VERSION, fm_report_chartjs_version());
    fm_report_text(page, ctx->in->data_name ? ctx->in->data_name : "(unnamed)");
    fm_report_printf(page, ", %zu rows.</footer>\n", ctx->in->n);
    fm_report_printf(page,
                     "<div id=\"fm-status\" role=\"alert\" data-errors=\"0\" "
                     "data-charts-expected=\"%zu\"></div>\n"
                     "<script type=\"application/json\" id=\"fm-data\">",
                     page->ncharts);
    if (!page->rc) {
        cJSON *data = fm_report_check(page, cJSON_CreateObject());
        char *json = NULL;
        if (data && cJSON_AddItemReferenceToObject(data, "charts", page->charts))
            json = cJSON_PrintUnformatted(data);
        if (!json || fm_report_json_for_script(page->out, json, strlen(json)))
            fm_report_fail(page, FM_ENOMEM, "out of memory");
        cJSON_free(json);
        cJSON_Delete(data);
    }
    fm_report_puts(page, "</script>\n<script>\n");
    fm_report_puts(page, draw_script);
    fm_report_puts(page, "</script>\n</body>\n</html>\n");
}
