#!/usr/bin/env node
// Browser test of the web UI's file tree and play links, in headless Debian Chromium driven by
// playwright-core.
//
//   node files_test.mjs BASE_URL INFO_HASH PLAY_INDEX PLAY_FILE SCREENSHOT_DIR
//
// Opens the torrent's page (typing UI_TEST_TOKEN into the token prompt), then: the folders of
// the file tree fold and unfold; unchecking a file skips it and checking it wants it again, a
// priority chosen in its select is set, a folder's checkbox skips everything in it, the order
// toggles set sequential mode — each read back from the API, not from the page; the play link
// of file PLAY_INDEX carries a play-link signature (never the token) and answers a range
// request with 206 and the whole file with 200, byte for byte PLAY_FILE, from a fetch that
// sends no Authorization header (as a <video> would). Fails on any console or page error.

import fs from 'node:fs';
import path from 'node:path';
import { launchChromium } from './browser.mjs';

const [baseUrl, ih, playIndex, playFile, shotDir] = process.argv.slice(2);
if (!baseUrl || !ih || !playIndex || !playFile || !shotDir) {
  console.error('usage: node files_test.mjs BASE_URL INFO_HASH PLAY_INDEX PLAY_FILE SCREENSHOT_DIR');
  process.exit(2);
}
const token = process.env.UI_TEST_TOKEN || '';
fs.mkdirSync(shotDir, { recursive: true });

const problems = [];
let step = 'start';
const log = (m) => console.log(`[files_test] ${m}`);
function check(cond, message) {
  if (!cond) throw new Error(message);
}

/** The daemon's API from node (not through the page): what the daemon really has. */
async function apiGet(p) {
  const r = await fetch(new URL(`/api/v1${p}`, baseUrl), { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  check(r.ok, `GET ${p} answered ${r.status}`);
  return r.json();
}

/** Polls the API until `cond(value)` holds (the page's PUT and the daemon are a moment apart). */
async function until(what, read, cond) {
  let last;
  for (let i = 0; i < 100; i += 1) {
    last = await read();
    if (cond(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: the API still says ${JSON.stringify(last)}`);
}

const priorities = async () => (await apiGet(`/torrents/${ih}/files`)).map((f) => f.priority);

const { context, close } = await launchChromium('bts-files-test-');

async function run() {
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (msg) => {
    // The 401 that makes the page ask for the token is expected when one is configured.
    if (token && /status of 401/.test(msg.text())) return;
    if (msg.type() === 'error') problems.push(`console error during "${step}": ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error during "${step}": ${err.message}`));
  const fail = () => check(!problems.length, problems.join('\n'));

  step = 'open the torrent page';
  await page.goto(new URL(`#/torrent/${ih}`, baseUrl).href, { waitUntil: 'load' });
  if (token) {
    await page.locator('#token-dialog').waitFor({ state: 'visible', timeout: 10_000 });
    await page.fill('#token-input', token);
    await page.click('#token-dialog button[type=submit]');
  }
  const files = await apiGet(`/torrents/${ih}/files`);
  await page.locator('li.file').nth(files.length - 1).waitFor({ timeout: 15_000 });
  const rows = await page.$$eval('li.file', (els) => els.map((e) => Number(e.dataset.file)).sort((a, b) => a - b));
  check(JSON.stringify(rows) === JSON.stringify(files.map((_, i) => i)), `one row per file: ${rows}`);
  await page.screenshot({ path: path.join(shotDir, 'files.png'), fullPage: true });
  fail();

  step = 'folders fold';
  const nested = files.findIndex((f) => f.path.includes('/'));
  check(nested >= 0, 'the torrent has a file in a folder');
  const dir = files[nested].path.split('/')[0];
  const folder = page.locator('li.folder > details').filter({ has: page.locator('summary .folder-name', { hasText: `${dir}/` }) }).first();
  await folder.locator(':scope > summary .folder-name').click();
  await page.locator(`li.file[data-file="${nested}"]`).waitFor({ state: 'hidden', timeout: 5000 });
  await folder.locator(':scope > summary .folder-name').click();
  await page.locator(`li.file[data-file="${nested}"]`).waitFor({ state: 'visible', timeout: 5000 });

  step = 'a checkbox skips and wants a file';
  const want = (i) => page.locator(`li.file[data-file="${i}"] input[data-want]`);
  await want(0).uncheck();
  await until('file 0 skipped', priorities, (p) => p[0] === 'skip');
  await page.locator('li.file[data-file="0"][data-priority="skip"]').waitFor({ timeout: 5000 });
  await want(0).check();
  await until('file 0 wanted again', priorities, (p) => p[0] === 'normal');

  step = 'a priority from the select';
  await page.locator('li.file[data-file="0"][data-priority="normal"]').waitFor({ timeout: 5000 });
  await page.locator('li.file[data-file="0"] select[data-prio]').selectOption('high');
  await until('file 0 high', priorities, (p) => p[0] === 'high');

  step = "a folder's checkbox";
  const inDir = files.map((f, i) => [f, i]).filter(([f]) => f.path.startsWith(`${dir}/`)).map(([, i]) => i);
  await folder.locator(':scope > summary input[data-want-dir]').uncheck();
  await until(`everything in ${dir}/ skipped`, priorities, (p) => inDir.every((i) => p[i] === 'skip'));
  await folder.locator(':scope > summary input[data-want-dir]').check();
  await until(`everything in ${dir}/ wanted`, priorities, (p) => inDir.every((i) => p[i] === 'normal'));

  step = 'the order toggles';
  await page.locator('input[data-order="sequential"]').check();
  await until('sequential', () => apiGet(`/torrents/${ih}`), (t) => t.sequential === true);
  await page.locator('input[data-order="first_last_piece"]').check();
  await until('first/last piece', () => apiGet(`/torrents/${ih}`), (t) => t.first_last_piece === true);
  fail();

  step = 'the play link';
  const link = page.locator(`li.file[data-file="${playIndex}"] a.play`);
  // The signature arrives a moment after the page.
  await page.locator(`li.file[data-file="${playIndex}"] a.play[href*="sig="]`).waitFor({ timeout: 10_000 });
  const href = await link.getAttribute('href');
  check(!token || !href.includes(token), `the play link carries the token: ${href}`);
  const expected = fs.readFileSync(playFile);
  const got = await page.evaluate(async (url) => {
    // No Authorization header: as a <video> element or a new tab asks.
    const part = await fetch(url, { headers: { Range: 'bytes=100-4195' } });
    const whole = await fetch(url);
    return {
      partStatus: part.status,
      range: part.headers.get('content-range'),
      part: [...new Uint8Array(await part.arrayBuffer())],
      wholeStatus: whole.status,
      whole: [...new Uint8Array(await whole.arrayBuffer())],
    };
  }, href);
  check(got.partStatus === 206, `a range of the play link answered ${got.partStatus}`);
  check(got.range === `bytes 100-4195/${expected.length}`, `Content-Range ${got.range}`);
  check(Buffer.from(got.part).equals(expected.subarray(100, 4196)), 'the range differs from the file');
  check(got.wholeStatus === 200, `the play link answered ${got.wholeStatus}`);
  check(Buffer.from(got.whole).equals(expected), 'the streamed file differs from the file');
  log(`play link ${href.replace(/sig=.*/, 'sig=…')}: 206 and 200, ${expected.length} bytes as on disk`);
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
    await context.pages()[0].screenshot({ path: path.join(shotDir, 'files-failure.png'), fullPage: true });
  } catch {
    // the browser is gone; the message above says why
  }
} finally {
  await close();
}
process.exit(code);
