// The sign-up form's time zone (issue 16): the browser's IANA zone from the Intl API into
// the hidden "timezone" field. The select stays for readers who want another; without
// script (or Intl), the hidden field stays empty and the server uses the list's zone.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var field = document.getElementById("timezone");
  if (!field || typeof Intl === "undefined" || !Intl.DateTimeFormat) {
    return;
  }
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (typeof zone === "string" && zone.length <= 64) {
    field.value = zone;
  }
});
