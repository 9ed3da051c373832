/*
 * Relay's Klaviyo device-mode integration (served by relay, no build step).
 * Loads Klaviyo's onsite script from settings.onsiteScriptUrl, queues calls
 * until it has loaded, and mirrors identify, track and page into Klaviyo's
 * onsite API (klaviyo.identify / klaviyo.track, or the legacy
 * _learnq.push form when only _learnq exists). Two front doors:
 *   - window.relayKlaviyoDevice: an analytics-next remote plugin factory;
 *   - window.Klaviyo_RS.Klaviyo: a RudderStack JS SDK v3 integration.
 * Mapping (seed 001, client side): userId -> $id (or userIdProperty,
 * default id, with enforceEmailAsPrimary), email -> $email, phone/phoneNumber ->
 * $phone_number, firstName -> $first_name, lastName -> $last_name,
 * title -> $title; revenue -> $value; Order Completed -> Placed Order unless
 * sendPlacedOrderAsOrderCompleted; $event_id is the id Relay's server-side
 * mapping uses as unique_id, so Klaviyo de-duplicates the two paths.
 */
(function (global) {
  'use strict';
  if (global.relayKlaviyoDevice && global.Klaviyo_RS) return;

  var TRAITS = {
    email: '$email', phone: '$phone_number', phoneNumber: '$phone_number', phone_number: '$phone_number',
    firstName: '$first_name', first_name: '$first_name', lastName: '$last_name', last_name: '$last_name',
    title: '$title'
  };

  function copy(o) {
    var out = {};
    if (o && typeof o === 'object') for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) out[k] = o[k];
    return out;
  }
  function str(v) { return typeof v === 'string' ? v.trim() : (typeof v === 'number' ? String(v) : ''); }

  function Device(settings) {
    this.s = settings || {};
    this.queue = [];
    this.ready = false;
    this.loading = null;
  }

  Device.prototype.load = function () {
    var self = this;
    if (self.loading) return self.loading;
    self.loading = new Promise(function (resolve, reject) {
      if (!self.s.publicKey || !self.s.onsiteScriptUrl) {
        reject(new Error('Klaviyo device mode: publicKey or onsiteScriptUrl is missing from the settings'));
        return;
      }
      var el = document.createElement('script');
      el.async = true;
      el.src = self.s.onsiteScriptUrl;
      el.onload = function () { self.ready = true; self.flush(); resolve(); };
      el.onerror = function () { reject(new Error('Klaviyo device mode: the onsite script did not load')); };
      (document.head || document.body || document.documentElement).appendChild(el);
    });
    return self.loading;
  };

  Device.prototype.send = function (method, args) {
    if (!this.ready) { this.queue.push([method, args]); return; }
    var k = global.klaviyo;
    if (k && typeof k[method] === 'function') { k[method].apply(k, args); return; }
    global._learnq = global._learnq || [];
    global._learnq.push([method].concat(args));
  };

  Device.prototype.flush = function () {
    var q = this.queue;
    this.queue = [];
    for (var i = 0; i < q.length; i++) this.send(q[i][0], q[i][1]);
  };

  Device.prototype.identify = function (userId, traits) {
    var p = {};
    var t = copy(traits);
    for (var k in t) {
      if (TRAITS[k]) { if (t[k] != null && t[k] !== '' && p[TRAITS[k]] == null) p[TRAITS[k]] = t[k]; } else p[k] = t[k];
    }
    delete p.userId;
    userId = str(userId);
    if (this.s.enforceEmailAsPrimary) {
      // As server-side: the userId goes under userIdProperty (id, or _id
      // for the rudderstack preset) unless a trait already holds it.
      var key = this.s.userIdProperty || 'id';
      if (userId && p[key] == null) p[key] = userId;
    } else {
      delete p.id;
      if (userId) p.$id = userId;
    }
    if (this.s.enforceEmailAsPrimary && p.$email == null && p.$phone_number == null) return;
    if (p.$id == null && p.$email == null && p.$phone_number == null) return;
    this.send('identify', [p]);
  };

  Device.prototype.track = function (name, props, messageId) {
    name = str(name);
    if (!name) return;
    var p = copy(props);
    var metric = name;
    var eventId = str(messageId);
    if (name === 'Order Completed') {
      if (!this.s.sendPlacedOrderAsOrderCompleted) metric = 'Placed Order';
      eventId = str(p.eventId) || str(p.order_id) || str(p.orderId) || eventId;
    }
    if (p.revenue != null && p.$value == null) p.$value = p.revenue;
    if (eventId) p.$event_id = eventId;
    this.send('track', [metric, p]);
  };

  // Page views: Klaviyo's onsite script records Active on Site itself once
  // loaded; with sendPageAsTrack a page is also the "Viewed <name> Page"
  // event the server-side mapping names it.
  Device.prototype.page = function (name, category, props, messageId) {
    if (!this.s.sendPageAsTrack) return;
    var p = copy(props);
    var label = str(name) || str(p.name) || str(category) || str(p.category);
    if (messageId) p.$event_id = str(messageId);
    this.send('track', [label ? 'Viewed ' + label + ' Page' : 'Viewed a Page', p]);
  };

  // analytics-next remote plugin (src/plugins/remote-loader).
  function segmentPlugin(settings) {
    var d = new Device(settings);
    function on(fn) { return function (ctx) { fn(ctx.event || {}); return ctx; }; }
    return {
      name: 'Klaviyo',
      type: 'destination',
      version: '1.0.0',
      isLoaded: function () { return d.ready; },
      load: function () { return d.load(); },
      identify: on(function (e) { d.identify(e.userId, e.traits); }),
      track: on(function (e) { d.track(e.event, e.properties, e.messageId); }),
      page: on(function (e) { d.page(e.name, e.category, e.properties, e.messageId); })
    };
  }
  segmentPlugin.pluginName = 'Klaviyo';

  // RudderStack JS SDK v3 device-mode integration: constructed with the
  // destination's config; events arrive as {message: event}.
  function RudderKlaviyo(config) {
    this.name = 'KLAVIYO';
    this.d = new Device(config);
  }
  RudderKlaviyo.prototype.init = function () {
    this.d.load().catch(function (err) { if (global.console) global.console.error(err); });
  };
  RudderKlaviyo.prototype.isLoaded = function () { return this.d.ready; };
  RudderKlaviyo.prototype.isReady = function () { return this.d.ready; };
  RudderKlaviyo.prototype.identify = function (el) {
    var m = (el && el.message) || {};
    var ctx = m.context || {};
    this.d.identify(m.userId, m.traits || ctx.traits);
  };
  RudderKlaviyo.prototype.track = function (el) {
    var m = (el && el.message) || {};
    this.d.track(m.event, m.properties, m.messageId);
  };
  RudderKlaviyo.prototype.page = function (el) {
    var m = (el && el.message) || {};
    this.d.page(m.name, m.category, m.properties, m.messageId);
  };

  global.relayKlaviyoDevice = segmentPlugin;
  global.Klaviyo_RS = { Klaviyo: RudderKlaviyo };
})(typeof window !== 'undefined' ? window : this);
