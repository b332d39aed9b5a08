// The browser's time zone and language, for fields marked data-browser-time-zone and
// data-browser-locale: hidden sign-in fields (a new user's default) and, in My account,
// the choice while none is saved. A file of its own: the CSP forbids inline scripts.
(function () {
  "use strict";
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
  var language = navigator.language || "";

  function offered(select, value) {
    return Array.prototype.some.call(select.options, function (o) { return o.value === value; });
  }

  function fill(selector, value, match) {
    document.querySelectorAll(selector).forEach(function (field) {
      if (field.value) return;  // a saved choice wins
      if (field.tagName === "SELECT") {
        var chosen = match ? match(field, value) : value;
        if (chosen && offered(field, chosen)) field.value = chosen;
      } else {
        field.value = value;
      }
    });
  }

  // "de" or "de-AT": the exact locale if offered, else the first of that language.
  function bestLocale(select, wanted) {
    if (offered(select, wanted)) return wanted;
    var lang = wanted.split("-")[0] + "-";
    var found = Array.prototype.find.call(select.options, function (o) {
      return o.value.indexOf(lang) === 0;
    });
    return found ? found.value : "";
  }

  fill("[data-browser-time-zone]", zone);
  fill("[data-browser-locale]", language, bestLocale);
})();
