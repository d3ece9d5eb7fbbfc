// The edition page's preview frames as tall as the email they show, so the editor reads it
// with the page's own scroll bar. Without script the stylesheet's fixed height stays.
// The frames are sandboxed without scripts but same-origin, so this page can measure them.
(function () {
  var frames = document.querySelectorAll("iframe[data-fit-content]");

  function fit(frame) {
    var doc = frame.contentDocument;
    if (!doc || !doc.documentElement) return;
    var border = frame.offsetHeight - frame.clientHeight;  // the height set includes it
    // Measured at 1 px: a document shorter than its frame reports the frame's height.
    frame.style.height = (border + 1) + "px";
    frame.style.height = (Math.ceil(doc.documentElement.scrollHeight) + border) + "px";
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
