// Opens a device-mode test page (served by the Go test) in headless
// Chromium, runs its window.run(), and prints what happened as JSON:
// the calls the Klaviyo onsite stand-in recorded, and every event body the
// page posted to Relay's ingest.
// Usage: node devicemode.js PAGE_URL RELAY_HOST:PORT
const { chromium } = require('playwright-core');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [pageURL, relayHost] = process.argv.slice(2);
if (!pageURL || !relayHost) {
  console.error('usage: node devicemode.js PAGE_URL RELAY_HOST:PORT');
  process.exit(2);
}

(async () => {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-devicemode-'));
  // A persistent context is how playwright takes a fresh --user-data-dir.
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let code = 0;
  // The page loads nothing from the internet: requests for analytics-next's
  // lazily loaded chunks, which the UMD build fetches from Segment's CDN,
  // are answered with the same files from node_modules; anything else
  // off this machine is refused and reported.
  const offline = [];
  await ctx.route((url) => !['127.0.0.1', 'localhost'].includes(url.hostname), async (route) => {
    const u = new URL(route.request().url());
    if (u.hostname === 'cdn.segment.com' && u.pathname.startsWith('/analytics-next/bundles/')) {
      const file = path.join(__dirname, 'node_modules/@segment/analytics-next/dist/umd', path.basename(u.pathname));
      if (fs.existsSync(file)) {
        return route.fulfill({ status: 200, contentType: 'application/javascript', body: fs.readFileSync(file) });
      }
    }
    offline.push(route.request().url());
    return route.abort();
  });
  try {
    const pg = await ctx.newPage();
    const errors = [];
    pg.on('pageerror', (e) => errors.push(String(e)));
    pg.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
    const posted = [];
    pg.on('requestfinished', async (r) => {
      const u = new URL(r.url());
      if (r.method() !== 'POST' || u.host !== relayHost || u.pathname === '/v1/m') return;
      const resp = await r.response();
      let body = null;
      try { body = JSON.parse(r.postData() || 'null'); } catch (e) { body = r.postData(); }
      posted.push({ path: u.pathname, status: resp && resp.status(), body });
    });
    await pg.goto(pageURL);
    const result = await pg.evaluate(() => window.run());
    // Wait for the SDK's posts (RudderStack sends from a queue) and the
    // stand-in's calls, then a little longer so extra ones would show.
    const deadline = Date.now() + 20000;
    const events = () => posted.reduce((n, p) => n + ((p.body && p.body.batch) ? p.body.batch.length : 1), 0);
    while (Date.now() < deadline) {
      const calls = await pg.evaluate(() => (window.__klaviyoCalls || []).length);
      if (events() >= result.expectEvents && calls >= result.expectCalls) break;
      await pg.waitForTimeout(100);
    }
    await pg.waitForTimeout(700);
    const calls = await pg.evaluate(() => window.__klaviyoCalls || []);
    const scripts = await pg.evaluate(() => window.__klaviyoScripts || []);
    if (offline.length) errors.push('requests off this machine: ' + offline.join(' '));
    console.log(JSON.stringify({ result, calls, scripts, posted, errors }));
  } catch (e) {
    console.error(e);
    code = 1;
  } finally {
    await ctx.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
    process.exit(code);
  }
})();
