#!/usr/bin/env node
// Browser test of the embedded web UI, in headless Debian Chromium driven by playwright-core.
//
//   node ui_test.mjs BASE_URL TORRENT_FILE SCREENSHOT_DIR [PEER]
//
// Adds TORRENT_FILE through the page (file input; drag-and-drop is checked too), with PEER typed
// into the peers field, waits until it is complete, checks the paths view (one row per SCION
// lane, bytes on at least two distinct paths), sets a sequence in its path rules form (the API
// snapshot has it; a bad one shows the daemon's 400 message there), pauses, resumes and removes
// it (with its data unless UI_TEST_KEEP_DATA=1). Fails on any console or page error.
// Environment: CHROMIUM (the browser, default /usr/bin/chromium), UI_TEST_TIMEOUT_S (completion
// wait, default 300), UI_TEST_TOKEN (API token, typed into the page's prompt when asked),
// UI_TEST_DEBUG=1 (log each poll of the detail page).

import fs from 'node:fs';
import path from 'node:path';
import { launchChromium } from './browser.mjs';

const [baseUrl, torrentFile, shotDir, peer] = process.argv.slice(2);
if (!baseUrl || !torrentFile || !shotDir) {
  console.error('usage: node ui_test.mjs BASE_URL TORRENT_FILE SCREENSHOT_DIR [PEER]');
  process.exit(2);
}
const completeTimeout = Number(process.env.UI_TEST_TIMEOUT_S || 300) * 1000;
const deleteData = process.env.UI_TEST_KEEP_DATA !== '1';
const token = process.env.UI_TEST_TOKEN || '';

fs.mkdirSync(shotDir, { recursive: true });

const problems = [];
let step = 'start';
const log = (m) => console.log(`[ui_test] ${m}`);
function check(cond, message) {
  if (!cond) throw new Error(message);
}

const { context, close } = await launchChromium('bts-ui-test-', { colorScheme: 'light' });

/** Any console error, page error or native dialog in `p` fails the test. */
function watch(p, name) {
  p.on('console', (msg) => {
    // Chromium itself logs every failed request; the 401 that makes the page ask for the
    // token is expected when a token is configured.
    if (token && /status of 401/.test(msg.text())) return;
    // The refused path rules are the point of that step.
    if (step.startsWith('a bad sequence') && /status of 400/.test(msg.text())) return;
    if (msg.type() === 'error') problems.push(`console error in the ${name} during "${step}": ${msg.text()}`);
  });
  p.on('pageerror', (err) => problems.push(`page error in the ${name} during "${step}": ${err.message}`));
  p.on('dialog', (d) => {
    problems.push(`unexpected native dialog in the ${name} during "${step}": ${d.message()}`);
    d.dismiss();
  });
}

/** With UI_TEST_TOKEN, the page must ask for the token (the API answered 401); type it. */
async function enterToken(p) {
  if (!token) return;
  await p.locator('#token-dialog').waitFor({ state: 'visible', timeout: 10_000 });
  await p.fill('#token-input', token);
  await p.click('#token-dialog button[type=submit]');
}

