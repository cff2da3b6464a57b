"""The report's inline style sheet and script (plain JavaScript, no library, nothing fetched)."""

STYLE = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dde5; --band: #f4f6f9; --accent: #2f5f9e; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0; background: #fff; }
header { background: #1f3b63; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: #d5deeb; }
header code { background: rgba(255, 255, 255, 0.14); color: #fff; }
.scroll { overflow-x: auto; max-width: 100%; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line);
      padding: 8px 28px; z-index: 2; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; font-weight: 600; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { margin-top: 26px; }
h2 { border-bottom: 2px solid var(--line); padding-bottom: 4px; font-size: 20px; }
h3 { font-size: 16px; margin: 18px 0 6px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; width: auto; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; vertical-align: top; }
th { background: var(--band); cursor: pointer; user-select: none; vertical-align: bottom; }
th.sorted-asc::after { content: " \\25B2"; font-size: 10px; }
th.sorted-desc::after { content: " \\25BC"; font-size: 10px; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.verdict { display: inline-block; padding: 0 8px; border-radius: 10px; font-weight: 600;
           font-size: 12px; white-space: nowrap; }
.verdict.pass { background: #d8f0dc; color: #1b6b2c; }
.verdict.fail { background: #f8d7d7; color: #9b1c1c; }
.verdict.inconclusive { background: #fdf0c8; color: #7a5a00; }
.verdict.nodata { background: #eceef2; color: #5b6475; }
.summary { font-size: 16px; background: var(--band); border-left: 4px solid var(--accent);
           padding: 10px 14px; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 18px; }
figure.wide { grid-column: 1 / -1; }
figure { margin: 0; border: 1px solid var(--line); padding: 10px; background: #fff; }
figure img { width: 100%; height: auto; display: block; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; }
figcaption strong { color: var(--fg); }
.muted { color: var(--muted); }
input[type=search] { padding: 6px 10px; width: 340px; border: 1px solid var(--line); border-radius: 4px; }
details pre { white-space: pre-wrap; font-size: 11px; max-width: 640px; margin: 4px 0; }
code { background: var(--band); padding: 0 3px; border-radius: 3px; }
"""

SCRIPT = """
(function () {
  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    var key = cell.getAttribute("data-sort");
    if (key !== null && key !== "") return parseFloat(key);
    return cell.textContent.trim().toLowerCase();
  }
  function sortBy(table, index, header) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var ascending = !header.classList.contains("sorted-asc");
    rows.sort(function (a, b) {
      var x = cellValue(a, index), y = cellValue(b, index);
      var xNumber = typeof x === "number", yNumber = typeof y === "number";
      // Numbers sort as numbers; cells without one (text, or "–") come after them either way.
      if (xNumber !== yNumber) return xNumber ? -1 : 1;
      var order = xNumber ? x - y : String(x).localeCompare(String(y));
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.classList.remove("sorted-asc", "sorted-desc");
    });
    header.classList.add(ascending ? "sorted-asc" : "sorted-desc");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      th.title = "sort by this column";
      th.addEventListener("click", function () { sortBy(table, index, th); });
    });
  });
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    var counter = document.getElementById(input.getAttribute("data-filter") + "-count");
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
      var shown = 0;
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        var text = row.textContent.toLowerCase();
        var match = words.every(function (word) { return text.indexOf(word) >= 0; });
        row.style.display = match ? "" : "none";
        shown += match ? 1 : 0;
      });
      if (counter) counter.textContent = shown + " of " + table.tBodies[0].rows.length + " shown";
    });
  });
})();
"""
