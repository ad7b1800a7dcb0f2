// Show one case at a time: the one in the URL hash, else the first failing case, else the first.
// Without this script the links and CSS :target still show a case on click.
(function () {
  "use strict";
  var cells = document.querySelectorAll("table.heatmap td.cell a");
  function show(id) {
    var section = id && document.getElementById(id);
    if (!section || !section.classList.contains("case")) return false;
    document.querySelectorAll(".case.shown").forEach(function (s) {
      s.classList.remove("shown");
    });
    section.classList.add("shown");
    cells.forEach(function (a) {
      a.parentElement.classList.toggle("selected", a.getAttribute("href") === "#" + id);
    });
    return true;
  }
  window.addEventListener("hashchange", function () {
    show(decodeURIComponent(location.hash.slice(1)));
  });
  var first =
    document.querySelector(".case[data-status=fail], .case[data-status=error]") ||
    document.querySelector(".case");
  if (!show(decodeURIComponent(location.hash.slice(1))) && first) show(first.id);
})();