async function run() {
  const page = context.pages()[0] || (await context.newPage());
  watch(page, 'list tab');
  const fail = () => check(!problems.length, problems.join('\n'));

  step = 'open the UI';
  await page.goto(baseUrl, { waitUntil: 'load' });
  await enterToken(page);
  await page.locator('#conn[data-state="live"]').waitFor({ timeout: 30_000 });
  fail();

  step = 'drag and drop a .torrent file';
  const bytes = [...fs.readFileSync(torrentFile)];
  const fileName = path.basename(torrentFile);
  await page.evaluate(({ bytes, fileName }) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], fileName, { type: 'application/x-bittorrent' }));
    for (const type of ['dragenter', 'dragover', 'drop']) {
      document.body.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  }, { bytes, fileName });
  await page.locator('#add-dialog[open]').waitFor({ timeout: 5000 });
  const hint = await page.textContent('#add-file-hint');
  check(hint.includes(fileName), `the dropped file is not selected in the add dialog: "${hint}"`);
  await page.click('#add-dialog button[data-action="close-dialog"]');
  await page.locator('#add-dialog[open]').waitFor({ state: 'detached', timeout: 5000 });

  step = 'add the torrent by upload';
  await page.click('header button[data-action="open-add"]');
  await page.setInputFiles('#add-file', torrentFile);
  if (peer) await page.fill('#add-peers', peer);
  const added = page.waitForResponse((r) => r.url().endsWith('/api/v1/torrents') && r.request().method() === 'POST');
  await page.click('#add-submit');
  const res = await added;
  const body = await res.json().catch(() => ({}));
  check(res.status() === 201 && body.info_hash, `POST /api/v1/torrents answered ${res.status()}: ${JSON.stringify(body)}`);
  const ih = body.info_hash;
  log(`added ${ih}`);
  const row = page.locator(`tr[data-ih="${ih}"]`);
  await row.waitFor({ timeout: 15_000 });

  // A second tab on the detail page watches the transfer live while the first keeps the list.
  step = 'watch the paths view while downloading';
  const detail = await context.newPage();
  watch(detail, 'detail tab');
  await detail.goto(new URL(`#/torrent/${ih}`, baseUrl).href, { waitUntil: 'load' });
  await enterToken(detail); // sessionStorage is per tab
  await detail.locator(`.detail[data-ih="${ih}"]`).waitFor({ timeout: 10_000 });
  const seen = new Map(); // lane id -> {fingerprint, bytes, hops, latency}
  let liveShots = false;
  const deadline = Date.now() + completeTimeout;
  for (;;) {
    const rows = await detail.$$eval('.detail li.lane', (els) => els.map((e) => ({
      id: e.dataset.lane,
      fingerprint: e.dataset.fingerprint,
      bytes: Number(e.dataset.bytes),
      hops: e.querySelectorAll('.hops .hop').length,
      latency: /p50 .* p99 /.test(e.innerText),
    })));
    for (const r of rows) {
      const old = seen.get(r.id);
      if (!old || r.bytes >= old.bytes) seen.set(r.id, r);
    }
    const paths = new Set([...seen.values()].filter((l) => l.bytes > 0).map((l) => l.fingerprint));
    const state = await detail.getAttribute('.detail', 'data-state');
    const progress = Number(await detail.getAttribute('.detail', 'data-progress'));
    if (process.env.UI_TEST_DEBUG) log(`state ${state} progress ${progress} paths ${paths.size}`);
    // Past half-way the goodput charts have some history to show.
    if (!liveShots && paths.size >= 2 && state === 'downloading' && progress >= 0.5) {
      liveShots = true;
      await detail.screenshot({ path: path.join(shotDir, 'detail-live.png'), fullPage: true });
      await page.screenshot({ path: path.join(shotDir, 'list-live.png'), fullPage: true });
    }
    if (state === 'seeding') break;
    if (state === 'error') {
      const why = await detail.locator('.detail .notice.error').textContent({ timeout: 2000 }).catch(() => '?');
      check(false, `the torrent went into error: ${why}`);
    }
    check(Date.now() < deadline, `not complete after ${completeTimeout / 1000} s (state ${state})`);
    await detail.waitForTimeout(250);
  }
  if (!liveShots) log('the download was too quick for screenshots while it ran');
  log(`complete; lanes seen: ${JSON.stringify([...seen.values()].map(({ id, fingerprint, bytes }) => ({ id, fingerprint, bytes })))}`);
  fail();

  step = 'the list shows it complete';
  await page.locator(`tr[data-ih="${ih}"][data-state="seeding"]`).waitFor({ timeout: 15_000 });
  const pct = await row.locator('.progress .pct').textContent();
  check(pct.trim() === '100 %', `complete torrent shows progress "${pct}"`);
  await page.screenshot({ path: path.join(shotDir, 'list.png'), fullPage: true });

  step = 'check the paths view';
  const carrying = [...seen.values()].filter((l) => l.bytes > 0);
  const paths = new Set(carrying.map((l) => l.fingerprint));
  check(paths.size >= 2, `lanes with bytes covered ${paths.size} distinct paths (need ≥ 2): ${JSON.stringify([...seen.values()])}`);
  check(carrying.every((l) => l.hops >= 1 && l.fingerprint), 'every lane row draws its hop sequence');
  check(carrying.every((l) => l.latency), 'every lane row shows block latency p50/p99');
  // One row per SCION lane the API reports (retried: the page and the API may be a snapshot apart).
  const authToken = token || (await detail.evaluate(() => sessionStorage.getItem('bts-token')));
  let mismatch = '';
  for (let i = 0; i < 20; i += 1) {
    const apiLanes = await detail.evaluate(async ({ ih, authToken }) => {
      const r = await fetch(`/api/v1/torrents/${ih}`, { headers: authToken ? { Authorization: `Bearer ${authToken}` } : {} });
      const t = await r.json();
      return t.lanes.filter((l) => l.transport === 'scion').map((l) => String(l.id)).sort();
    }, { ih, authToken });
    const pageLanes = (await detail.$$eval('.detail li.lane', (els) => els.map((e) => e.dataset.lane))).sort();
    mismatch = JSON.stringify(apiLanes) === JSON.stringify(pageLanes) ? '' : `API lanes [${apiLanes}], page rows [${pageLanes}]`;
    if (!mismatch) break;
    await detail.waitForTimeout(250);
  }
  check(!mismatch, `one row per SCION lane: ${mismatch}`);
  const charts = await detail.$$eval('.detail li.lane .chart svg polyline', (els) => els.length);
  const rowsNow = await detail.$$eval('.detail li.lane', (els) => els.length);
  if (rowsNow) check(charts >= 1, `goodput charts drawn for the lanes (${charts} polylines)`);
  await detail.screenshot({ path: path.join(shotDir, 'detail.png'), fullPage: true });

  step = 'check the path service page';
  const pathsPage = await context.newPage();
  watch(pathsPage, 'paths page');
  await pathsPage.goto(new URL('#/paths', baseUrl).href, { waitUntil: 'load' });
  await enterToken(pathsPage);
  await pathsPage.locator('.known-path .kp-head').first().waitFor({ timeout: 15_000 });
  const heads = await pathsPage.$$eval('.known-path .kp-head', (els) => els.map((e) => e.textContent));
  // pocketscion's daemon gives MTU and expiry only: the rest reads "unknown", never 0 or null.
  check(heads.every((t) => /MTU \d+ · latency (unknown|[\d.]+ ms) · bandwidth \S+.* · expires in /.test(t)),
    `path summaries: ${JSON.stringify(heads)}`);
  check(heads.every((t) => !/null|undefined|NaN/.test(t)), `path summaries: ${JSON.stringify(heads)}`);
  const meta = pathsPage.locator('.known-path details.path-meta').first();
  await meta.locator('summary').click();
  const metaText = await meta.textContent();
  check(/Step.*Kind.*Latency.*Bandwidth/.test(metaText) && /Routers/.test(metaText) && /Notes/.test(metaText)
    && !/null|undefined|NaN/.test(metaText), `path metadata: ${metaText}`);
  await pathsPage.screenshot({ path: path.join(shotDir, 'paths.png'), fullPage: true });
  await pathsPage.close();

  step = 'set path rules through the form';
  const snapshotRules = () => detail.evaluate(async ({ ih, authToken }) => {
    const r = await fetch('/api/v1/snapshot', { headers: authToken ? { Authorization: `Bearer ${authToken}` } : {} });
    const t = (await r.json()).torrents.find((x) => x.info_hash === ih);
    return t && t.path_rules;
  }, { ih, authToken });
  const saveRules = async () => {
    const put = detail.waitForResponse((r) => r.url().endsWith(`/api/v1/torrents/${ih}/path_rules`) && r.request().method() === 'PUT');
    await detail.click('form[data-form="path-rules"] button[type=submit]');
    return put;
  };
  const before = await snapshotRules();
  check(before && before.sequence === null, `no sequence before: ${JSON.stringify(before)}`);
  // Any number of any hops: every path still allowed.
  const sequence = '0*';
  await detail.fill('#rule-sequence', sequence);
  const okPut = await saveRules();
  check(okPut.status() === 204, `PUT path_rules answered ${okPut.status()}`);
  let rules = null;
  for (let i = 0; i < 20 && !(rules && rules.sequence === sequence); i += 1) {
    if (i) await detail.waitForTimeout(250);
    rules = await snapshotRules();
  }
  check(rules && rules.sequence === sequence && rules.acl === null && rules.path_policy === null
    && rules.preference === null, `the snapshot has the sequence: ${JSON.stringify(rules)}`);
  // The form is rebuilt from the daemon's values (it is keyed by them) and shows the sequence.
  const rebuiltWith = (seq) => detail.waitForFunction((seq) => {
    const form = document.querySelector('form[data-form="path-rules"]');
    return form && form.dataset.key.endsWith(`-${JSON.stringify([seq, null, null, null])}`);
  }, seq, { timeout: 10_000 });
  await rebuiltWith(sequence);
  check(await detail.inputValue('#rule-sequence') === sequence, 'the form shows the saved sequence');
  check(await detail.locator('#path-rules-error').isHidden(), 'no error shown after a good save');

  step = 'a bad sequence shows the daemon\'s message';
  await detail.fill('#rule-sequence', '1-ff00:0:120#');
  const badPut = await saveRules();
  check(badPut.status() === 400, `PUT of a bad sequence answered ${badPut.status()}`);
  const errorBox = detail.locator('#path-rules-error');
  await errorBox.waitFor({ state: 'visible', timeout: 5000 });
  const message = await errorBox.textContent();
  check(/^bad path rules: sequence: /.test(message), `inline error: "${message}"`);
  check(await detail.inputValue('#rule-sequence') === '1-ff00:0:120#', 'the bad text stays in the field to be fixed');
  const unchanged = await snapshotRules();
  check(unchanged.sequence === sequence, `a refused PUT changes nothing: ${JSON.stringify(unchanged)}`);
  await detail.screenshot({ path: path.join(shotDir, 'detail-path-rules-error.png'), fullPage: true });

  step = 'clear the path rules';
  await detail.fill('#rule-sequence', '');
  const clearPut = await saveRules();
  check(clearPut.status() === 204, `PUT of no rules answered ${clearPut.status()}`);
  for (let i = 0; i < 20 && rules.sequence !== null; i += 1) {
    await detail.waitForTimeout(250);
    rules = await snapshotRules();
  }
  check(rules.sequence === null, `the sequence is gone: ${JSON.stringify(rules)}`);
  await rebuiltWith(null);
  check(await detail.locator('#path-rules-error').isHidden(), 'the error is gone with the saved rules');
  check(await detail.inputValue('#rule-sequence') === '', 'the form shows no sequence');
  log('path rules set, refused and cleared through the form');
  fail();

  await detail.emulateMedia({ colorScheme: 'dark' });
  await detail.setViewportSize({ width: 390, height: 844 });
  await detail.waitForTimeout(300);
  await detail.screenshot({ path: path.join(shotDir, 'detail-dark-narrow.png'), fullPage: true });
  await detail.emulateMedia({ colorScheme: 'light' });
  await detail.setViewportSize({ width: 1360, height: 900 });
  fail();

  step = 'pause';
  await detail.click(`.detail button[data-action="pause"][data-ih="${ih}"]`);
  await detail.locator(`.detail[data-ih="${ih}"][data-state="paused"]`).waitFor({ timeout: 15_000 });
  step = 'resume';
  await detail.click(`.detail button[data-action="resume"][data-ih="${ih}"]`);
  await detail.locator(`.detail[data-ih="${ih}"]:not([data-state="paused"])`).waitFor({ timeout: 15_000 });
  const after = await detail.getAttribute('.detail', 'data-state');
  check(['seeding', 'checking', 'downloading'].includes(after), `state after resume: ${after}`);
  log(`paused and resumed (now ${after})`);
  fail();

  step = 'remove';
  await detail.click(`.detail button[data-action="remove"][data-ih="${ih}"]`);
  await detail.locator('#remove-dialog[open]').waitFor({ timeout: 5000 });
  const focused = await detail.evaluate(() => document.activeElement && document.activeElement.closest('dialog')?.id);
  check(focused === 'remove-dialog', `focus is in the confirmation dialog (got ${focused})`);
  if (deleteData) await detail.check('#remove-data');
  const removed = detail.waitForResponse((r) => r.url().includes(`/api/v1/torrents/${ih}`) && r.request().method() === 'DELETE');
  await detail.click('#remove-confirm');
  const del = await removed;
  check(del.status() === 204, `DELETE answered ${del.status()}`);
  check(del.url().includes(`delete_data=${deleteData}`), `DELETE asked delete_data=${deleteData}: ${del.url()}`);
  await detail.waitForURL((u) => !u.hash.includes('/torrent/'), { timeout: 10_000 });
  await detail.locator(`tr[data-ih="${ih}"]`).waitFor({ state: 'detached', timeout: 15_000 });
  // The first tab learns it from the live stream.
  await page.locator(`tr[data-ih="${ih}"]`).waitFor({ state: 'detached', timeout: 15_000 });
  log('removed');
  fail();

  step = 'add the same torrent again by its magnet link';
  await page.click('header button[data-action="open-add"]');
  await page.fill('#add-magnet', `magnet:?xt=urn:btih:${ih}`);
  if (peer) await page.fill('#add-peers', peer);
  const again = page.waitForResponse((r) => r.url().endsWith('/api/v1/torrents') && r.request().method() === 'POST');
  await page.click('#add-submit');
  const res2 = await again;
  const body2 = await res2.json().catch(() => ({}));
  check(res2.status() === 201 && body2.info_hash === ih, `magnet POST answered ${res2.status()}: ${JSON.stringify(body2)}`);
  // Metadata first, then the data: the list shows it seeding in the end.
  await page.locator(`tr[data-ih="${ih}"][data-state="seeding"]`).waitFor({ timeout: completeTimeout });
  log('magnet link downloaded');
  fail();
}

let code = 0;
try {
  await run();
  log('PASS');
} catch (e) {
  code = 1;
  console.error(`FAIL during "${step}": ${e.message}`);
  if (problems.length) console.error(problems.join('\n'));
  try {
    for (const [i, p] of context.pages().entries()) {
      await p.screenshot({ path: path.join(shotDir, `failure-tab${i + 1}.png`), fullPage: true });
    }
  } catch {
    // the browser is gone; the message above says why
  }
} finally {
  await close();
}
process.exit(code);
