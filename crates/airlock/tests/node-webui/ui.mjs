// Drives airlock's web UI in Debian's chromium through playwright-core, as
// an approver would, in steps the Rust test (tests/web_ui.rs) orchestrates:
// it writes a line to our stdin when it has done its part (started psql,
// …) and reads one JSON line from our stdout per step we finish. A failed
// check throws: the script exits non-zero and the test fails with it.
//
// Environment: AIRLOCK_UI (the admin listener's base URL), ALICE_TOKEN (an
// approver in group dba, also an admin of the UI), AUDREY_TOKEN (an
// auditor), SCREENSHOTS (the folder for the page screenshots).
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

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

async function signedIn(token, viewport = { width: 1280, height: 860 }) {
  const context = await browser.newContext({ baseURL: base, viewport });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') violations.push(message.text());
  });
  page.on('pageerror', (error) => violations.push(String(error)));
  page.on('response', (response) => {
    // Refusals the script provokes itself go through context.request.
    if (response.status() >= 400) violations.push(`${response.status()} ${response.url()}`);
  });
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
await alice.page.getByRole('button', { name: 'Sign out' }).click();
await alice.page.waitForURL('**/ui/signin');
const after = await alice.context.request.get('/ui/approvals', { maxRedirects: 0 });
check(after.status() === 303, `signed out, the queue answered ${after.status()}`);

check(violations.length === 0, `the browser reported errors (CSP violations?): ${violations.join(' | ')}`);
await browser.close();
say('done');
// stdin stays open on the test's side: leave without waiting for it.
process.exit(0);
