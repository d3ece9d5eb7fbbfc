// The "Copy the snippet" button on /editor/embed: shown only where the clipboard can be
// written (without script, the editor selects the text area and copies by hand).
(function () {
  var button = document.getElementById("embed-copy");
  if (!button || !navigator.clipboard) return;
  var said = document.getElementById("embed-copied");
  button.hidden = false;
  button.addEventListener("click", function () {
    var text = document.getElementById(button.getAttribute("data-copies")).value;
    navigator.clipboard.writeText(text).then(function () {
      said.textContent = "Copied.";
    }, function () {
      said.textContent = "Could not copy: select the text and copy it by hand.";
    });
  });
})();
