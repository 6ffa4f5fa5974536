// Preload (node -r resolve-local.js ...): names under .local.test resolve to
// 127.0.0.1, so that clients can reach the local stack's edge by the host
// names its certificates carry (<account>.<chain>.chains.local.test) without
// touching /etc/hosts. Every other name goes to the system resolver.
'use strict';
const dns = require('node:dns');

const systemLookup = dns.lookup;
dns.lookup = function lookup(host, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  if (typeof host === 'string' && /\.local\.test\.?$/i.test(host)) {
    if (options && options.all) return process.nextTick(callback, null, [{ address: '127.0.0.1', family: 4 }]);
    return process.nextTick(callback, null, '127.0.0.1', 4);
  }
  return systemLookup.call(dns, host, options, callback);
};
