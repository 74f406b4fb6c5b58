// Headless Debian Chromium for the browser tests, always with the flags that keep it from
// reaching outside hosts (this network forbids them) and a fresh profile.
// Environment: CHROMIUM (the browser, default /usr/bin/chromium).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * A persistent context in a fresh profile directory named after `prefix`; exits the process
 * with a FAIL line when the browser is missing or does not start. `close()` ends it and
 * removes the profile.
 */
export async function launchChromium(prefix, options = {}) {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) {
    console.error(`FAIL: no browser at ${executablePath} (install Debian's chromium: scripts/install-deps.sh)`);
    process.exit(1);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: FLAGS,
      viewport: { width: 1360, height: 900 },
      ...options,
    });
  } catch (e) {
    console.error(`FAIL: could not start ${executablePath}: ${e.message}`);
    fs.rmSync(profile, { recursive: true, force: true });
    process.exit(1);
  }
  const close = async () => {
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}
