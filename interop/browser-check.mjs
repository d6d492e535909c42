// The demo in a real browser: headless Chromium (the system's, never a download) driven by
// playwright-core. tests/browser.rs serves the demo on one loopback origin and its page
// (`/app`, DEMO_APP_ADDR) on another, runs this script and asserts on the one JSON line it
// prints last. The script only drives and reports.
//
//   node browser-check.mjs --demo http://127.0.0.1:P1 --app http://127.0.0.1:P2 \
//     --other http://127.0.0.1:P3 --token JWT --expired JWT \
//     --secret S --issuer I --audience A [--chromium /usr/bin/chromium]
//
// --app is an origin the demo's CORS allows; --other serves the same page from an origin
// it does not (a control: there the fetches must fail). --token is a valid token for /me,
// --expired an expired one; with --secret, --issuer and --audience (the demo's HS256 key
// and claims) the script mints a token that expires two seconds after its socket opens,
// at that moment: a browser start can take longer than any lifetime minted beforehand.

import { createHmac } from 'node:crypto';
import { chromium } from 'playwright-core';

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) {
      throw new Error(`bad arguments: ${argv.join(' ')}`);
    }
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const need of ['demo', 'app', 'other', 'token', 'expired', 'secret', 'issuer', 'audience']) {
    if (!out[need]) throw new Error(`--${need} is required`);
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const demo = args.demo.replace(/\/$/, '');
const app = args.app.replace(/\/$/, '');
const other = args.other.replace(/\/$/, '');
const executablePath = args.chromium || '/usr/bin/chromium';

// A loaded CI machine can take tens of seconds to start a browser.
const LAUNCH_TIMEOUT = 120_000;
const STEP_TIMEOUT = 60_000;

const step = (name) => process.stderr.write(`browser-check: ${name}\n`);

/// The request chain that ended in `response`, first request first: url, status, Location.
async function chain(response) {
  const hops = [];
  for (let r = response.request(); r; r = r.redirectedFrom()) {
    const res = await r.response();
    hops.unshift({
      url: r.url(),
      method: r.method(),
      status: res ? res.status() : null,
      location: res ? (res.headers().location ?? null) : null,
    });
  }
  return hops;
}

const bodyText = (page) => page.evaluate(() => document.body.innerText);

const b64url = (data) => Buffer.from(data).toString('base64url');

/// An HS256 JWT for the demo whose `exp` is `exp` (seconds since the epoch).
function mint(exp) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: args.issuer, aud: args.audience, sub: 'alice', iat: now, exp };
  const input = `${header}.${b64url(JSON.stringify(claims))}`;
  const mac = createHmac('sha256', args.secret).update(input).digest('base64url');
  return `${input}.${mac}`;
}

/// In the page: opens `url` with `protocols`, sends `send` once open, closes (1000) after
/// the echo when `closeAfterEcho`, and reports what the page saw (times in ms since the
/// epoch) once the socket closes, or after `waitMs`.
function socketInPage([url, protocols, send, closeAfterEcho, waitMs]) {
  return new Promise((resolve) => {
    const r = { opened: false, protocol: null, echoed: null, code: null, reason: null,
      clean: null, error: false, opened_at: null, closed_at: null, timeout: false };
    let ws;
    try {
      ws = new WebSocket(url, protocols);
    } catch (e) {
      r.exception = String(e);
      resolve(r);
      return;
    }
    const timer = setTimeout(() => { r.timeout = true; ws.close(); resolve(r); }, waitMs);
    ws.onopen = () => {
      r.opened = true;
      r.protocol = ws.protocol;
      r.opened_at = Date.now();
      if (send !== null) ws.send(send);
    };
    ws.onmessage = (e) => {
      r.echoed = e.data;
      if (closeAfterEcho) ws.close(1000, 'done');
    };
    ws.onerror = () => { r.error = true; };
    ws.onclose = (e) => {
      r.code = e.code;
      r.reason = e.reason;
      r.clean = e.wasClean;
      r.closed_at = Date.now();
      clearTimeout(timer);
      resolve(r);
    };
  });
}

/// WebSockets to the demo's `/ws` from the page's origin (`page` shows `${app}/app`): the
/// token as a subprotocol, refusals read as close codes, a token that expires while open.
async function websockets(page) {
  const url = `${demo.replace(/^http/, 'ws')}/ws`;
  const open = (protocols, send, closeAfterEcho, waitMs = 15_000) =>
    page.evaluate(socketInPage, [url, protocols, send, closeAfterEcho, waitMs]);
  const out = {
    page_origin: await page.evaluate(() => window.location.origin),
    valid: await open(['bearer', args.token], 'hello', true),
    valid_chat: await open(['bearer', args.token, 'chat'], 'chat line', true),
    no_token: await open([], null, false),
    expired: await open(['bearer', args.expired], null, false),
  };
  // Minted as the socket opens: exp is two seconds (and less than one more) away.
  const exp = Math.ceil(Date.now() / 1000) + 2;
  out.expiring = await open(['bearer', mint(exp)], 'before expiry', false);
  out.expiring.exp = exp;
  return out;
}

