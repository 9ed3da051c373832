// Stands in for Klaviyo's onsite script (static.klaviyo.com/onsite/js/klaviyo.js)
// in the device-mode tests: it records every call made to it.
(function () {
  window.__klaviyoScripts = (window.__klaviyoScripts || []).concat([document.currentScript ? document.currentScript.src : '']);
  window.__klaviyoCalls = window.__klaviyoCalls || [];
  function record() {
    window.__klaviyoCalls.push(JSON.parse(JSON.stringify(Array.prototype.slice.call(arguments))));
    return Promise.resolve();
  }
  window.klaviyo = {
    identify: function (props) { return record('identify', props); },
    track: function (name, props) { return record('track', name, props); },
  };
})();
