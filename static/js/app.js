/* rupture-log's own small enhancements. Every page works without them; the CSP allows
   no inline script, so this file is all there is besides htmx. */
(function () {
  "use strict";

  /* After a failed save, put the focus on the first field at fault (or on the conflict
     notice), so a keyboard or screen-reader user starts where the correction is needed. */
  function focusFirstError() {
    var conflict = document.querySelector(".conflict[role=alert]");
    if (conflict) {
      conflict.setAttribute("tabindex", "-1");
      conflict.focus();
      return;
    }
    var field = document.querySelector(".has-error");
    if (!field) return;
    var control = field.matches("input, select, textarea")
      ? field
      : field.querySelector("input:not([type=hidden]), select, textarea");
    if (control) control.focus();
  }

  /* "n of max characters" under each field with a limit. The server enforces the limit
     (and the database too); this only shows how close one is. Screen readers hear it
     when it matters: near the limit, politely. */
  function counters(root) {
    var fields = root.querySelectorAll("textarea[maxlength], input[type=text][maxlength]");
    Array.prototype.forEach.call(fields, function (field) {
      var counter = document.getElementById(field.id + "-counter");
      if (!counter || counter.dataset.live) return;
      counter.dataset.live = "1";
      // Read with the field, after its help and errors (Django sets those ids).
      var described = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (described.indexOf(counter.id) < 0) {
        field.setAttribute("aria-describedby", described.concat(counter.id).join(" "));
      }
      var max = parseInt(field.getAttribute("maxlength"), 10);
      var update = function () {
        var used = field.value.length;
        counter.textContent = used + " of " + max + " characters";
        var near = used >= max * 0.9;
        counter.classList.toggle("near-limit", near);
        counter.setAttribute("aria-live", near ? "polite" : "off");
      };
      field.addEventListener("input", update);
      update();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    focusFirstError();
    counters(document);
  });
  /* Fields swapped in by htmx get their counters too. */
  document.addEventListener("htmx:afterSwap", function (event) {
    counters(event.target);
  });
})();
