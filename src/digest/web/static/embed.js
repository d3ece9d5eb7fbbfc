/* digest's sign-up form, submitted in place. Optional: without this script the form posts and
   the reader sees digest's "Check your inbox" page. Add after the `digest embed` form:
   <script src="https://DIGEST/embed.js" defer></script>
   The answer is read out in a polite live region; style it with .digest-answer. */
(function () {
  "use strict";
  function enhance(form) {
    var answer = form.querySelector(".digest-answer");
    if (!answer) {
      answer = document.createElement("p");
      answer.className = "digest-answer";
      answer.setAttribute("role", "status");
      answer.setAttribute("aria-live", "polite");
      form.appendChild(answer);
    }
    form.addEventListener("submit", function (event) {
      if (!window.fetch || !window.URLSearchParams) return; // the plain post still works
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      answer.textContent = "Sending\u2026";
      fetch(form.action, {
        method: "POST", credentials: "omit", mode: "cors",
        headers: {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
        body: new URLSearchParams(new FormData(form)).toString()
      }).then(function (response) {
        return response.json().then(function (data) {
          answer.textContent = data.message || data.error || "Something went wrong. Please try again.";
          if (response.ok) form.reset();
        });
      }).catch(function () {
        answer.textContent = "We could not reach the server. Please try again in a moment.";
      }).then(function () {
        if (button) button.disabled = false;
      });
    });
  }
  var forms = document.querySelectorAll("form.digest-signup");
  for (var i = 0; i < forms.length; i++) enhance(forms[i]);
})();
