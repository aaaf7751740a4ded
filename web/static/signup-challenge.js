// The sign-up form's anti-robot check: solves the server's ALTCHA (v2) challenge in the
// browser, with no third party and no cookie. It fetches a signed challenge from the
// form's data-challenge-url, tries counters 0, 1, 2... until PBKDF2-SHA-256(salt,
// nonce + counter as a big-endian uint32) starts with the challenge's keyPrefix, and puts
// base64(JSON {challenge, solution: {counter, derivedKey}}) in the hidden "altcha" field.
// Progress is announced in a role="status" element; a form sent before the check is done
// is held and sent as soon as it is. Without JavaScript the form says why it cannot work.
"use strict";
(function () {
  var form = document.querySelector("form[data-challenge-url]");
  if (!form) return;
  var field = form.querySelector("input[name=altcha]");
  var status = document.getElementById("challenge-status");
  var button = form.querySelector("button[type=submit]");
  var BATCH = 8; // derivations in flight at once: WebCrypto runs them off the main thread
  var solving = null;
  var expiresAt = 0;
  var sending = false;

  function say(text) {
    status.textContent = text;
  }

  function fromHex(text) {
    var bytes = new Uint8Array(text.length / 2);
    for (var i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.substr(i * 2, 2), 16);
    return bytes;
  }

  function toHex(buffer) {
    return Array.from(new Uint8Array(buffer), function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  async function derive(params, salt, nonce, counter) {
    var password = new Uint8Array(nonce.length + 4);
    password.set(nonce);
    new DataView(password.buffer).setUint32(nonce.length, counter, false);
    var key = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
    var bits = await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: salt, iterations: params.cost },
      key,
      params.keyLength * 8
    );
    return toHex(bits);
  }

  async function solve() {
    field.value = "";
    say("Your browser is doing a short anti-robot check before the form can be sent…");
    var response = await fetch(form.dataset.challengeUrl, { cache: "no-store", credentials: "omit" });
    if (!response.ok) throw new Error("the check could not be loaded (HTTP " + response.status + ")");
    var challenge = await response.json();
    var params = challenge.parameters;
    var salt = fromHex(params.salt);
    var nonce = fromHex(params.nonce);
    var prefix = params.keyPrefix.toLowerCase();
    var started = Date.now();
    for (var start = 0; start < 0xffffffff; start += BATCH) {
      var batch = [];
      for (var counter = start; counter < start + BATCH; counter++) {
        batch.push(derive(params, salt, nonce, counter));
      }
      var keys = await Promise.all(batch);
      for (var i = 0; i < keys.length; i++) {
        if (keys[i].startsWith(prefix)) {
          var solution = { counter: start + i, derivedKey: keys[i], time: Date.now() - started };
          field.value = btoa(JSON.stringify({ challenge: challenge, solution: solution }));
          expiresAt = (params.expiresAt || 0) * 1000;
          say("Anti-robot check done: you can send the form.");
          return;
        }
      }
    }
    throw new Error("no solution found");
  }

  function start() {
    solving = solve().catch(function (err) {
      solving = null;
      say("The anti-robot check did not work (" + err.message + "). Please reload the page.");
      throw err;
    });
    return solving;
  }

  function fresh() {
    return field.value && (!expiresAt || Date.now() < expiresAt - 30000);
  }

  form.addEventListener("submit", function (event) {
    if (fresh()) return; // solved: the browser sends the form as usual
    event.preventDefault();
    if (sending) return;
    sending = true;
    button.setAttribute("aria-disabled", "true");
    say("Finishing the anti-robot check; the form is sent as soon as it is done…");
    var pending = field.value || !solving ? start() : solving;
    pending
      .then(function () {
        form.submit();
      })
      .catch(function () {
        sending = false;
        button.removeAttribute("aria-disabled");
      });
  });

  if (!window.crypto || !crypto.subtle) {
    say("This browser cannot do the anti-robot check (it needs a secure https page).");
    return;
  }
  start().catch(function () {});
})();
