/* relaystats dashboard: plain JS and SVG, no build step, no network but the
 * relaystats API of the page's own origin. */
(function () {
  "use strict";

  var COLORS = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04",
                "#db2777", "#4b5563", "#65a30d"];
  var SVGNS = "http://www.w3.org/2000/svg";
  var MAX_POINTS = 3000;
  var STEP_SECS = { "5m": 300, "1h": 3600, "1d": 86400 };
  var RANGE_SECS = { "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000,
                     "90d": 7776000 };
  var liveTimer = null;

  function $(id) { return document.getElementById(id); }

  function token() { return localStorage.getItem("rs_token") || ""; }

  function fmt(n) { return Number(n).toLocaleString("en-US"); }

  function setStatus(text, isError) {
    var s = $("status");
    s.textContent = text;
    s.className = isError ? "error" : "";
  }

  function api(path, params) {
    var q = new URLSearchParams();
    Object.keys(params || {}).forEach(function (k) {
      if (params[k] !== "" && params[k] != null) q.set(k, params[k]);
    });
    var url = "/api/v1/" + path + (q.toString() ? "?" + q.toString() : "");
    return fetch(url, { headers: { "Authorization": "Bearer " + token() } }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) {
          var e = new Error(body.error || ("HTTP " + r.status));
          e.status = r.status;
          throw e;
        }
        return body;
      });
    });
  }

  /* Relative ranges go to the server as "-24h" .. "now" (aligned outward
   * there); custom ones as UTC ISO times, which must sit on the step. */
  function rangeParams() {
    var range = $("range").value, step = $("step").value;
    if (range === "custom") {
      return { from: $("from").value + ":00Z", to: $("to").value + ":00Z", step: step };
    }
    var secs = RANGE_SECS[range];
    if (secs / STEP_SECS[step] > MAX_POINTS) {
      step = secs / 3600 > MAX_POINTS ? "1d" : "1h";
      $("step").value = step;
    }
    return { from: "-" + range, to: "now", step: step };
  }

  function el(name, attrs, parent) {
    var e = document.createElementNS(SVGNS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(e);
    return e;
  }

  function niceMax(v) {
    if (v <= 0) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function timeLabel(iso, stepSecs, spanSecs) {
    if (stepSecs >= 86400 || spanSecs > 3 * 86400) return iso.slice(5, 10);
    return iso.slice(11, 16);
  }

  function lineChart(container, groups, stepSecs) {
    var W = 900, H = 280, L = 60, R = 12, T = 10, B = 28;
    container.textContent = "";
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img",
                          "aria-label": "relays per chain over time" }, container);
    var n = groups.length ? groups[0].series.length : 0;
    var max = 0;
    groups.forEach(function (g) { g.series.forEach(function (p) { if (p[1] > max) max = p[1]; }); });
    max = niceMax(max);
    var x = function (i) { return L + (n <= 1 ? 0 : i * (W - L - R) / (n - 1)); };
    var y = function (v) { return T + (H - T - B) * (1 - v / max); };
    for (var k = 0; k <= 4; k++) {
      var v = max * k / 4;
      el("line", { "class": "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }, svg);
      el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, svg).textContent = fmt(v);
    }
    el("line", { "class": "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }, svg);
    if (n === 0) {
      el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, svg).textContent = "no relays in this range";
      return;
    }
    var span = n * stepSecs, ticks = Math.min(8, n);
    for (var t = 0; t < ticks; t++) {
      var i = Math.round(t * (n - 1) / Math.max(1, ticks - 1));
      var anchor = t === 0 ? "start" : (t === ticks - 1 ? "end" : "middle");
      el("text", { x: x(i), y: H - 8, "text-anchor": anchor }, svg).textContent =
        timeLabel(groups[0].series[i][0], stepSecs, span);
    }
    groups.forEach(function (g, gi) {
      var d = g.series.map(function (p, i) {
        return (i ? "L" : "M") + x(i).toFixed(1) + " " + y(p[1]).toFixed(1);
      }).join("");
      var path = el("path", { "class": "series", d: d, stroke: COLORS[gi % COLORS.length],
                              "data-chain": g.chain, "data-total": g.total }, svg);
      el("title", {}, path).textContent = g.chain + ": " + fmt(g.total) + " relays";
    });
  }

  function legend(list, groups) {
    list.textContent = "";
    groups.forEach(function (g, gi) {
      var li = document.createElement("li");
      li.setAttribute("data-chain", g.chain);
      li.setAttribute("data-total", g.total);
      var sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = COLORS[gi % COLORS.length];
      var name = document.createElement("span");
      name.textContent = g.chain + (g.name ? " (" + g.name + ")" : "");
      var val = document.createElement("span");
      val.className = "value";
      val.textContent = fmt(g.total);
      li.appendChild(sw); li.appendChild(name); li.appendChild(val);
      list.appendChild(li);
    });
  }

  function bars(container, rows, attr) {
    container.textContent = "";
    if (!rows.length) {
      var p = document.createElement("div");
      p.className = "empty";
      p.textContent = "nothing in this range";
      container.appendChild(p);
      return;
    }
    var max = Math.max.apply(null, rows.map(function (r) { return r.total; })) || 1;
    rows.forEach(function (r) {
      var row = document.createElement("div");
      row.className = "row";
      row.setAttribute(attr, r.name);
      row.setAttribute("data-total", r.total);
      var name = document.createElement("span");
      name.textContent = r.name;
      var track = document.createElement("div");
      var bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = (100 * r.total / max).toFixed(1) + "%";
      track.appendChild(bar);
      var num = document.createElement("span");
      num.className = "num";
      num.textContent = fmt(r.total);
      row.appendChild(name); row.appendChild(track); row.appendChild(num);
      container.appendChild(row);
    });
  }

  var chainNames = {};

  function loadGateways() {
    return api("gateways").then(function (body) {
      var sel = $("gateway"), cur = sel.value;
      while (sel.options.length > 1) sel.remove(1);
      body.gateways.forEach(function (g) {
        var o = document.createElement("option");
        o.value = o.textContent = g;
        sel.appendChild(o);
      });
      sel.value = cur;
    }).then(function () {
      return api("chains");
    }).then(function (body) {
      body.chains.forEach(function (c) { chainNames[c.chain] = c.name; });
    });
  }

  function refresh() {
    var p = rangeParams(), gw = $("gateway").value;
    setStatus("loading…");
    var byChain = api("relays", { from: p.from, to: p.to, step: p.step, gateway: gw, by: "chain" })
      .then(function (body) {
        var total = $("total");
        total.textContent = fmt(body.total);
        total.setAttribute("data-total", body.total);
        $("range-label").textContent = body.from + " – " + body.to + " (step " + body.step + ")";
        var groups = (body.groups || []).map(function (g) {
          return { chain: g.chain, name: chainNames[g.chain], total: g.total, series: g.series };
        });
        lineChart($("chart-chains"), groups, STEP_SECS[body.step]);
        legend($("legend-chains"), groups);
      });
    var byGateway = api("relays", { from: p.from, to: p.to, step: p.step, gateway: gw, by: "gateway" })
      .then(function (body) {
        bars($("chart-gateways"), (body.groups || []).map(function (g) {
          return { name: g.gateway, total: g.total };
        }), "data-gateway");
      });
    var nonRelays = api("non-relays", { from: p.from, to: p.to, step: p.step, gateway: gw })
      .then(function (body) {
        bars($("chart-nonrelays"), body.reasons.map(function (r) {
          return { name: r.reason, total: r.total };
        }), "data-reason");
      }, function (e) {
        if (e.status !== 403) throw e;
        $("chart-nonrelays").textContent = "visible to admin tokens only";
      });
    return Promise.all([byChain, byGateway, nonRelays]).then(function () {
      setStatus("updated " + new Date().toISOString().slice(11, 19) + " UTC");
    }, function (e) {
      setStatus(e.message, true);
    });
  }

  function live() {
    var gw = $("gateway").value;
    api("realtime", { gateway: gw }).then(function (body) {
      var cur = $("live-current");
      cur.textContent = fmt(body.current);
      cur.setAttribute("data-current", body.current);
      $("live-hour").textContent = fmt(body.total);
      var badge = $("live-redis");
      badge.textContent = body.redis.available ? "live" : "Redis unavailable: PostgreSQL only";
      badge.className = body.redis.available ? "badge" : "badge down";
    }, function (e) {
      $("live-redis").textContent = e.message;
      $("live-redis").className = "badge down";
    });
  }

  function start() {
    if (!token()) {
      setStatus("enter an API token", true);
      return;
    }
    loadGateways().then(refresh, function (e) { setStatus(e.message, true); });
    live();
    if (liveTimer) clearInterval(liveTimer);
    liveTimer = setInterval(live, 2000);
  }

  /* A token in the fragment (#token=...) is stored and removed from the
   * address bar; fragments never reach the server's logs. */
  var m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) {
    localStorage.setItem("rs_token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  $("token").value = token();
  $("auth").addEventListener("submit", function (ev) {
    ev.preventDefault();
    localStorage.setItem("rs_token", $("token").value.trim());
    start();
  });
  $("range").addEventListener("change", function () {
    document.querySelector(".controls").classList.toggle("show-custom", $("range").value === "custom");
    if ($("range").value !== "custom") refresh();
  });
  $("step").addEventListener("change", refresh);
  $("gateway").addEventListener("change", function () { refresh(); live(); });
  $("refresh").addEventListener("click", refresh);
  start();
})();
