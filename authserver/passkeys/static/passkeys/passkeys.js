// Staff passkeys: the browser half of the WebAuthn ceremonies (authserver/passkeys/views.py).
// Parameters come from data- attributes on #passkey-ceremony; no inline script (CSP script-src 'self').
// 1. POST to the options URL (the server keeps the challenge in the session);
// 2. navigator.credentials.create() or .get();
// 3. POST the credential (JSON, base64url fields) to the complete URL; go to the URL it answers.
(function () {
  "use strict";

  function toBytes(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    var padded = base64 + "===".slice((base64.length + 3) % 4);
    var binary = atob(padded);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) { return Object.assign({}, d, { id: toBytes(d.id) }); });
  }

  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  function credentialJSON(credential) {
    var response = credential.response;
    var out = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      response: { clientDataJSON: toBase64url(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      out.response.attestationObject = toBase64url(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = toBase64url(response.authenticatorData);
      out.response.signature = toBase64url(response.signature);
      if (response.userHandle) out.response.userHandle = toBase64url(response.userHandle);
    }
    return out;
  }

  function post(root, url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrf },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error(data.error || "HTTP " + response.status);
        return data;
      });
    });
  }

  function start(root, button, status) {
    var enrol = root.dataset.mode === "enrol";
    var nameField = document.getElementById("passkey-name");
    button.disabled = true;
    status.textContent = enrol ? "Follow your browser's prompt to create the passkey…" : "Follow your browser's prompt…";
    post(root, root.dataset.optionsUrl, {})
      .then(function (options) {
        return enrol
          ? navigator.credentials.create({ publicKey: creationOptions(options) })
          : navigator.credentials.get({ publicKey: requestOptions(options) });
      })
      .then(function (credential) {
        var body = { credential: credentialJSON(credential), next: root.dataset.next };
        if (enrol && nameField) body.name = nameField.value;
        return post(root, root.dataset.completeUrl + "?next=" + encodeURIComponent(root.dataset.next), body);
      })
      .then(function (result) {
        status.textContent = enrol ? "Passkey added." : "Verified.";
        root.dataset.state = "done";
        window.location.assign(result.redirect);
      })
      .catch(function (error) {
        status.textContent = "That did not work (" + (error && error.name === "NotAllowedError"
          ? "cancelled or timed out" : "refused") + "). You can try again.";
        root.dataset.state = "failed";
        button.disabled = false;
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("passkey-ceremony");
    var button = document.getElementById("passkey-start");
    var status = document.getElementById("passkey-status");
    if (!root || !button || !status) return;
    if (!window.PublicKeyCredential) {
      status.textContent = "This browser does not support passkeys.";
      button.disabled = true;
      return;
    }
    button.addEventListener("click", function () { start(root, button, status); });
  });
})();
