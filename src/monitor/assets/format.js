// shardcast monitoring dashboard: how numbers, sizes, durations and times are written
// (1.23k, 4.5 MiB, 850 µs, 3m07s), shared by app.js as window.SCFormat.
(function () {
  'use strict';

  function isNum(v) { return typeof v === 'number' && isFinite(v); }
  function num(v) { return isNum(v) ? v : null; }

  function trimZeros(s) { return s.indexOf('.') >= 0 ? s.replace(/\.?0+$/, '') : s; }

  function sig3(v) {
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  }

  // 1234 -> "1.23k", 5600000 -> "5.6M"; small values keep up to one decimal.
  function fmtNum(v) {
    if (!isNum(v)) return '–';
    var a = Math.abs(v);
    if (a < 999.5) {
      if (Number.isInteger(v)) return String(v);
      return trimZeros(a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2));
    }
    var units = ['k', 'M', 'G', 'T', 'P'];
    var u = -1;
    while (a >= 999.5 && u < units.length - 1) { v /= 1000; a /= 1000; u++; }
    return trimZeros(sig3(v)) + units[u];
  }

  function fmtCount(v) {
    if (!isNum(v)) return '–';
    return Math.abs(v) < 100000 ? Math.round(v).toLocaleString('en-US') : fmtNum(v);
  }

  function fmtBytes(v) {
    if (!isNum(v)) return '–';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    var u = 0, a = Math.abs(v);
    while (a >= 1023.5 && u < units.length - 1) { v /= 1024; a /= 1024; u++; }
    return (u === 0 ? String(Math.round(v)) : trimZeros(sig3(v))) + ' ' + units[u];
  }

  function fmtBytesRate(v) { return isNum(v) ? fmtBytes(v) + '/s' : '–'; }

  // microseconds -> "850 µs", "1.25 ms", "2.1 s"
  function fmtUs(v) {
    if (!isNum(v)) return '–';
    var a = Math.abs(v);
    if (a < 999.5) return (a < 10 && !Number.isInteger(v) ? trimZeros(v.toFixed(1)) : String(Math.round(v))) + ' µs';
    if (a < 999500) return trimZeros(sig3(v / 1000)) + ' ms';
    return trimZeros(sig3(v / 1e6)) + ' s';
  }

  function fmtPct(v) {
    if (!isNum(v)) return '–';
    return (Math.abs(v) < 10 ? trimZeros(v.toFixed(1)) : String(Math.round(v))) + '%';
  }

  // seconds -> "45s", "3m07s", "1h02m03s", "2d03h04m"
  function fmtUptime(sec) {
    sec = Math.floor(sec);
    var d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600);
    var m = Math.floor(sec % 3600 / 60), s = sec % 60;
    if (d > 0) return d + 'd' + pad2(h) + 'h' + pad2(m) + 'm';
    if (h > 0) return h + 'h' + pad2(m) + 'm' + pad2(s) + 's';
    if (m > 0) return m + 'm' + pad2(s) + 's';
    return s + 's';
  }

  function pad2(n) { return (n < 10 ? '0' : '') + n; }
  function fmtClock(sec) {
    if (!isNum(sec)) return '–';
    var d = new Date(sec * 1000);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  // RFC 3339 with any number of fractional digits (Date.parse wants at most 3).
  function parseTimeMs(s) {
    if (typeof s !== 'string') return NaN;
    return Date.parse(s.replace(/(\.\d{3})\d+/, '$1'));
  }

  window.SCFormat = {
    isNum: isNum,
    num: num,
    trimZeros: trimZeros,
    sig3: sig3,
    fmtNum: fmtNum,
    fmtCount: fmtCount,
    fmtBytes: fmtBytes,
    fmtBytesRate: fmtBytesRate,
    fmtUs: fmtUs,
    fmtPct: fmtPct,
    fmtUptime: fmtUptime,
    pad2: pad2,
    fmtClock: fmtClock,
    escapeHtml: escapeHtml,
    parseTimeMs: parseTimeMs,
  };
})();
