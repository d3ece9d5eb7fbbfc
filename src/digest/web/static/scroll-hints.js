// Tables wider than their box on staff pages: the box becomes a labelled region that the
// keyboard can reach and scroll, with a line that says there is more to the side. (The
// shadows at the edges come from the stylesheet and show without script.) Checked again
// when the window changes size and when htmx swaps in a new panel.
(function () {
  function label(wrap) {
    var section = wrap.closest("section");
    var heading = section && section.querySelector("h2, h3");
    var name = heading ? heading.textContent.trim() : "Table";
    return name + " (scrolls sideways)";
  }

  function check() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
      var hint = wrap.previousElementSibling;
      if (!hint || !hint.classList.contains("scroll-hint")) {
        if (!scrolls) return;
        hint = document.createElement("p");
        hint.className = "scroll-hint";
        hint.textContent = "More columns to the side: scroll the table →";
        hint.setAttribute("aria-hidden", "true");  // the region's own name says it
        wrap.parentNode.insertBefore(hint, wrap);
      }
      hint.hidden = !scrolls;
      if (scrolls) {
        wrap.setAttribute("tabindex", "0");
        if (!wrap.hasAttribute("role")) wrap.setAttribute("role", "region");
        if (!wrap.hasAttribute("aria-label")) wrap.setAttribute("aria-label", label(wrap));
        wrap.setAttribute("data-scrolls", "");
      } else {
        wrap.removeAttribute("data-scrolls");
      }
    });
  }

  var pending = null;
  function later() {
    if (pending) clearTimeout(pending);
    pending = setTimeout(check, 100);
  }
  check();
  window.addEventListener("resize", later);
  document.addEventListener("htmx:afterSettle", later);
})();
