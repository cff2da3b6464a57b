"""`ftstab report`: one self-contained page, checked as HTML and in a real (headless) browser."""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from figures.report.build import write_report
from figures.report.figure_index import read_index
from figures.report.markup import verdict
from verify.cli import main
from verify.verdicts.write import write_verdicts

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


class Page(HTMLParser):
    """Every tag's attributes, and the number of body rows of each table."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.table_rows: list[int] = []
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.table_rows.append(0)
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.table_rows[-1] += 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False


@pytest.fixture(scope="module")
def report(known_results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_report(known_results.folder, out)
    return out


def parsed(report: Path) -> Page:
    page = Page()
    page.feed((report / "index.html").read_text(encoding="utf-8"))
    return page


def test_every_link_and_image_is_a_file_of_the_report(report):
    page = parsed(report)
    references = [attrs.get("src") or attrs.get("href") for tag, attrs in page.tags
                  if tag in ("img", "a", "script", "link") and (attrs.get("src") or attrs.get("href"))]
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert images and len(images) == len(set(images))
    for reference in references:
        assert "://" not in reference and not reference.startswith("//"), reference
        if not reference.startswith("#"):
            assert (report / reference).is_file(), reference
    assert not any(tag in ("script", "link") and ("src" in attrs or "href" in attrs)
                   for tag, attrs in page.tags), "scripts and styles are inline"


def test_each_drawn_figure_is_shown_with_its_csv(report):
    page = parsed(report)
    images = {attrs["src"] for tag, attrs in page.tags if tag == "img"}
    links = {attrs["href"] for tag, attrs in page.tags if tag == "a"}
    drawn = [entry for entry in read_index(report / "figures") if entry.skipped is None]
    assert len(drawn) >= 8
    for entry in drawn:
        if "png" in entry.files:
            assert f"figures/{entry.files['png'].name}" in images
        assert f"figures/{entry.files['csv'].name}" in links


def test_every_table_has_rows_and_the_datasets_table_lists_each_dataset(report, known_results):
    page = parsed(report)
    assert page.table_rows and min(page.table_rows) >= 1
    html = (report / "index.html").read_text(encoding="utf-8")
    with sqlite3.connect(known_results.folder / "results.sqlite") as conn:
        ids = [row[0] for row in conn.execute("SELECT dataset_id FROM datasets")]
    assert ids and all(html.count(f"<td>{dataset_id}</td>") >= 1 for dataset_id in ids)
    for heading in ("Scorecard", "Bounds", "Corollaries", "Stabiliser tables", "Figures", "Datasets",
                    "Provenance"):
        assert f">{heading}" in html


def test_claims_are_shown_at_the_top_when_the_results_have_them(known_results, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    shutil.copyfile(known_results.folder / "results.sqlite", results / "results.sqlite")
    claim = {"claim": "a larger margin stabilises the head", "setting": "head",
             "statistic": {"value": -0.5, "low": -0.7, "high": -0.3}, "verdict": "pass",
             "figure": "F1"}
    (results / "claims.json").write_text(json.dumps({"claims": [claim]}))
    html = (write_report(results, tmp_path / "report")).read_text(encoding="utf-8")
    assert html.index('id="claims"') < html.index('id="bounds"')
    assert "-0.5 [-0.70, -0.30]" in html and "a larger margin stabilises the head" in html


def test_the_report_shows_the_folders_verdicts_json_while_it_judged_these_results(known_results,
                                                                                   tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    shutil.copyfile(known_results.folder / "results.sqlite", results / "results.sqlite")
    written = write_verdicts(results)
    # A marker only the file carries: the page must show the file's verdicts, not recompute them.
    written["summary"]["datasets"] = 4321
    (results / "verdicts.json").write_text(json.dumps(written))
    html = write_report(results, tmp_path / "report").read_text(encoding="utf-8")
    assert "4321 datasets" in html and "verdicts from verdicts.json" in html
    written["source"]["results_sha256"] = "0" * 64
    (results / "verdicts.json").write_text(json.dumps(written))
    html = write_report(results, tmp_path / "report").read_text(encoding="utf-8")
    assert "4321 datasets" not in html and "verdicts computed for this report" in html


def test_the_provenance_shows_each_recorded_step_with_its_time(known_results, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    shutil.copyfile(known_results.folder / "results.sqlite", results / "results.sqlite")
    command = ["ftstab", "verify", "--grid", "smoke"]
    (results / "provenance.json").write_text(json.dumps({
        "commands": [command, ["ftstab", "figures"]],
        "steps": [{"command": command, "wall_s": 812.4, "cpu_s": 1530.9, "exit_code": 0}]}))
    html = write_report(results, tmp_path / "report").read_text(encoding="utf-8")
    assert "command (812 s wall, 1531 CPU s)" in html and "ftstab verify --grid smoke" in html
    assert html.count("command (") == 1  # a command without a recorded time has no time


def test_copied_figures_are_the_drawn_files(known_results, tmp_path):
    figures = tmp_path / "figures"
    assert main(["figures", "--from", str(known_results.folder), "--out", str(figures),
                 "--only", "F1,F5,T1"]) == 0
    out = tmp_path / "report"
    assert main(["report", "--from", str(known_results.folder), "--out", str(out),
                 "--figures", str(figures)]) == 0
    assert (out / "figures" / "f01_margin.png").read_bytes() == (figures / "f01_margin.png").read_bytes()
    assert sorted(path.name for path in (out / "figures").iterdir()) == sorted(
        path.name for path in figures.iterdir() if path.name != "index.md")


def test_missing_results_or_figures_are_one_line_errors_and_write_nothing(known_results, tmp_path,
                                                                         capsys):
    out = tmp_path / "report"
    assert main(["report", "--from", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert "no results file" in capsys.readouterr().err
    assert main(["report", "--from", str(known_results.folder), "--out", str(out),
                 "--figures", str(tmp_path)]) == 2
    assert "--figures: no index.md" in capsys.readouterr().err
    assert not out.exists()


# In the browser: a harness script added to a copy of the page records, after load, whether every
# image decoded, the rows of every table, every resource the page fetched, the errors raised, and
# whether sorting and filtering work; --dump-dom prints the DOM with that record.
HARNESS = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message || e)); });
var __consoleError = console.error;
console.error = function () { window.__errors.push(Array.prototype.join.call(arguments, " ")); };
window.addEventListener("load", function () {
  var record = {};
  record.images = Array.prototype.map.call(document.images, function (img) {
    return {src: img.getAttribute("src"), complete: img.complete, width: img.naturalWidth,
            height: img.naturalHeight};
  });
  record.tables = Array.prototype.map.call(document.querySelectorAll("table"), function (t) {
    return t.tBodies.length ? t.tBodies[0].rows.length : 0;
  });
  record.resources = performance.getEntriesByType("resource").map(function (r) { return r.name; });
  record.location = String(document.location);
  var table = document.getElementById("datasets-table");
  var distance = Array.prototype.map.call(table.tHead.rows[0].cells, function (th) {
    return th.textContent;
  }).indexOf("distance");
  table.tHead.rows[0].cells[distance].click();
  record.sorted = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
    var key = row.cells[distance].getAttribute("data-sort");
    return key === null || key === "" ? null : parseFloat(key);
  });
  var filter = document.querySelector("input[data-filter]");
  filter.value = "quadratic";
  filter.dispatchEvent(new Event("input"));
  record.shown = Array.prototype.filter.call(table.tBodies[0].rows, function (row) {
    return row.style.display !== "none";
  }).map(function (row) { return row.cells[1].textContent; });
  record.errors = window.__errors;
  var out = document.createElement("pre");
  out.id = "harness-record";
  out.textContent = JSON.stringify(record);
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    pytest.skip("no headless Chromium on this machine (Debian: apt-get install chromium)")


def run_chromium(*arguments: str) -> subprocess.CompletedProcess:
    # Every network request is sent to a closed local port, so one would fail and be logged.
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                           "--no-first-run", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
                           "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                           *arguments], capture_output=True, text=True, timeout=180)


def browse(report: Path, folder: Path, *, extra: str = "") -> tuple[dict, str]:
    """Load a copy of ``report`` (with ``extra`` HTML at the end of its body) with the harness."""
    copy = folder / "report"
    shutil.copytree(report, copy)
    page = (copy / "index.html").read_text(encoding="utf-8")
    page = page.replace("<head>", "<head>" + HARNESS, 1).replace("</main>", extra + "</main>", 1)
    (copy / "index.html").write_text(page, encoding="utf-8")
    done = run_chromium("--virtual-time-budget=10000", "--dump-dom", (copy / "index.html").as_uri())
    start = done.stdout.find('<pre id="harness-record">')
    assert start >= 0, done.stderr[-2000:]
    text = done.stdout[start:].split(">", 1)[1].split("</pre>", 1)[0]
    record = json.loads(text.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                        .replace("&amp;", "&"))
    return record, done.stderr


def offline_problems(record: dict, log: str) -> list[str]:
    """What the browser saw that a self-contained page must not have."""
    problems = [f"image {image['src']} did not load" for image in record["images"]
                if not (image["complete"] and image["width"] > 0 and image["height"] > 0)]
    problems += [f"request to {name}" for name in record["resources"] if not name.startswith("file://")]
    problems += [f"error: {error}" for error in record["errors"]]
    problems += [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return problems


def test_the_report_loads_in_a_headless_browser_without_errors_or_network(report, known_results,
                                                                          tmp_path):
    record, log = browse(report, tmp_path)
    assert record["location"].startswith("file://")
    assert len(record["images"]) >= 8 and offline_problems(record, log) == []
    assert record["tables"] and min(record["tables"]) >= 1
    numbers = [value for value in record["sorted"] if value is not None]
    assert len(set(numbers)) >= 2 and numbers == sorted(numbers)
    assert record["sorted"][:len(numbers)] == numbers  # cells without a number come last
    with sqlite3.connect(known_results.folder / "results.sqlite") as conn:
        n_quadratic = conn.execute("SELECT COUNT(*) FROM datasets WHERE kind = 'quadratic'").fetchone()[0]
    assert record["shown"] == ["quadratic"] * n_quadratic


def test_the_browser_check_catches_a_page_that_reaches_the_network(report, tmp_path):
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): never a real host.
    record, log = browse(report, tmp_path, extra='<img src="http://192.0.2.1/figure.png" alt="remote">')
    problems = offline_problems(record, log)
    assert any("192.0.2.1" in problem for problem in problems), problems


def test_the_screenshot_of_the_report_is_not_blank(report, tmp_path):
    shot = tmp_path / "report.png"
    run_chromium("--window-size=1400,2400", f"--screenshot={shot}", (report / "index.html").as_uri())
    assert shot.is_file() and shot.stat().st_size > 0
    pixels = imread(shot)[..., :3]
    # A blank page has one colour (std 0); the report's first screen (header band, badges, text,
    # table rules) measured a std of about 0.2 on the 0-1 scale.
    assert pixels.shape[:2] == (2400, 1400) and float(np.std(pixels)) > 0.05
    # The dark header band is drawn: the first rows are far darker than a white page.
    assert float(pixels[:40].mean()) < 0.5


@pytest.mark.parametrize("word, colour", [("pass", "pass"), ("supported", "pass"),
                                          ("fail", "fail"), ("contradicted", "fail"),
                                          ("inconclusive", "inconclusive"), (None, "nodata"),
                                          ("an unknown word", "nodata")])
def test_trend_and_claim_verdicts_share_the_badge_colours(word, colour):
    assert f'class="verdict {colour}"' in str(verdict(word))
