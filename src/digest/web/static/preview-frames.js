// The edition page's preview frames as tall as the email they show, so the editor reads it
// with the page's own scroll bar. Without script the stylesheet's fixed height stays.
// The frames are sandboxed without scripts but same-origin, so this page can measure them.
(function () {
  var frames = document.querySelectorAll("iframe[data-fit-content]");

  function fit(frame) {
    var doc = frame.contentDocument;
    if (!doc || !doc.documentElement) return;
    var border = frame.offsetHeight - frame.clientHeight;  // the height set includes it
    // The document's own box, not its scrollHeight (which is never less than the frame): no
    // need to shrink the frame to measure, which for a moment would shorten the page and pull
    // its scroll position up (a page opened at #story-3 or #test would land above it).
    var html = doc.documentElement;
    var body = doc.body;
    var height = Math.max(html.getBoundingClientRect().height,
                          body ? body.getBoundingClientRect().bottom + (parseFloat(doc.defaultView.getComputedStyle(body).marginBottom) || 0) : 0);
    frame.style.height = (Math.ceil(height) + border) + "px";
    frame.setAttribute("data-fitted", "");
  }

  frames.forEach(function (frame) {
    frame.addEventListener("load", function () { fit(frame); });
    if (frame.contentDocument && frame.contentDocument.readyState === "complete") fit(frame);
  });

  // A narrower frame (a phone turned, a window resized) wraps the email into more lines.
  var pending = null;
  window.addEventListener("resize", function () {
    if (pending) clearTimeout(pending);
    pending = setTimeout(function () { frames.forEach(fit); }, 150);
  });
})();
