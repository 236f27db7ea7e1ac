// The field that shows a credential once (templates/admin/_credential_once.html): selected on focus,
// and its Copy button. A file, not an inline script: the pages' CSP runs scripts from 'self' only.
(function () {
  "use strict";
  var script = document.currentScript;
  var field = document.getElementById(script.dataset.field);
  var button = document.getElementById(script.dataset.button);
  var hint = document.getElementById(script.dataset.hint);
  field.addEventListener("focus", function () { field.select(); });
  button.addEventListener("click", function () {
    field.focus();
    field.select();
    var done = function () { hint.textContent = "Copied to the clipboard."; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy") && done(); });
    } else if (document.execCommand("copy")) {
      done();
    }
  });
})();
