// Drives airlock's web UI in Debian's chromium through playwright-core, as
// an approver would, in steps the Rust test (tests/web_ui.rs) orchestrates:
// it writes a line to our stdin when it has done its part (started psql,
// …) and reads one JSON line from our stdout per step we finish. A failed
// check throws: the script exits non-zero and the test fails with it.
//
// Environment: AIRLOCK_UI (the admin listener's base URL), ALICE_TOKEN (an
// approver in group dba, also an admin of the UI), AUDREY_TOKEN (an
// auditor), SCREENSHOTS (the folder for the page screenshots), PAGES_FILE
// (where the HTML of every page seen is saved, for the test to search for
// secrets). The identity provider's accounts (olivia, bot-9) are those of
// crates/airlock-oidc/tests/oidc-provider/server.mjs.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { readFileSync, writeFileSync } from 'node:fs';

const base = process.env.AIRLOCK_UI;
const shots = process.env.SCREENSHOTS;
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function next(expected) {
  const { value, done } = await lines.next();
  if (done) throw new Error(`stdin closed while waiting for "${expected}"`);
  const words = value.trim().split(' ');
  if (words[0] !== expected) throw new Error(`expected "${expected}", got "${value}"`);
  return words.slice(1);
}

function say(step, fields = {}) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + '\n');
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  // The tests run as root, where chromium's sandbox cannot start.
  args: ['--no-sandbox'],
});
const violations = [];
const seen = [];

async function keep(page) {
  seen.push(`<!-- ${page.url()} -->\n${await page.content()}`);
}

