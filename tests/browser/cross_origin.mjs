// Another origin's page against the inspector, in a real browser (Debian's
// chromium, driven by playwright-core):
//
//   node tests/browser/cross_origin.mjs INSPECTOR_URL ENTRY_ID ATTACKER_PORT
//
// INSPECTOR_URL is the address expose printed, with its token.  A page
// served as http://127.0.0.1:ATTACKER_PORT/ (a loopback origin, so that the
// browser's own private-network rules do not stand in for the inspector's)
// tries what a hostile site would: a form post and a no-cors fetch that
// replay entry ENTRY_ID, a fetch that needs a preflight, a cross-origin
// read, and framing the inspector (even with its token).  A page on a
// rebinding name (rebind.test, mapped to 127.0.0.1) tries to read with the
// token.  Prints one JSON line of what each attempt got, then
// "cross_origin.mjs: ok"; the caller checks that the app saw no replay.
// Exits 1 if an attempt got through, 2 when chromium or playwright-core
// is missing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT_MS, TOTAL_TIMEOUT_MS, loadChromium } from './chromium.mjs';

const REBIND_NAME = 'rebind.test';
const ARGS = [...CHROMIUM_ARGS, `--host-resolver-rules=MAP ${REBIND_NAME} 127.0.0.1`];

function fail(message, code = 1) {
  console.error(`cross_origin.mjs: FAILED: ${message}`);
  process.exit(code);
}

const [inspectorUrl, entryId, attackerPort] = process.argv.slice(2);
if (!inspectorUrl || !entryId || !attackerPort)
  fail('usage: node tests/browser/cross_origin.mjs INSPECTOR_URL ENTRY_ID ATTACKER_PORT', 64);
const chromium = await loadChromium(fail);

const ins = new URL(inspectorUrl);
const base = `${ins.protocol}//${ins.host}`;
const attacker = `http://127.0.0.1:${attackerPort}`;
const ATTACK_PAGE = `<!doctype html><title>a hostile page</title>
<iframe name="sink" id="sink"></iframe>
<form id="csrf" method="POST" enctype="text/plain" target="sink"
  action="${base}/api/requests/${entryId}/replay"><input name='{"path":"/pwned-form?a' value='b"}'></form>
<iframe id="framed" src="${inspectorUrl}"></iframe>`;

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'expose-cross-origin-chromium-'));
const watchdog = setTimeout(() => fail(`the whole test took over ${TOTAL_TIMEOUT_MS} ms`), TOTAL_TIMEOUT_MS);
watchdog.unref();
let context;
let step = 'starting';
try {
  step = `launching ${CHROMIUM}`;
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: ARGS, timeout: STEP_TIMEOUT_MS,
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = context.pages()[0] || await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(m.text()));
  await context.route(`${attacker}/**`, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: ATTACK_PAGE }));

  step = `opening the hostile page at ${attacker}/`;
  await page.goto(`${attacker}/`, { waitUntil: 'load' });

  step = 'the attacks from the page';
  const got = await page.evaluate(async ({ base, entryId }) => {
    const out = {};
    const replay = `${base}/api/requests/${entryId}/replay`;
    try {   // a "simple" request: no preflight, the answer unreadable
      await fetch(replay, { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' },
                            body: JSON.stringify({ path: '/pwned-fetch' }) });
      out.noCorsPost = 'sent';
    } catch (e) { out.noCorsPost = 'blocked: ' + e.message; }
    try {   // with a token header (a guess): needs a preflight
      const r = await fetch(replay, { method: 'POST', headers: { 'X-Expose-Token': 'guess',
        'Content-Type': 'application/json' }, body: JSON.stringify({ path: '/pwned-preflight' }) });
      out.preflightPost = 'status ' + r.status;
    } catch (e) { out.preflightPost = 'blocked: ' + e.message; }
    try {   // reading the captured requests
      const r = await fetch(`${base}/api/requests`);
      out.read = 'read ' + r.status + ' ' + (await r.text()).slice(0, 200);
    } catch (e) { out.read = 'blocked: ' + e.message; }
    await new Promise((resolve) => {
      document.getElementById('sink').addEventListener('load', resolve, { once: true });
      document.getElementById('csrf').submit();
    });
    out.formPost = 'submitted';
    return out;
  }, { base, entryId });

  step = 'framing the inspector';
  const framed = page.frames().find((f) => f !== page.mainFrame() && f.name() !== 'sink');
  got.framedUrl = framed ? framed.url() : '(no frame)';
  // Chromium shows its error page in a frame it refused (X-Frame-Options,
  // frame-ancestors), and may say why on the console.
  got.frameRefused = got.framedUrl.startsWith('chrome-error:') ||
    consoleLines.some((l) => /Refused to (display|frame)/.test(l));

  step = `reading through a rebinding name (${REBIND_NAME})`;
  const rebound = await page.goto(`http://${REBIND_NAME}:${ins.port}/api/requests${ins.search}`);
  got.rebound = rebound ? rebound.status() : 'no answer';
  console.log(JSON.stringify(got));

  const leaks = [];
  if (!got.read.startsWith('blocked')) leaks.push(`a cross-origin read got through: ${got.read}`);
  if (!got.preflightPost.startsWith('blocked')) leaks.push(`a preflighted POST got an answer: ${got.preflightPost}`);
  if (!got.frameRefused) leaks.push(`the inspector was framed (${got.framedUrl})`);
  if (got.rebound !== 403) leaks.push(`a rebinding name got ${got.rebound}`);
  if (leaks.length) throw new Error(leaks.join('; '));
  await context.close();
  context = null;
  console.log('cross_origin.mjs: ok');
} catch (e) {
  console.error(`cross_origin.mjs: FAILED: ${step}: ${e.message.split('\n')[0]}`);
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
