// shardcast monitoring dashboard.
//
// Polls /varz, /shardz and /channelz (same origin) once a second, turns the lifetime
// counters into rates from successive samples, and keeps the last five minutes for the
// uPlot charts. Nothing is fetched from elsewhere. A failed fetch is shown in the status
// line and the next second is tried again; nothing is thrown or logged to the console.
//
// For tests, window.__dashboard holds:
//   samples    refreshes where all three endpoints answered and were taken in
//   ready      samples >= 1
//   lastError  the last refresh's error text, null once a refresh succeeds again
//   errors     refreshes that failed (all or in part)
//   shards     the shard count the charts are laid out for
//   series     the charted history (arrays of equal length, oldest first; null = no value):
//     time                 x values, unix seconds (the server's `now`)
//     msgsInTotal, msgsOutTotal               msgs/s
//     bytesInTotal, bytesOutTotal             bytes/s
//     latencyP50Total, latencyP99Total        µs, end-to-end, last completed second
//     cpuAvg                                  %, average busy of the shards
//     connectionsTotal                        open connections
//     msgsInShards, msgsOutShards, latencyP50Shards, latencyP99Shards,
//     cpuShards, connectionsShards            one array per shard, same units
(function () {
  'use strict';

  var WINDOW_S = 300;          // history kept and shown
  var MIN_SPAN_S = 60;         // the x axis spans at least this much
  var REFRESH_MS = 1000;
  var FETCH_TIMEOUT_MS = 2500;
  var TOP_SUBJECTS = 20;
  var CHART_HEIGHT = 200;

  var TOTAL_COLOR = '#e6edf3';
  var AXIS_COLOR = '#8b949e';
  var GRID_COLOR = 'rgba(139, 148, 158, 0.13)';
  var PALETTE = ['#4e9bff', '#ffb547', '#3ddc97', '#ff6b8b', '#b98cff', '#4dd6e6',
    '#f4e04d', '#ff8f5a', '#8fd14f', '#ff7ad9', '#7aa2ff', '#c9a27e'];

  var D = window.__dashboard = {
    samples: 0,
    ready: false,
    lastError: null,
    errors: 0,
    shards: 0,
    series: {}
  };

  // ---- formatting (format.js) ---------------------------------------------------------

  var F = window.SCFormat;
  var isNum = F.isNum;
  var num = F.num;
  var trimZeros = F.trimZeros;
  var sig3 = F.sig3;
  var fmtNum = F.fmtNum;
  var fmtCount = F.fmtCount;
  var fmtBytes = F.fmtBytes;
  var fmtBytesRate = F.fmtBytesRate;
  var fmtUs = F.fmtUs;
  var fmtPct = F.fmtPct;
  var fmtUptime = F.fmtUptime;
  var pad2 = F.pad2;
  var fmtClock = F.fmtClock;
  var escapeHtml = F.escapeHtml;
  var parseTimeMs = F.parseTimeMs;

  function shardColor(i) {
    if (i < PALETTE.length) return PALETTE[i];
    return 'hsl(' + Math.round((i * 137.508) % 360) + ', 70%, 64%)';
  }

  // ---- fetching ---------------------------------------------------------------------

  function fetchJson(path) {
    var name = '/' + path;
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, FETCH_TIMEOUT_MS);
    return fetch(path, { cache: 'no-store', signal: ctl.signal, headers: { Accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) throw new Error(name + ': HTTP ' + res.status + (res.statusText ? ' ' + res.statusText : ''));
        return res.json().catch(function () { throw new Error(name + ': not JSON'); });
      }, function (e) {
        throw new Error(name + ': ' + (ctl.signal.aborted ? 'timed out' : (e && e.message) || 'fetch failed'));
      })
      .finally(function () { clearTimeout(timer); });
  }

  // ---- history ----------------------------------------------------------------------

  var hist = null;          // == D.series
  var allArrays = [];       // every array in hist, trimmed together
  var lastPerf = 0;         // performance.now() of the last row
  var prevShardz = null;    // { tMs, perf, total, shards }
  var prevChan = null;      // { tMs, perf, map: subject -> counters }
  var serverId = null;
  var latest = null;        // rates and values of the newest sample, for the tiles and table

  function newHistory(n) {
    function perShard() { var a = []; for (var i = 0; i < n; i++) a.push([]); return a; }
    var h = {
      time: [],
      msgsInTotal: [], msgsOutTotal: [], bytesInTotal: [], bytesOutTotal: [],
      latencyP50Total: [], latencyP99Total: [], cpuAvg: [], connectionsTotal: [],
      msgsInShards: perShard(), msgsOutShards: perShard(),
      latencyP50Shards: perShard(), latencyP99Shards: perShard(),
      cpuShards: perShard(), connectionsShards: perShard()
    };
    allArrays = [];
    Object.keys(h).forEach(function (k) {
      if (/Shards$/.test(k)) {
        h[k].forEach(function (a) { allArrays.push(a); });
      } else {
        allArrays.push(h[k]);
      }
    });
    return h;
  }

  function trimHistory() {
    var t = hist.time;
    if (!t.length) return;
    var cutoff = t[t.length - 1] - WINDOW_S;
    var drop = 0;
    while (drop < t.length - 1 && t[drop] < cutoff) drop++;
    if (t.length - drop > WINDOW_S * 2) drop = t.length - WINDOW_S * 2;
    if (drop > 0) allArrays.forEach(function (a) { a.splice(0, drop); });
  }

  function resetHistory(n) {
    hist = newHistory(n);
    D.series = hist;
    D.shards = n;
    prevShardz = null;
    prevChan = null;
    latest = null;
    buildCharts(n);
    buildShardRows(n);
  }

  function nextX(tMs, perf) {
    var x = isNum(tMs) ? tMs / 1000 : Date.now() / 1000;
    var t = hist.time;
    if (t.length && x <= t[t.length - 1]) {
      // Same or older server time (clock step, repeated snapshot): keep x increasing.
      x = t[t.length - 1] + Math.max(0.001, (perf - lastPerf) / 1000);
    }
    return x;
  }

  function interval(h, key) {
    var i = h && h.interval;
    return i && i.count > 0 ? num(i[key]) : null;
  }

  function ingestShardz(sz, perf) {
    if (!sz || !Array.isArray(sz.shards)) throw new Error('/shardz: no "shards" array');
    var n = sz.shards.length;
    if (!hist || n !== D.shards || (sz.server_id && serverId && sz.server_id !== serverId)) resetHistory(n);
    if (sz.server_id) serverId = sz.server_id;

    var total = sz.total || {};
    var tMs = parseTimeMs(sz.now);
    var prev = prevShardz;
    var dt = null;
    if (prev) {
      dt = isNum(tMs) && isNum(prev.tMs) ? (tMs - prev.tMs) / 1000 : NaN;
      if (!(dt > 0.05)) dt = (perf - prev.perf) / 1000;
      if (!(dt > 0.05)) dt = null;
    }
    function rate(cur, old) {
      cur = num(cur); old = num(old);
      if (dt === null || cur === null || old === null || cur < old) return null;
      return (cur - old) / dt;
    }
    var pt = prev ? prev.total : {};

    var x = nextX(tMs, perf);
    hist.time.push(x);
    var L = {
      x: x,
      msgsIn: rate(total.in_msgs, pt.in_msgs),
      msgsOut: rate(total.out_msgs, pt.out_msgs),
      bytesIn: rate(total.in_bytes, pt.in_bytes),
      bytesOut: rate(total.out_bytes, pt.out_bytes),
      p50: interval(total.latency_us, 'p50'),
      p99: interval(total.latency_us, 'p99'),
      cpu: isNum(total.cpu) ? total.cpu * 100 : null,
      connections: num(total.connections),
      total: total,
      shards: []
    };
    hist.msgsInTotal.push(L.msgsIn);
    hist.msgsOutTotal.push(L.msgsOut);
    hist.bytesInTotal.push(L.bytesIn);
    hist.bytesOutTotal.push(L.bytesOut);
    hist.latencyP50Total.push(L.p50);
    hist.latencyP99Total.push(L.p99);
    hist.cpuAvg.push(L.cpu);
    hist.connectionsTotal.push(L.connections);

    for (var i = 0; i < n; i++) {
      var s = sz.shards[i] || {};
      var ps = (prev && prev.shards[i]) || {};
      var S = {
        shard: isNum(s.shard) ? s.shard : i,
        msgsIn: rate(s.in_msgs, ps.in_msgs),
        msgsOut: rate(s.out_msgs, ps.out_msgs),
        forwards: rate(s.forwards, ps.forwards),
        p50: interval(s.latency_us, 'p50'),
        p99: interval(s.latency_us, 'p99'),
        max: interval(s.latency_us, 'max'),
        cpu: isNum(s.cpu) ? s.cpu * 100 : null,
        raw: s
      };
      L.shards.push(S);
      hist.msgsInShards[i].push(S.msgsIn);
      hist.msgsOutShards[i].push(S.msgsOut);
      hist.latencyP50Shards[i].push(S.p50);
      hist.latencyP99Shards[i].push(S.p99);
      hist.cpuShards[i].push(S.cpu);
      hist.connectionsShards[i].push(num(s.connections));
    }
    L.forwards = rate(total.forwards, pt.forwards);
    L.max = interval(total.latency_us, 'max');

    lastPerf = perf;
    prevShardz = { tMs: tMs, perf: perf, total: total, shards: sz.shards };
    latest = L;
    trimHistory();
  }

  // A refresh whose /shardz failed: a gap (nulls) in every chart at about the right time.
  function ingestGap(perf) {
    if (!hist || !hist.time.length) return;
    var t = hist.time;
    t.push(t[t.length - 1] + Math.max(0.001, (perf - lastPerf) / 1000));
    allArrays.forEach(function (a) { if (a !== t) a.push(null); });
    lastPerf = perf;
    trimHistory();
  }

  // ---- charts -----------------------------------------------------------------------

  var charts = [];

  function xRange(u, min, max) {
    if (!isNum(min) || !isNum(max)) {
      var now = Date.now() / 1000;
      return [now - MIN_SPAN_S, now];
    }
    return [Math.min(min, max - MIN_SPAN_S), max];
  }

  function linRange(u, min, max) {
    return [0, isNum(max) && max > 0 ? max * 1.08 : 1];
  }

  function pctRange() { return [0, 100]; }

  function logRange(u, min, max) {
    if (!isNum(min) || !isNum(max) || max <= 0) return [10, 1000];
    min = Math.max(1, min);
    max = Math.max(min, max);
    // Snap to 1-9 x 10^n, and span at least a factor of 3 so that noise stays readable.
    if (max / min < 3) { var mid = Math.sqrt(min * max); min = mid / Math.sqrt(3); max = mid * Math.sqrt(3); }
    return uPlot.rangeLog(Math.max(1, min), max, 10, false);
  }

  // Which log-scale splits get a label and a grid line: decades only over a wide range,
  // 1-2-5 over a middling one, every split over a narrow one.
  function logFilter(u, splits) {
    var sc = u.scales.y;
    var decades = sc.min > 0 && sc.max > 0 ? Math.log10(sc.max / sc.min) : 3;
    var re = decades > 2.2 ? /^1/ : decades > 0.8 ? /^[125]/ : /./;
    return splits.map(function (v) { return v != null && re.test(v.toExponential()) ? v : null; });
  }

  function strokeOf(u, si) {
    var st = u.series[si].stroke;
    return typeof st === 'function' ? st(u, si) : st;
  }

  function timeValues(u, splits) {
    return splits.map(function (v) { return v == null ? '' : fmtClock(v); });
  }

  function axisValues(fmt) {
    return function (u, vals) { return vals.map(function (v) { return v == null ? '' : fmt(v); }); };
  }

  // The chart definitions: data() gives the uPlot data (x first), raw() the arrays whose
  // values the legend shows.
  var DEFS = [
    { id: 'ch-in', fmt: fmtNum, range: linRange, fill: true,
      arrays: function () { return [hist.msgsInTotal].concat(hist.msgsInShards); } },
    { id: 'ch-out', fmt: fmtNum, range: linRange, fill: true,
      arrays: function () { return [hist.msgsOutTotal].concat(hist.msgsOutShards); } },
    { id: 'ch-p50', fmt: fmtUs, range: logRange, log: true,
      arrays: function () { return [hist.latencyP50Total].concat(hist.latencyP50Shards); } },
    { id: 'ch-p99', fmt: fmtUs, range: logRange, log: true,
      arrays: function () { return [hist.latencyP99Total].concat(hist.latencyP99Shards); } },
    { id: 'ch-cpu', fmt: fmtPct, range: pctRange, totalLabel: 'average', dash: true,
      arrays: function () { return [hist.cpuAvg].concat(hist.cpuShards); } },
    { id: 'ch-conns', fmt: fmtCount, range: linRange,
      arrays: function () { return [hist.connectionsTotal].concat(hist.connectionsShards); } }
  ];

  function clampLog(a) {
    // A log scale has no 0: plot values below 1 µs at 1 µs (the legend shows the real value).
    return a.map(function (v) { return v == null ? null : Math.max(1, v); });
  }

  function chartData(def) {
    var arrs = def.arrays();
    if (def.log) arrs = arrs.map(clampLog);
    return [hist.time].concat(arrs);
  }

  function makeChart(def, n) {
    var el = document.getElementById(def.id);
    el.textContent = '';
    var raw = def.arrays();
    function legendValue(u, v, si, idx) {
      if (idx == null) return '–';
      var r = raw[si - 1];
      return r ? def.fmt(r[idx]) : def.fmt(v);
    }
    var series = [{ label: 'time', value: function (u, v) { return v == null ? '–' : fmtClock(v); } }];
    series.push({
      label: def.totalLabel || 'total',
      stroke: TOTAL_COLOR,
      width: 2,
      dash: def.dash ? [6, 4] : undefined,
      fill: def.fill ? 'rgba(230, 237, 243, 0.05)' : undefined,
      value: legendValue,
      spanGaps: false
    });
    for (var i = 0; i < n; i++) {
      series.push({ label: 'shard ' + i, stroke: shardColor(i), width: 1.5, value: legendValue, spanGaps: false });
    }
    var axisFont = '11px system-ui, "DejaVu Sans", sans-serif';
    var yAxis = { stroke: AXIS_COLOR, font: axisFont, size: 62, gap: 6, space: 36,
      grid: { stroke: GRID_COLOR, width: 1 }, ticks: { show: false }, values: axisValues(def.fmt) };
    if (def.log) { yAxis.filter = logFilter; yAxis.grid.filter = logFilter; }
    var opts = {
      width: Math.max(200, el.clientWidth || 600),
      height: CHART_HEIGHT,
      pxAlign: 0,
      legend: { live: true, markers: { width: 0, fill: strokeOf } },
      cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 6 } },
      scales: {
        x: { time: true, range: xRange },
        y: def.log ? { distr: 3, log: 10, range: def.range } : { range: def.range }
      },
      axes: [
        { stroke: AXIS_COLOR, font: axisFont, grid: { stroke: GRID_COLOR, width: 1 },
          ticks: { stroke: GRID_COLOR, width: 1, size: 4 }, space: 80, size: 30, values: timeValues },
        yAxis
      ],
      series: series
    };
    var u = new uPlot(opts, chartData(def), el);
    var hovering = false;
    u.over.addEventListener('mouseenter', function () { hovering = true; });
    u.over.addEventListener('mouseleave', function () { hovering = false; showLatest(); });
    function showLatest() {
      var len = hist.time.length;
      if (!hovering && len > 0) u.setLegend({ idx: len - 1 });
    }
    var chart = { def: def, u: u, el: el, showLatest: showLatest, width: opts.width };
    return chart;
  }

  var resizeObserver = null;
  var resizePending = false;

  function resizeCharts() {
    resizePending = false;
    charts.forEach(function (c) {
      var w = Math.max(200, c.el.clientWidth);
      if (w !== c.width) {
        c.width = w;
        c.u.setSize({ width: w, height: CHART_HEIGHT });
      }
    });
  }

  function scheduleResize() {
    if (resizePending) return;
    resizePending = true;
    requestAnimationFrame(resizeCharts);
  }

  function buildCharts(n) {
    if (typeof uPlot === 'undefined') return;
    charts.forEach(function (c) { c.u.destroy(); });
    charts = DEFS.map(function (def) { return makeChart(def, n); });
    if (!resizeObserver && typeof ResizeObserver !== 'undefined') {
      resizeObserver = new ResizeObserver(scheduleResize);
      DEFS.forEach(function (def) { resizeObserver.observe(document.getElementById(def.id)); });
    }
  }

  function updateCharts() {
    charts.forEach(function (c) {
      c.u.setData(chartData(c.def));
      c.showLatest();
    });
  }

  // ---- header, tiles and tables -------------------------------------------------------

  function $(id) { return document.getElementById(id); }
  function setText(id, s) { var e = $(id); if (e && e.textContent !== s) e.textContent = s; }

  function renderVarz(v) {
    var name = v.server_name || v.server_id || 'shardcast';
    setText('server-name', name);
    setText('server-id', v.server_id && v.server_id !== name ? v.server_id : '');
    $('server-id').title = v.server_id ? 'server id ' + v.server_id + (v.host != null ? ' · ' + v.host + ':' + v.port : '') : '';
    var ver = $('server-version');
    if (v.version) { ver.hidden = false; setText('server-version', 'v' + v.version); }
    var title = name + ' · shardcast monitor';
    if (document.title !== title) document.title = title;

    var up = parseTimeMs(v.now) - parseTimeMs(v.start);
    setText('st-uptime', isNum(up) && up >= 0 ? fmtUptime(up / 1000) : (v.uptime || '–'));
    setText('st-uptime-sub', isNum(v.mem) ? fmtBytes(v.mem) + ' resident' : '');
    setText('st-shards', fmtCount(isNum(v.shards) ? v.shards : D.shards));
    setText('st-conns', fmtCount(v.connections));
    setText('st-conns-sub', isNum(v.total_connections) ? fmtCount(v.total_connections) + ' since start' : '');
    setText('st-shards-sub', isNum(v.cores) ? v.cores + (v.cores === 1 ? ' core' : ' cores') : '');
    setText('st-subs', fmtCount(v.subscriptions));
    setText('st-slow', fmtCount(v.slow_consumers));
    $('stat-slow').classList.toggle('alert', isNum(v.slow_consumers) && v.slow_consumers > 0);
    var cpuSub = ['shard avg'];
    if (isNum(v.cpu)) cpuSub.push('process ' + fmtPct(v.cpu));
    setText('st-cpu-sub', cpuSub.join(' · '));
  }

  function renderRates() {
    if (!latest) return;
    setText('st-in', fmtNum(latest.msgsIn));
    setText('st-out', fmtNum(latest.msgsOut));
    setText('st-in-sub', isNum(latest.bytesIn) ? fmtBytesRate(latest.bytesIn) : '');
    setText('st-out-sub', isNum(latest.bytesOut) ? fmtBytesRate(latest.bytesOut) : '');
    setText('st-p50', fmtUs(latest.p50));
    setText('st-p99', fmtUs(latest.p99));
    setText('st-max', isNum(latest.max) ? 'max ' + fmtUs(latest.max) : 'no messages in the last second');
    setText('st-cpu', fmtPct(latest.cpu));
  }

  var shardRows = [];

  function buildShardRows(n) {
    var tbody = $('shards-table').tBodies[0];
    tbody.textContent = '';
    shardRows = [];
    for (var i = 0; i <= n; i++) {
      var tr = document.createElement('tr');
      var isTotal = i === n;
      if (isTotal) tr.className = 'total';
      var label = isTotal ? 'total' :
        '<span class="swatch" style="background:' + shardColor(i) + '"></span>shard ' + i;
      tr.innerHTML = '<td class="l">' + label + '</td>' + new Array(14).join('<td>–</td>');
      tbody.appendChild(tr);
      shardRows.push(tr);
    }
  }

  function setCells(tr, vals) {
    for (var i = 0; i < vals.length; i++) {
      var td = tr.cells[i + 1];
      var v = vals[i];
      var text = typeof v === 'object' && v ? v.text : v;
      var cls = typeof v === 'object' && v ? v.cls : '';
      if (td.textContent !== text) td.textContent = text;
      if (td.className !== cls) td.className = cls;
    }
  }

  function counterCell(v) {
    return { text: fmtCount(v), cls: isNum(v) && v > 0 ? 'bad' : 'dim' };
  }

  function renderShardTable() {
    if (!latest) return;
    var n = latest.shards.length;
    function row(tr, s, r) {
      setCells(tr, [
        fmtPct(s.cpu), fmtCount(r.connections), fmtCount(r.subscriptions),
        fmtNum(s.msgsIn), fmtNum(s.msgsOut), fmtNum(s.forwards),
        fmtUs(s.p50), fmtUs(s.p99), fmtUs(s.max),
        counterCell(r.slow_consumers), counterCell(r.ring_full),
        counterCell(r.connections_rejected), counterCell(r.protocol_errors)
      ]);
    }
    for (var i = 0; i < n; i++) row(shardRows[i], latest.shards[i], latest.shards[i].raw);
    row(shardRows[n], latest, latest.total);
  }

  function ingestChannelz(cz, perf) {
    if (!cz || !Array.isArray(cz.subjects)) throw new Error('/channelz: no "subjects" array');
    var tMs = parseTimeMs(cz.now);
    var prev = prevChan;
    var dt = null;
    if (prev) {
      dt = isNum(tMs) && isNum(prev.tMs) ? (tMs - prev.tMs) / 1000 : NaN;
      if (!(dt > 0.05)) dt = (perf - prev.perf) / 1000;
      if (!(dt > 0.05)) dt = null;
    }
    var map = Object.create(null);
    var rows = cz.subjects.map(function (s) {
      var p = prev && prev.map[s.subject];
      map[s.subject] = s;
      function rate(k) {
        if (!p || dt === null || !isNum(s[k]) || !isNum(p[k]) || s[k] < p[k]) return null;
        return (s[k] - p[k]) / dt;
      }
      return { s: s, in: rate('in_msgs'), out: rate('out_msgs'), bytesOut: rate('out_bytes') };
    });
    prevChan = { tMs: tMs, perf: perf, map: map };
    renderSubjects(rows);
  }

  function renderSubjects(rows) {
    var shown = rows.slice(0, TOP_SUBJECTS);
    var maxOut = 0;
    shown.forEach(function (r) { if (isNum(r.out) && r.out > maxOut) maxOut = r.out; });
    var html;
    if (!shown.length) {
      html = '<tr class="empty"><td colspan="6">no subjects with subscribers or traffic</td></tr>';
    } else {
      html = shown.map(function (r) {
        var pct = maxOut > 0 && isNum(r.out) ? Math.max(0.5, (r.out / maxOut) * 100) : 0;
        return '<tr>' +
          '<td class="l subject" title="' + escapeHtml(r.s.subject) + '">' + escapeHtml(r.s.subject) + '</td>' +
          '<td>' + fmtCount(r.s.subscribers) + '</td>' +
          '<td>' + fmtNum(r.in) + '</td>' +
          '<td><div class="barcell"><div class="bar"><span style="width:' + pct.toFixed(1) + '%"></span></div>' +
          '<span class="num">' + fmtNum(r.out) + '</span></div></td>' +
          '<td>' + fmtBytesRate(r.bytesOut) + '</td>' +
          '<td>' + fmtBytes(r.s.out_bytes) + '</td>' +
          '</tr>';
      }).join('');
    }
    $('subjects-table').tBodies[0].innerHTML = html;
    setText('subjects-hint', rows.length > shown.length
      ? 'busiest ' + shown.length + ' of ' + fmtCount(rows.length) + ' subjects'
      : fmtCount(rows.length) + (rows.length === 1 ? ' subject' : ' subjects'));
  }

  var lastGood = null;

  function renderStatus(errs) {
    var st = $('status'), dot = $('status-dot');
    var now = fmtClock(Date.now() / 1000);
    if (errs.length) {
      st.classList.add('error');
      dot.className = 'dot err';
      var text = now + '  ' + errs.join(' · ') + ' — retrying' + (lastGood ? ' (last good ' + lastGood + ')' : '');
      setText('status-text', text);
      st.title = text;
    } else {
      st.classList.remove('error');
      dot.className = 'dot live';
      lastGood = now;
      setText('status-text', 'live · updated ' + now + ' · ' + fmtCount(D.samples) + ' samples' +
        (D.errors ? ' · ' + fmtCount(D.errors) + ' failed' : ''));
      st.title = '';
    }
  }

  // ---- the loop ---------------------------------------------------------------------

  function settle(p) {
    return p.then(function (v) { return { ok: true, v: v }; }, function (e) { return { ok: false, e: e }; });
  }

  function errText(e) { return (e && e.message) || String(e); }

  function refresh() {
    var started = performance.now();
    Promise.all([settle(fetchJson('varz')), settle(fetchJson('shardz')), settle(fetchJson('channelz'))])
      .then(function (r) {
        var perf = performance.now();
        var errs = [];
        function step(res, fn) {
          if (!res.ok) { errs.push(errText(res.e)); return false; }
          try { fn(res.v); return true; } catch (e) { errs.push(errText(e)); return false; }
        }
        var shardsOk = step(r[1], function (v) { ingestShardz(v, perf); });
        if (!shardsOk) ingestGap(perf);
        step(r[0], renderVarz);
        step(r[2], function (v) { ingestChannelz(v, perf); });
        try {
          if (hist) updateCharts();
          renderRates();
          renderShardTable();
        } catch (e) {
          errs.push('render: ' + errText(e));
        }
        if (typeof uPlot === 'undefined') errs.push('uPlot.iife.min.js did not load');
        if (errs.length) {
          D.errors++;
          D.lastError = errs.join('; ');
        } else {
          D.samples++;
          D.ready = true;
          D.lastError = null;
        }
        renderStatus(errs);
      })
      .catch(function (e) {
        D.errors++;
        D.lastError = errText(e);
        try { renderStatus([D.lastError]); } catch (e2) { /* keep polling */ }
      })
      .then(function () {
        var wait = REFRESH_MS - (performance.now() - started);
        setTimeout(refresh, Math.max(100, wait));
      });
  }

  refresh();
})();
