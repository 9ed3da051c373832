// Loads @segment/analytics-next (unchanged, self-hosted: no Segment CDN) in a
// page opened by headless Chromium and sends identify + track to relay.
// Usage: node browser.js RELAY_HOST:PORT WRITE_KEY PREFIX
// Prints {"ok":true,...} once the SDK reports both calls delivered.
const http = require('http');
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const [apiHost, writeKey, prefix] = process.argv.slice(2);
if (!apiHost || !writeKey || !prefix) {
  console.error('usage: node browser.js HOST:PORT WRITE_KEY PREFIX');
  process.exit(2);
}
const umd = path.join(__dirname, 'node_modules/@segment/analytics-next/dist/umd');

const page = `<!doctype html><html><head><title>relay e2e</title></head><body>
<script src="/umd/index.js"></script>
<script>
window.run = async function () {
  const { AnalyticsBrowser } = window.AnalyticsNext;
  const settings = { integrations: { 'Segment.io': { apiKey: ${JSON.stringify(writeKey)}, apiHost: ${JSON.stringify(apiHost + '/v1')}, protocol: 'http' } }, metrics: { sampleRate: 0 } };
  const [analytics] = await AnalyticsBrowser.load({ writeKey: ${JSON.stringify(writeKey)}, cdnSettings: settings },
    { integrations: { 'Segment.io': { apiHost: ${JSON.stringify(apiHost + '/v1')}, protocol: 'http' } } });
  const a = await analytics.identify(${JSON.stringify(prefix + '-user')}, { email: ${JSON.stringify(prefix + '@example.com')}, firstName: 'Brow' });
  const b = await analytics.track('Product Viewed', { product_id: ${JSON.stringify(prefix + '-p1')}, name: 'Mug', price: 12.5 });
  return { identify: a.event.messageId, track: b.event.messageId };
};
</script></body></html>`;

const server = http.createServer((req, res) => {
  if (req.url === '/' || req.url === '/page.html') {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    return res.end(page);
  }
  if (req.url.startsWith('/umd/')) {
    const file = path.join(umd, path.basename(req.url.split('?')[0]));
    if (fs.existsSync(file)) {
      res.writeHead(200, { 'Content-Type': 'application/javascript' });
      return fs.createReadStream(file).pipe(res);
    }
  }
  res.writeHead(404); res.end();
});

server.listen(0, '127.0.0.1', async () => {
  const port = server.address().port;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let code = 0;
  try {
    const ctx = await browser.newContext();
    const pg = await ctx.newPage();
    const errors = [];
    pg.on('pageerror', (e) => errors.push(String(e)));
    const posted = [];
    pg.on('requestfinished', async (r) => {
      if (r.method() === 'POST') {
        const resp = await r.response();
        posted.push({ url: r.url(), status: resp && resp.status() });
      }
    });
    await pg.goto(`http://127.0.0.1:${port}/page.html`);
    const ids = await pg.evaluate(() => window.run());
    await pg.waitForTimeout(500);
    const ok = posted.filter((p) => p.status === 200).length >= 2 && errors.length === 0;
    console.log(JSON.stringify({ ok, ids, posted, errors }));
    code = ok ? 0 : 1;
  } catch (e) {
    console.error(e);
    code = 1;
  } finally {
    await browser.close();
    server.close();
    process.exit(code);
  }
});
