"""Browser test of the validation report (`finmaas report`, src/report).

Trains models on credit-g (binary, with a feature column, a category and a protected group named
as markup; binary gradient-boosted trees; regression; multiclass), writes each report, and checks:
- the page is self-contained: no element loads anything (no src/href to another document, no
  external script, link, frame or image), and only the page's own four script elements exist;
- every name from the data is escaped (no injected element), and survives as text;
- opened in headless Chromium, the page records no error (its #fm-status element collects
  window.onerror, unhandled rejections and console.error) and Chromium logs no console message;
  every chart was created and has visible pixels (the page checks each canvas with getImageData
  and records the counts on #fm-status);
- a full-page screenshot is a PNG of the requested size.
Chromium is a test dependency (scripts/install-deps.sh installs it): when it is missing the test
fails rather than skips. The screenshots and pages stay in the printed output directory.
"""
import csv
import html.parser
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

FINMAAS = os.environ.get("FINMAAS", "build/finmaas")
SHARED = os.environ.get("FM_SHARED", os.path.join(os.path.dirname(__file__), "../../../shared"))
CREDIT = os.path.join(SHARED, "data", "credit-g.csv")

EVIL_FEATURE = "<script>alert(1)</script>"
EVIL_CATEGORY = '"><img src=x onerror=alert(2)>'
EVIL_GROUP = "<iframe src=javascript:alert(3)></iframe>"
WIDTH, HEIGHT = 1280, 4000

failures = []


def check(cond, message):
    print(("ok   " if cond else "FAIL ") + message)
    if not cond:
        failures.append(message)


def run(*args):
    p = subprocess.run([FINMAAS, *map(str, args)], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"finmaas {' '.join(map(str, args))} exited {p.returncode}: {p.stderr}")
    return p


def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("FAIL chromium is not installed (scripts/install-deps.sh installs it); the browser "
             "test cannot run")