async function run(browser) {
  const out = { chromium: browser.version() };
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  const probe = (path, headers = {}) =>
    page.evaluate(([p, h]) => window.probe(p, h), [path, headers]);

  // 1. Cross-origin fetches from the page's origin, which the demo's CORS allows.
  step('cross-origin fetches');
  await page.goto(`${app}/app`);
  out.app_title = await page.title();
  out.cross_origin = {
    me_no_token: await probe('/me'),
    me_valid: await probe('/me', { authorization: `Bearer ${args.token}` }),
    maybe_anonymous: await probe('/maybe'),
    maybe_valid: await probe('/maybe', { authorization: `Bearer ${args.token}` }),
    maybe_bad_token: await probe('/maybe', { authorization: 'Bearer not-a-token' }),
    session_no_cookie: await probe('/session'),
  };
  // The page's own table (what a person opening /app sees), filled by the same probes.
  out.page_checks = await page.evaluate(() => window.checks);

  step('websockets from the page origin');
  out.websocket = await websockets(page);

  // The control: the same page from an origin the demo does not allow.
  step('the control origin');
  await page.goto(`${other}/app`);
  out.other_origin = { me_no_token: await probe('/me') };

  // 2. A page navigation to a session route without a cookie.
  step('navigation without a session');
  const nav = await page.goto(`${demo}/session`);
  out.navigation = {
    hops: await chain(nav),
    status: nav.status(),
    url: page.url(),
    title: await page.title(),
    heading: await page.textContent('h1'),
  };

  // 3. With the session cookie, set for the demo's origin through the context.
  await context.addCookies([{ name: 'demo_session', value: 's-valid', url: demo }]);

  step('navigation with a session');
  const ok = await page.goto(`${demo}/session`);
  out.navigation_with_cookie = {
    hops: await chain(ok),
    status: ok.status(),
    url: page.url(),
    body: await bodyText(page),
  };

  // A same-origin POST: fetch from the demo's own login page.
  step('same-origin POST');
  await page.goto(`${demo}/login`);
  const sent = page.waitForRequest((r) => r.url() === `${demo}/session` && r.method() === 'POST');
  out.same_origin_post = await page.evaluate(async () => {
    const r = await fetch('/session', { method: 'POST' });
    return { status: r.status, body: await r.text() };
  });
  const sameHeaders = await (await sent).allHeaders();
  out.same_origin_post.origin_sent = sameHeaders.origin ?? null;
  out.same_origin_post.sec_fetch_site = sameHeaders['sec-fetch-site'] ?? null;

  // A form on the page's origin that posts to the demo: a forged cross-site request. The
  // page is 127.0.0.1 on another port, the same site, so the cookie goes along.
  step('forged form POST from the other origin');
  await page.goto(`${app}/app`);
  const [forged] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${demo}/session` && r.request().method() === 'POST'),
    page.click('#forged button'),
  ]);
  await page.waitForURL(`${demo}/session`);
  await page.waitForLoadState();
  const forgedHeaders = await forged.request().allHeaders();
  out.cross_site_post = {
    status: forged.status(),
    content_type: forged.headers()['content-type'] ?? null,
    origin_sent: forgedHeaders.origin ?? null,
    sec_fetch_site: forgedHeaders['sec-fetch-site'] ?? null,
    sec_fetch_mode: forgedHeaders['sec-fetch-mode'] ?? null,
    cookie_sent: /(^|;\s*)demo_session=/.test(forgedHeaders.cookie ?? ''),
    url: page.url(),
    text: await bodyText(page),
  };

  await context.close();
  out.login_return_to = await loginReturnTo(browser);
  return out;
}

/// `return_to` values the login page must not follow off the demo's origin: a tab, line
/// feed or carriage return after the first slash, which the URL parser drops (`/\t/host`
/// becomes `//host`); `//host`, `/\host` and an absolute URL; then two that stay here
/// (`/.//host` is a path of the demo, and a page with a query).
const RETURN_TO = [
  '%2F%09%2Fevil.example%2F',
  '%2F%0A%2Fevil.example%2F',
  '%2F%0D%2Fevil.example%2F',
  '%2F%09%5C%2Fevil.example%2F',
  '%2F%2Fevil.example%2F',
  '%2F%5Cevil.example%2F',
  'https%3A%2F%2Fevil.example%2F',
  '%2F.%2F%2Fevil.example%2F',
  '%2Fsession%3Ftab%3D2',
];

/// The demo's login page with each `return_to`, then "Sign in": where the page sends the
/// browser. Requests to any other origin are aborted before they leave the browser (and
/// recorded), so the page can never reach another host, resolvable or not.
async function loginReturnTo(browser) {
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_TIMEOUT);
  const offsite = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === demo) return route.continue();
    offsite.push(url);
    return route.abort('blockedbyclient');
  });
  const results = [];
  for (const returnTo of RETURN_TO) {
    step(`login page, return_to=${returnTo}`);
    // A page of its own: an aborted navigation of the previous case (its error page) can
    // never interrupt this one's.
    const page = await context.newPage();
    await page.goto(`${demo}/login?return_to=${returnTo}`);
    const shown = await page.textContent('#return-to');
    const main = page.mainFrame();
    const next = page.waitForRequest((r) => r.isNavigationRequest() && r.frame() === main);
    await page.click('#sign-in');
    const request = await next;
    const response = await request.response().catch(() => null);
    await page.waitForLoadState().catch(() => {});
    results.push({
      return_to: returnTo,
      shown,
      navigated: request.url(),
      status: response ? response.status() : null,
      failure: request.failure()?.errorText ?? null,
      url: page.url(),
    });
    await page.close();
  }
  await context.close();
  return { results, offsite };
}

let browser;
try {
  step(`launching ${executablePath}`);
  browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    timeout: LAUNCH_TIMEOUT,
  });
  const out = await run(browser);
  console.log(JSON.stringify(out));
} catch (e) {
  console.error(e && e.stack ? e.stack : e);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
}
