#!/usr/bin/env node
// Headless check of the shardcast monitoring dashboard.
//
//   node tests/browser/dashboard.mjs <url> <screenshot.png> [--min-samples N] [--timeout-ms T]
//
// Opens <url> in Debian's Chromium (through playwright-core; no browser is downloaded),
// waits until window.__dashboard.samples >= N (default 3) and the total msgs/s out series
// holds a value > 0 (within T ms, default 20000), takes a full-page screenshot and prints
// one JSON line. Any console error or warning, or any uncaught page error, fails the run.
//
// Exit codes: 0 ok; 1 the check failed (timeout, console error/warning, page error,
// navigation or browser failure; the JSON line says why); 2 bad command line.
// Set CHROMIUM=/path/to/chromium to use another binary than /usr/bin/chromium.

import { chromium } from 'playwright-core';

const USAGE = 'usage: node tests/browser/dashboard.mjs <url> <screenshot.png> [--min-samples N] [--timeout-ms T]';

function parseArgs(argv) {
  const pos = [];
  const opts = { minSamples: 3, timeoutMs: 20000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    const value = () => {
      const v = inline !== undefined ? inline : argv[++i];
      const n = Number(v);
      if (v === undefined || !Number.isInteger(n) || n < 0) throw new Error(`${name} wants a whole number, got ${v}`);
      return n;
    };
    if (name === '--min-samples') opts.minSamples = value();
    else if (name === '--timeout-ms') opts.timeoutMs = value();
    else if (name === '-h' || name === '--help') throw new Error('help');
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else pos.push(a);
  }
  if (pos.length !== 2) throw new Error('want exactly <url> and <screenshot.png>');
  [opts.url, opts.screenshot] = pos;
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  if (e.message !== 'help') process.stderr.write(`${e.message}\n`);
  process.stderr.write(`${USAGE}\n`);
  process.exit(e.message === 'help' ? 0 : 2);
}

const started = Date.now();
const consoleErrors = [];
let browser = null;
let printed = false;

function finish(result, code) {
  if (!printed) {
    printed = true;
    process.stdout.write(JSON.stringify({ ...result, consoleErrors, elapsedMs: Date.now() - started }) + '\n');
  }
  const close = browser ? browser.close().catch(() => {}) : Promise.resolve();
  // Do not let a stuck browser keep the process alive.
  const timer = setTimeout(() => process.exit(code), 5000);
  timer.unref();
  close.then(() => process.exit(code));
}

// A last resort: whatever happens, answer and exit.
const watchdog = setTimeout(() => {
  finish({ ok: false, reason: `watchdog: no answer within ${opts.timeoutMs + 30000} ms` }, 1);
}, opts.timeoutMs + 30000);
watchdog.unref();

// Rejects as soon as the page reports an error, so a broken page fails fast.
let rejectOnError;
const errorSeen = new Promise((_, reject) => { rejectOnError = reject; });
errorSeen.catch(() => {});

function record(text) {
  consoleErrors.push(text);
  rejectOnError(new Error(text));
}

async function readState(page) {
  return page.evaluate(() => {
    const d = window.__dashboard;
    if (!d) return null;
    const max = (a) => {
      let m = null;
      for (const v of a || []) if (typeof v === 'number' && Number.isFinite(v) && (m === null || v > m)) m = v;
      return m;
    };
    const s = d.series || {};
    return {
      samples: d.samples,
      ready: d.ready,
      lastError: d.lastError,
      shards: d.shards,
      points: (s.time || []).length,
      maxMsgsOut: max(s.msgsOutTotal),
      maxMsgsIn: max(s.msgsInTotal),
      maxLatencyP99: max(s.latencyP99Total),
    };
  }).catch(() => null);
}

async function screenshot(page) {
  try {
    await page.screenshot({ path: opts.screenshot, fullPage: true, timeout: 10000 });
    return opts.screenshot;
  } catch (e) {
    return `failed: ${e.message.split('\n')[0]}`;
  }
}

async function main() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  try {
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (e) {
    return finish({ ok: false, reason: `cannot launch ${executablePath}: ${e.message.split('\n')[0]}` }, 1);
  }
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, deviceScaleFactor: 1 });
  const page = await context.newPage();

  page.on('console', (msg) => {
    const type = msg.type();
    if (type === 'error' || type === 'warning') {
      const loc = msg.location();
      const where = loc && loc.url ? ` (${loc.url}${loc.lineNumber ? `:${loc.lineNumber}` : ''})` : '';
      record(`console.${type}: ${msg.text()}${where}`);
    }
  });
  page.on('pageerror', (err) => record(`pageerror: ${err.message}`));
  page.on('crash', () => record('page crashed'));

  const deadline = started + opts.timeoutMs;
  try {
    const response = await Promise.race([
      page.goto(opts.url, { waitUntil: 'load', timeout: Math.max(1000, deadline - Date.now()) }),
      errorSeen,
    ]);
    if (response && !response.ok()) throw new Error(`GET ${opts.url}: HTTP ${response.status()}`);
    const minSamples = opts.minSamples;
    await Promise.race([
      page.waitForFunction((n) => {
        const d = window.__dashboard;
        return !!d && d.samples >= n && !!d.series &&
          Array.isArray(d.series.msgsOutTotal) && d.series.msgsOutTotal.some((v) => typeof v === 'number' && v > 0);
      }, minSamples, { timeout: Math.max(1000, deadline - Date.now()), polling: 200 }),
      errorSeen,
    ]);
  } catch (e) {
    // Let messages that come with the failure arrive, then report what the page held.
    await new Promise((r) => setTimeout(r, 300));
    const state = await readState(page);
    const shot = await screenshot(page);
    const timedOut = /Timeout|timeout/.test(e.message) && !consoleErrors.length;
    const reason = consoleErrors.length ? 'console or page error'
      : timedOut ? `timed out after ${opts.timeoutMs} ms waiting for ${opts.minSamples} samples with msgs out > 0`
        : e.message.split('\n')[0];
    return finish({ ok: false, reason, ...(state || { dashboard: 'window.__dashboard missing' }), screenshot: shot }, 1);
  }

  // Let the frame with the last sample paint, then take the picture.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))).catch(() => {});
  const shot = await screenshot(page);
  const state = await readState(page);
  if (consoleErrors.length || !state) {
    return finish({ ok: false, reason: consoleErrors.length ? 'console or page error' : 'window.__dashboard missing',
      ...(state || {}), screenshot: shot }, 1);
  }
  if (shot !== opts.screenshot) return finish({ ok: false, reason: `screenshot ${shot}`, ...state }, 1);
  return finish({
    ok: true,
    samples: state.samples,
    maxMsgsOut: state.maxMsgsOut,
    maxMsgsIn: state.maxMsgsIn,
    maxLatencyP99: state.maxLatencyP99,
    shards: state.shards,
    points: state.points,
    lastError: state.lastError,
    screenshot: shot,
  }, 0);
}

main().catch((e) => finish({ ok: false, reason: `harness: ${e && e.message ? e.message.split('\n')[0] : e}` }, 1));
