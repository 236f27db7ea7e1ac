// django-celery-beat's periodic task form (templates/admin/djcelery/change_periodictask_form.html):
// what its inline script did, from a file. The chosen crontab's reading goes under its help text.
(function () {
  "use strict";
  var $ = django.jQuery;
  var readable = JSON.parse(document.getElementById("readable-crontabs").textContent);
  var original = JSON.parse(document.getElementById("crontab-help").textContent);
  $(".field-crontab_translation").hide();
  $(".field-crontab").change(function () {
    var help = $(".field-crontab .help");
    var reading = readable[$("#id_crontab").val()];
    help.text(original);
    if (reading) {  // none while no crontab is chosen (the admin fires change on load)
      help.append(document.createElement("br"));
      help.append(document.createTextNode("Translation: " + reading));
    }
  });
})();
