(function () {
  "use strict";
  // Sorting and filtering of the findings table; nothing else runs, nothing is fetched.
  var table = document.getElementById("findings");
  if (!table) { return; }
  var body = table.tBodies[0];
  var headers = table.tHead.rows[0].cells;
  function key(row, index) {
    var cell = row.cells[index];
    return cell.getAttribute("data-sort") || cell.textContent;
  }
  Array.prototype.forEach.call(headers, function (th, index) {
    var button = th.querySelector("button");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, index), y = key(b, index);
        return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  var text = document.getElementById("filter");
  var severity = document.getElementById("severity-filter");
  var shown = document.getElementById("shown");
  function apply() {
    var needle = text.value.toLowerCase();
    var level = severity.value;
    var count = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var match = (!needle || row.textContent.toLowerCase().indexOf(needle) !== -1) &&
        (!level || row.getAttribute("data-severity") === level);
      row.hidden = !match;
      if (match) { count += 1; }
    });
    shown.textContent = String(count);
  }
  text.addEventListener("input", apply);
  severity.addEventListener("change", apply);
})();
