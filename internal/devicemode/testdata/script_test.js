// Runs js/klaviyo.js in a bare VM with a fake DOM and prints, as JSON, the
// calls each scenario made to Klaviyo's onsite API. Driven by
// TestIntegrationScript (script_test.go); reads the scenario from argv[2].
const fs = require('fs');
const vm = require('vm');
const path = require('path');

const src = fs.readFileSync(path.join(__dirname, '..', 'js', 'klaviyo.js'), 'utf8');
const scenario = JSON.parse(process.argv[2]);

const scripts = [];
const window = {};
window.document = {
  head: { appendChild: (el) => scripts.push(el) },
  createElement: () => ({}),
};
window.window = window;
vm.createContext(window);
vm.runInContext(src, window);

const calls = [];
function loadOnsite() {
  // What the onsite script does when it loads: define klaviyo (modern) or
  // only drain _learnq (legacy).
  if (scenario.api === 'klaviyo') {
    window.klaviyo = {
      identify: (p) => calls.push(['identify', p]),
      track: (n, p) => calls.push(['track', n, p]),
    };
  }
  scripts[0].onload();
}

(async () => {
  const plugin = window.relayKlaviyoDevice(scenario.settings);
  const loading = plugin.load();
  for (const e of scenario.events) plugin[e.type]({ event: e });
  const callsBeforeLoad = calls.length + (window._learnq ? window._learnq.length : 0);
  loadOnsite();
  await loading;
  const out = { scriptSrc: scripts.map((s) => s.src), callsBeforeLoad, calls };
  if (window._learnq) out.learnq = window._learnq;
  console.log(JSON.stringify(out));
})();