def write_hostile_csv(path):
    """credit-g with personal_status renamed to markup, one purpose category and one group of it
    replaced by markup."""
    with open(CREDIT, newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    status, purpose = header.index("personal_status"), header.index("purpose")
    header[status] = EVIL_FEATURE
    for row in rows[1:]:
        if row[purpose] == "radio/tv":
            row[purpose] = EVIL_CATEGORY
        if row[status] == "male single":
            row[status] = EVIL_GROUP
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


class Elements(html.parser.HTMLParser):
    """Every start tag with its attributes, and the text of the page's data element."""

    def __init__(self):
        super().__init__()
        self.tags = []
        self.data_text = None
        self._in_data = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._in_data = tag == "script" and attrs.get("id") == "fm-data"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_data = False

    def handle_data(self, data):
        if self._in_data:
            self.data_text = (self.data_text or "") + data


def strings(value):
    """Every string in a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)


def check_static(name, page, hostile):
    parser = Elements()
    parser.feed(page)
    tags = parser.tags
    scripts = [a for t, a in tags if t == "script"]
    check(len(scripts) == 4, f"{name}: exactly the page's four script elements ({len(scripts)})")
    check(all("src" not in a for a in scripts), f"{name}: no script loads a source")
    loaders = [(t, a) for t, a in tags if t in ("link", "img", "iframe", "object", "embed",
                                                 "audio", "video", "source", "frame", "base")]
    check(not loaders, f"{name}: no element that loads something ({loaders[:3]})")
    external = [(t, a) for t, a in tags for k, v in a.items()
                if k in ("src", "href", "action", "data", "poster") and v is not None
                and not v.startswith("#")]
    check(not external, f"{name}: every src/href is a same-page anchor ({external[:3]})")
    check(re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I) is None,
          f"{name}: no http(s):// or //host load anywhere in the text")
    style = page[page.find("<style>"):page.find("</style>")]
    check(style and "@import" not in style and "url(" not in style,
          f"{name}: the style sheet imports nothing")
    data = json.loads(parser.data_text or "null")
    check(isinstance(data, dict) and isinstance(data.get("charts"), list),
          f"{name}: the data element parses as JSON")
    canvases = [a for t, a in tags if t == "canvas"]
    check(len(canvases) == len(data["charts"]) > 0,
          f"{name}: one canvas per chart ({len(canvases)} canvases, {len(data['charts'])} charts)")
    if hostile:
        check(EVIL_FEATURE not in page, f"{name}: the feature name is not markup")
        check("<img" not in page and "<iframe" not in page, f"{name}: no injected element")
        check("&lt;script&gt;alert(1)&lt;/script&gt;" in page, f"{name}: the feature name is shown "
              "escaped")
        check("&lt;iframe src=javascript:alert(3)&gt;&lt;/iframe&gt;" in page,
              f"{name}: the protected group is shown escaped")
        check(EVIL_CATEGORY in set(strings(data)),
              f"{name}: the hostile category survives as chart text")
    return len(data["charts"])


def status_attributes(dom):
    m = re.search(r'<div id="fm-status"([^>]*)>(.*?)</div>', dom, re.S)
    if not m:
        return None, ""
    return dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1))), m.group(2)


def check_browser(name, path, out_dir, charts):
    chromium = chromium_binary()
    url = "file://" + os.path.abspath(path)
    base = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", "--disable-extensions", "--virtual-time-budget=5000",
            f"--window-size={WIDTH},{HEIGHT}", "--enable-logging=stderr", "--v=0"]
    p = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=180)
    check(p.returncode == 0, f"{name}: chromium --dump-dom exited {p.returncode}")
    attrs, text = status_attributes(p.stdout)
    check(attrs is not None, f"{name}: the status element is in the DOM")
    attrs = attrs or {}
    check(attrs.get("data-done") == "true", f"{name}: the drawing script ran to its end")
    check(attrs.get("data-errors") == "0", f"{name}: no script error recorded ({text.strip()[:300]})")
    expected = attrs.get("data-charts-expected")
    check(expected == str(charts), f"{name}: {expected} charts expected, {charts} in the data")
    check(attrs.get("data-charts-drawn") == expected,
          f"{name}: every chart drawn ({attrs.get('data-charts-drawn')} of {expected})")
    check(attrs.get("data-charts-painted") == expected,
          f"{name}: every canvas has visible pixels ({attrs.get('data-charts-painted')} of "
          f"{expected})")
    check('data-blank="true"' not in p.stdout, f"{name}: no blank canvas")
    check("<img" not in p.stdout and "<iframe" not in p.stdout,
          f"{name}: no injected element in the live DOM")
    console = [line for line in p.stderr.splitlines() if ":CONSOLE" in line]
    check(not console, f"{name}: no console message from the page ({console[:3]})")

    shot = os.path.join(out_dir, f"{name}.png")
    p = subprocess.run(base + [f"--screenshot={shot}", url], capture_output=True, text=True,
                       timeout=180)
    check(p.returncode == 0 and os.path.exists(shot), f"{name}: screenshot written to {shot}")
    if os.path.exists(shot):
        with open(shot, "rb") as f:
            head = f.read(24)
        size = os.path.getsize(shot)
        check(head[:8] == b"\x89PNG\r\n\x1a\n", f"{name}: the screenshot is a PNG")
        w, h = struct.unpack(">II", head[16:24])
        check((w, h) == (WIDTH, HEIGHT), f"{name}: screenshot {w}x{h}")
        # A page of tables and charts compresses to far more than a blank one (~20 KB).
        check(size > 100_000, f"{name}: screenshot of plausible size ({size} bytes)")


def report(name, out_dir, model, data, *extra, hostile=False, expect=()):
    page_path = os.path.join(out_dir, f"{name}.html")
    run("report", model, "--data", data, "--out", page_path, *extra)
    with open(page_path, encoding="utf-8") as f:
        page = f.read()
    for text in expect:
        check(text in page, f"{name}: the page says {text!r}")
    charts = check_static(name, page, hostile)
    check_browser(name, page_path, out_dir, charts)


def main():
    out_dir = tempfile.mkdtemp(prefix="fm_report_")
    print(f"output directory: {out_dir}")
    chromium_binary()
    evil = os.path.join(out_dir, "credit-hostile.csv")
    write_hostile_csv(evil)

    binary = os.path.join(out_dir, "binary.fmm")
    run("train", "--data", evil, "--target", "class", "--out", binary, "--quiet")
    report("binary", out_dir, binary, evil, "--protected", f"age,{EVIL_FEATURE}", hostile=True)

    gbt = os.path.join(out_dir, "gbt.fmm")
    run("train", "--data", CREDIT, "--target", "class", "--model", "gbt", "--rounds", "40",
        "--out", gbt, "--quiet")
    report("gbt", out_dir, gbt, CREDIT, "--protected", "age", "--threshold", "0.6",
           expect=("Confusion matrix at threshold 0.6", "P(positive) &gt;= 0.6",
                   "Booster", "Disparate impact by group"))

    # A reweighed model shows its fairness before and after mitigation, as recorded at training.
    fair = os.path.join(out_dir, "reweighed.fmm")
    run("train", "--data", CREDIT, "--target", "class", "--protected", "age,personal_status",
        "--reweigh", "--out", fair, "--quiet")
    report("reweighed", out_dir, fair, CREDIT,
           expect=("trained with reweighing", "Before mitigation",
                   "Measured at training on the model's validation rows"))

    # A scorecard is an ordinary model over binned columns: its card lists the bins.
    card = os.path.join(out_dir, "card.fmm")
    run("scorecard", "--data", CREDIT, "--target", "class", "--out", card)
    report("scorecard", out_dir, card, CREDIT, expect=("<summary>bins</summary>(-inf, ",))

    regression = os.path.join(out_dir, "regression.fmm")
    run("train", "--data", CREDIT, "--target", "credit_amount", "--out", regression, "--quiet")
    report("regression", out_dir, regression, CREDIT,
           expect=("Predicted against actual", "Residual distribution"))

    multiclass = os.path.join(out_dir, "multiclass.fmm")
    run("train", "--data", CREDIT, "--target", "housing", "--out", multiclass, "--quiet")
    report("multiclass", out_dir, multiclass, CREDIT,
           expect=("Confusion matrix (arg-max class)", "ROC curves, one class against the rest"))

    # Bad use gives a one-line error and no page.
    missing = os.path.join(out_dir, "none.html")
    p = subprocess.run([FINMAAS, "report", multiclass, "--data", CREDIT, "--out", missing,
                        "--protected", "age"], capture_output=True, text=True)
    check(p.returncode == 2 and "binary" in p.stderr and not os.path.exists(missing),
          f"--protected on a multiclass model is refused ({p.returncode}: {p.stderr.strip()})")

    print(f"screenshots and pages: {out_dir}")
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
    print("all checks passed")


if __name__ == "__main__":
    main()
