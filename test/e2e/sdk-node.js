// Sends identify, track, Order Completed and group through a real, unchanged
// Node SDK to a running relay, then flushes. Usage:
//   node sdk-node.js segment|rudder HOST WRITE_KEY PREFIX [PHONE]
// PREFIX keeps each run's users apart (user ids, emails, order ids), PHONE
// their phone (default +14155550123).
const [kind, host, writeKey, prefix, phone = '+14155550123'] = process.argv.slice(2);
if (!kind || !host || !writeKey || !prefix) {
  console.error('usage: node sdk-node.js segment|rudder HOST WRITE_KEY PREFIX');
  process.exit(2);
}

function calls(p) {
  const userId = `${p}-user`;
  const email = `${p}@example.com`;
  return [
    ['identify', { userId, traits: { email, firstName: 'Jane', lastName: 'Doe', phone, plan: 'pro' } }],
    ['track', { userId, event: 'Product Viewed', properties: { product_id: `${p}-p1`, name: 'Mug', price: 12.5 }, context: { traits: { email } } }],
    ['track', { userId, event: 'Order Completed', properties: { order_id: `${p}-o1`, revenue: 25, currency: 'USD',
      products: [{ product_id: `${p}-p1`, sku: 'SKU-1', name: 'Mug', price: 12.5, quantity: 2 }] }, context: { traits: { email } } }],
    ['group', { userId, groupId: 'LIST_E2E', traits: { subscribe: true }, context: { traits: { email } } }],
  ];
}

async function segment() {
  const { Analytics } = require('@segment/analytics-node');
  const analytics = new Analytics({ writeKey, host, maxEventsInBatch: 3, flushInterval: 200 });
  let failed = 0;
  analytics.on('error', (err) => { failed++; console.error('segment error', err && err.reason ? String(err.reason) : err); });
  for (const [method, args] of calls(prefix)) analytics[method](args);
  await analytics.closeAndFlush({ timeout: 20000 });
  return failed;
}

async function rudder() {
  const Analytics = require('@rudderstack/rudder-sdk-node');
  const client = new Analytics(writeKey, { dataPlaneUrl: host, flushAt: 3, flushInterval: 200, logLevel: 'error' });
  // Each call's callback fires once its batch got an answer: wait for all
  // of them, since flush() alone may resolve while an earlier batch is in
  // flight.
  let failed = 0;
  const acks = calls(prefix).map(([method, args]) => new Promise((resolve) => {
    client[method](args, (err) => { if (err) { failed++; console.error('rudder error', String(err)); } resolve(); });
  }));
  await client.flush();
  await Promise.all(acks);
  return failed;
}

(kind === 'segment' ? segment() : rudder()).then((failed) => {
  console.log(JSON.stringify({ sdk: kind, sent: calls(prefix).length, failed }));
  process.exit(failed ? 1 : 0);
}, (err) => { console.error(err); process.exit(1); });
