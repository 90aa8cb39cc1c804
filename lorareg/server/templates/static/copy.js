// Progressive enhancement only: reveals the copy buttons and copies their data-copy text, and shows a
// form's message when a required checkbox is left unticked.
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
    // A required checkbox left unticked: say so on the page, not only in the browser's passing tooltip.
    document.querySelectorAll("input[type=checkbox][required]").forEach(function (box) {
      var hint = box.form && box.form.querySelector(".form-error");
      if (!hint) { return; }
      box.addEventListener("invalid", function () { hint.hidden = false; });
      box.addEventListener("change", function () { hint.hidden = box.checked; });
    });
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
