// Progressive enhancement only: reveals the copy buttons and copies their data-copy text.
// Every value is also shown as selectable text, so nothing needs this script.
(function () {
  "use strict";
  function copied(button, ok) {
    var label = button.textContent;
    button.textContent = ok ? "Copied" : "Select and copy";
    button.classList.toggle("done", ok);
    setTimeout(function () { button.textContent = label; button.classList.remove("done"); }, 1500);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var text = button.getAttribute("data-copy");
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(
            function () { copied(button, true); },
            function () { copied(button, false); }
          );
        } else {
          copied(button, false);
        }
      });
    });
  });
})();