function watch(page) {
  // Only the UI's own pages count (the identity provider's login page is
  // not ours: its missing favicon is its business).
  const ours = () => page.url().startsWith(base);
  page.on('console', (message) => {
    if (message.type() === 'error' && ours()) violations.push(`${page.url()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => {
    if (ours()) violations.push(String(error));
  });
  page.on('response', (response) => {
    // Refusals the script provokes itself go through context.request (the
    // identity provider's own pages are not the UI's).
    if (response.status() >= 400 && response.url().startsWith(base)) {
      violations.push(`${response.status()} ${response.url()}`);
    }
  });
}

async function signedIn(token, viewport = { width: 1280, height: 860 }) {
  const context = await browser.newContext({ baseURL: base, viewport });
  const page = await context.newPage();
  watch(page);
  const response = await page.goto('/ui/signin');
  const policy = response.headers()['content-security-policy'] || '';
  check(policy.includes("script-src 'self'") && policy.includes("style-src 'self'") && !policy.includes('unsafe-inline'),
    `the sign-in page's CSP is not strict: "${policy}"`);
  return { context, page, policy, signIn: async (shot) => {
    await page.getByLabel('Token').fill(token);
    if (shot) await page.screenshot({ path: `${shots}/signin.png` });
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/ui/approvals');
  } };
}

async function awaitQueued() {
  // The row arrives through the event stream: no reload.
  const row = alice.page.locator('#queue tr[data-review]').first();
  const started = Date.now();
  await row.waitFor({ timeout: 5000 });
  const waited = Date.now() - started;
  return { id: await row.getAttribute('data-review'), waited };
}

const alice = await signedIn(process.env.ALICE_TOKEN);
await alice.signIn(true);
check(await alice.page.getByText('No review is waiting for you.').isVisible(), 'the queue is not empty at first');
const queuePolicy = (await alice.context.request.get('/ui/approvals')).headers()['content-security-policy'];
check(queuePolicy === alice.policy, 'the queue page has another CSP');
await alice.page.screenshot({ path: `${shots}/approvals-empty.png` });
say('ready', { csp: alice.policy });

// 1. A DELETE held for review appears at once; approved with TOTP.
const [code] = await next('issued-1');
const first = await awaitQueued();
await alice.page.screenshot({ path: `${shots}/approvals-queue.png` });
const rowText = await alice.page.locator('#queue').innerText();
check(rowText.includes('delete from items where id = 1'), `the statement is not shown: ${rowText}`);
check(rowText.includes('agent-7') && rowText.includes('pg-test') && rowText.includes('deletes-need-review'),
  `identity, connection or rule missing: ${rowText}`);
check(rowText.includes('Deletes on items wait for a DBA'), `the rule's description is missing: ${rowText}`);

// A POST without the CSRF token is refused, and the review stays pending.
const forged = await alice.context.request.post(`/ui/reviews/${first.id}/approve`, {
  form: { comment: 'forged', totp: code }, maxRedirects: 0,
});
check(forged.status() === 403, `a POST without the CSRF token got ${forged.status()}`);

// The auditor sees the review but gets no decision form.
const audrey = await signedIn(process.env.AUDREY_TOKEN);
await audrey.signIn(false);
await audrey.page.goto(`/ui/reviews/${first.id}`);
check(await audrey.page.getByRole('button', { name: 'Approve' }).count() === 0, 'the auditor can approve');
check(await audrey.page.getByText('you are in none of its approver groups').isVisible(), 'no explanation for the auditor');

await alice.page.getByRole('link', { name: first.id }).click();
await alice.page.waitForURL(`**/ui/reviews/${first.id}`);
await alice.page.getByLabel('Comment (optional)').fill('one row, fine');
await alice.page.getByLabel(/TOTP code/).fill(code);
await alice.page.screenshot({ path: `${shots}/review.png`, fullPage: true });
const firstSession = await alice.page.locator('dt:text-is("Session") + dd code').innerText();
await alice.page.getByRole('button', { name: 'Approve' }).click();
await alice.page.waitForURL('**/ui/approvals?done=approved*');
check(await alice.page.getByText(`${first.id}: approved`).isVisible(), 'no notice after approving');
say('approved-1', { review: first.id, waited_ms: first.waited });

// 2. Another DELETE, denied with a reason.
await next('issued-2');
const second = await awaitQueued();
await alice.page.getByRole('link', { name: second.id }).click();
await alice.page.getByLabel('Reason for denying').fill('not this one');
await alice.page.getByRole('button', { name: 'Deny' }).click();
await alice.page.waitForURL('**/ui/approvals?done=denied*');
say('denied-2', { review: second.id, waited_ms: second.waited });

// 3. A live session, ended with the kill switch.
await next('live');
await alice.page.getByRole('link', { name: 'Live sessions' }).click();
await alice.page.waitForURL('**/ui/sessions/live');
const live = alice.page.locator('tr[data-session]').first();
await live.waitFor({ timeout: 5000 });
check((await live.innerText()).includes('agent-7'), 'the live session is not listed');
const commandsSoFar = Number(await live.locator('[data-commands]').innerText());
check(commandsSoFar >= 1, `the live session shows ${commandsSoFar} commands`);
await keep(alice.page);
await alice.page.screenshot({ path: `${shots}/live-sessions.png` });
await live.getByLabel('Reason').fill('runaway agent');
await live.getByRole('button', { name: 'End session' }).click();
await alice.page.waitForURL('**/ui/sessions/live?done=ended*');
say('ended');

// 4. Sessions: search, the approved DELETE's timeline; the audit chain.
await alice.page.getByRole('link', { name: 'Sessions', exact: true }).click();
await alice.page.getByLabel('Identity').fill('agent-7');
await alice.page.getByRole('button', { name: 'Search' }).click();
await alice.page.waitForURL('**/ui/sessions?identity=agent-7*');
await alice.page.screenshot({ path: `${shots}/sessions.png` });
await alice.page.getByRole('link', { name: firstSession }).click();
await alice.page.waitForURL(`**/ui/sessions/${firstSession}`);
const timeline = await alice.page.locator('main').innerText();
check(timeline.includes('delete from items where id = 1') && timeline.includes('forward'),
  `the timeline lacks the approved DELETE: ${timeline}`);
await alice.page.screenshot({ path: `${shots}/session-timeline.png`, fullPage: true });
await keep(alice.page);
// The session as JSON lines, downloaded.
const [download] = await Promise.all([
  alice.page.waitForEvent('download'),
  alice.page.getByRole('link', { name: 'Export this session as JSON lines' }).click(),
]);
const exported = readFileSync(await download.path(), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
check(exported.every((event) => event.session_id === firstSession), 'the export holds another session');
const kinds = exported.map((event) => event.kind);
check(kinds[0] === 'session.start' && kinds.includes('command'),
  `the export's kinds: ${kinds.join(', ')}`);
check(exported.some((event) => event.kind === 'command' && JSON.stringify(event.data).includes('delete from items where id = 1')),
  'the export lacks the approved DELETE');
await alice.page.getByRole('link', { name: 'Audit' }).click();
await alice.page.waitForURL('**/ui/audit');
check(await alice.page.locator('[data-chain="ok"]').count() === 1, 'the audit chain does not verify');
await alice.page.screenshot({ path: `${shots}/audit.png` });

// 5. Policies: versions and the diff of two.
await alice.page.getByRole('link', { name: 'Policies' }).click();
await alice.page.waitForURL('**/ui/policies');
check(await alice.page.getByText('hold deletes for a DBA').isVisible(), 'the version comment is missing');
await alice.page.screenshot({ path: `${shots}/policies.png` });
await alice.page.getByRole('button', { name: 'Show the diff' }).click();
await alice.page.waitForURL('**/ui/policies/diff*');
check(await alice.page.locator('.diff .ins').count() > 0, 'the diff shows no added line');
await alice.page.screenshot({ path: `${shots}/policy-diff.png`, fullPage: true });

// 6. The queue on a phone, and sign-out.
await next('phone');
const phone = await signedIn(process.env.ALICE_TOKEN, { width: 390, height: 844 });
await phone.signIn(false);
await phone.page.locator('#queue tr[data-review]').first().waitFor({ timeout: 5000 });
await phone.page.screenshot({ path: `${shots}/approvals-phone.png`, fullPage: true });
say('phoned');

// 7. Sign-in through the identity provider: authorization code with PKCE.
await next('oidc');
const oidc = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 860 } });
const op = await oidc.newPage();
watch(op);
let callback;
op.on('request', (request) => {
  if (request.url().includes('/ui/oidc/callback')) callback = request.url();
});
await op.goto('/ui/signin');
await op.getByRole('link', { name: 'Sign in with corp' }).click();
await op.getByLabel('Account').fill('olivia');
await op.getByRole('button', { name: 'Continue' }).click();
await op.waitForURL('**/ui/approvals');
check((await op.locator('.who').innerText()).includes('olivia'), 'olivia is not signed in');
// The provider's answer is good once: the same callback again is refused.
const replayed = await oidc.request.get(callback, { maxRedirects: 0 });
// An account of the same provider that is an agent does not sign in.
const botContext = await browser.newContext({ baseURL: base });
const bot = await botContext.newPage();
await bot.goto('/ui/signin');
await bot.getByRole('link', { name: 'Sign in with corp' }).click();
await bot.getByLabel('Account').fill('bot-9');
const [refusal] = await Promise.all([
  bot.waitForResponse((response) => response.url().includes('/ui/oidc/callback')),
  bot.getByRole('button', { name: 'Continue' }).click(),
]);
await bot.getByText('only people').waitFor();
await botContext.close();
// Login CSRF: a callback begun in one browser (an attacker's) and sent
// to another (the victim's) signs nobody in.
const attacker = await browser.newContext({ baseURL: base });
const attackerPage = await attacker.newPage();
await attackerPage.goto('/ui/signin');
await attackerPage.getByRole('link', { name: 'Sign in with corp' }).click();
await attackerPage.getByLabel('Account').waitFor();
// The provider's steps by hand (sharing the context's cookies), so the
// callback URL is kept rather than followed.
const loginForm = new URL(await attackerPage.locator('form').getAttribute('action'), attackerPage.url()).href;
const afterLogin = await attacker.request.post(loginForm, { form: { account: 'olivia' }, maxRedirects: 0 });
const resume = new URL(afterLogin.headers()['location'], loginForm).href;
const afterResume = await attacker.request.get(resume, { maxRedirects: 0 });
const stolen = new URL(afterResume.headers()['location'], resume).href;
check(stolen.includes('/ui/oidc/callback?code='), `the attacker got no callback URL: ${stolen}`);
await attacker.close();
const victim = await browser.newContext({ baseURL: base });
const planted = await victim.request.get(stolen, { maxRedirects: 0 });
const victimQueue = await victim.request.get('/ui/approvals', { maxRedirects: 0 });
await victim.close();
say('oidc', {
  replayed_callback: replayed.status(),
  agent_refused: refusal.status(),
  other_browser: planted.status(),
  other_browser_signed_in: victimQueue.status() === 200,
});

// 8. The admin pages. The explain playground: the live policy's decision.
await op.getByRole('link', { name: 'Policies' }).click();
await op.getByRole('link', { name: 'Explain a decision' }).click();
await op.waitForURL('**/ui/policies/explain');
await op.getByLabel('Identity').fill('agent-7');
await op.getByLabel('Groups').fill('agents');
await op.getByLabel(/Statement or request/).fill('delete from items where id = 4');
await op.getByRole('button', { name: 'Explain' }).click();
await op.locator('#decision').waitFor();
check((await op.locator('#decision').innerText()).includes('review'), 'the playground does not hold the DELETE');
check(await op.locator('[data-matched-rule="deletes-need-review"]').count() === 1, 'the matching rule is not marked');
await op.screenshot({ path: `${shots}/explain.png`, fullPage: true });
await keep(op);

// Tokens: one issued, shown once, then only its id.
await op.getByRole('link', { name: 'Tokens' }).click();
await op.waitForURL('**/ui/tokens');
await op.getByText('Issue a token').click();
await op.getByLabel('Identity').fill('report-bot');
await op.getByLabel('pg-test', { exact: true }).check();
await op.getByLabel('Lifetime').fill('15m');
await op.getByRole('button', { name: 'Issue', exact: true }).click();
const issued = await op.getByLabel('The new token').inputValue();
check(issued.startsWith('alt_'), `no token shown: ${issued}`);
say('token', { token: issued });
await op.goto('/ui/tokens');
check(!(await op.content()).includes(issued), 'the token is shown twice');
await op.screenshot({ path: `${shots}/tokens.png`, fullPage: true });
await keep(op);
await op.getByRole('link', { name: 'Access' }).click();
await op.waitForURL('**/ui/access');
await op.screenshot({ path: `${shots}/access.png` });
await keep(op);
await op.getByRole('link', { name: 'Connections' }).click();
await op.waitForURL('**/ui/connections');
check(await op.locator('[data-credential="app"]').count() === 1, 'the credential is not listed');
await op.screenshot({ path: `${shots}/connections.png`, fullPage: true });
await keep(op);
for (const path of ['/ui/sessions/live', '/ui/sessions', '/ui/audit', '/ui/approvals']) {
  await op.goto(path);
  await keep(op);
}

// Rollback to v1: a new version, live.
await op.getByRole('link', { name: 'Policies' }).click();
await op.waitForURL('**/ui/policies');
await op.getByLabel('Why').fill('the review rule holds the nightly job');
await op.getByRole('button', { name: 'Roll back to v1' }).click();
await op.waitForURL('**/ui/policies?done=rolled_back*');
check(await op.getByText('v3: live (rolled back)').isVisible(), 'no notice after the rollback');
await op.screenshot({ path: `${shots}/policy-rollback.png`, fullPage: true });
await keep(op);
await alice.page.getByRole('button', { name: 'Sign out' }).click();
await alice.page.waitForURL('**/ui/signin');
const after = await alice.context.request.get('/ui/approvals', { maxRedirects: 0 });
check(after.status() === 303, `signed out, the queue answered ${after.status()}`);

writeFileSync(process.env.PAGES_FILE, seen.join('\n'));
check(violations.length === 0, `the browser reported errors (CSP violations?): ${violations.join(' | ')}`);
await browser.close();
say('done');
// stdin stays open on the test's side: leave without waiting for it.
process.exit(0);
