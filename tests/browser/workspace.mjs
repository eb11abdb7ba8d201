// The coordinator workspace in Chromium, task by task, as coordinators use
// it: a supervisor signs in and issues a code shown as a QR code; a phone
// enrolls with it and syncs; the coverage view counts it without a reload
// and keeps its filter; the overview shows what arrived; a verifier
// confirms one report and marks another as needing corroboration, and a
// second observer's matching report corroborates it; an analyst
// is refused revocation (403) and a form without its CSRF token is
// refused; an admin revokes after a confirmation naming the observer and
// reads every action in the audit log; a coordinator of one region sees
// its region only and sets up a second factor. Each page is checked by axe-core
// (no serious or critical violation) and photographed at a laptop's and a
// phone's width.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = env('OBSERVER_URL');
const password = env('OBSERVER_PASSWORD');
const shots = env('OBSERVER_SHOTS');
const phoneAt = (dir) => (...args) =>
  execFileSync(env('OBSERVER_CLI'), ['--data', dir, ...args], { encoding: 'utf8' });
const phone = phoneAt(env('OBSERVER_PHONE'));
const phone2 = phoneAt(`${env('OBSERVER_PHONE')}-2`);
const server = (...args) =>
  execFileSync(env('OBSERVER_SERVER_CLI'), ['--data', env('OBSERVER_SERVER_DATA'), ...args], {
    encoding: 'utf8',
  });

function check(ok, what) {
  if (!ok) throw new Error(`FAILED: ${what}`);
  console.log(`ok: ${what}`);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
  ],
});

// The pages forbid every script (Content-Security-Policy: default-src 'none');
// axe-core is injected into them, so the contexts bypass that policy.
const sizes = { laptop: { width: 1366, height: 900 }, phone: { width: 390, height: 844 } };

/** axe-core on the page as it is: no serious or critical violation. */
async function accessible(page, name) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () => await window.axe.run(document));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) console.error(`${name}: ${v.id} (${v.impact}): ${v.help}`, v.nodes.map((n) => n.target));
  check(bad.length === 0, `${name}: axe-core finds no serious or critical violation`);
}

/** Both widths' screenshots and the accessibility check of the current page. */
async function look(page, name) {
  for (const [label, size] of Object.entries(sizes)) {
    await page.setViewportSize(size);
    await page.screenshot({ path: `${shots}/${name}-${label}.png`, fullPage: true });
  }
  await page.setViewportSize(sizes.laptop);
  await accessible(page, name);
}

async function signIn(name) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true, viewport: sizes.laptop });
  const page = await context.newPage();
  await page.goto(`${url}/`);
  check(page.url() === `${url}/login`, `${name}: without a session, / leads to the sign-in page`);
  await page.fill('#name', name);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(`${url}/`), page.click('button[type=submit]')]);
  check((await page.textContent('header')).includes(name), `${name} is signed in`);
  return { context, page };
}

// The sign-in page, and a wrong password.
{
  const context = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${url}/login`);
  await look(page, 'login');
  await page.fill('#name', 'saule');
  await page.fill('#password', 'not the password');
  await page.click('button[type=submit]');
  const alert = await page.textContent('[role=alert]');
  check(alert.includes('wrong'), `a wrong password is refused (${alert})`);
  await context.close();
}

// A supervisor issues a code, shown as a QR code.
const sup = await signIn('saule');
await sup.page.click('text=Enrollment codes');
await look(sup.page, 'codes');
await sup.page.fill('#stations', 'KZ-ALA-0042');
await sup.page.fill('#observer', 'Ерлан <b>Н.</b>');
await sup.page.click('main button[type=submit]');
const qr = sup.page.locator('img[alt^="QR code"]');
check((await qr.count()) === 1, 'the code is shown as a QR code');
const box = await qr.boundingBox();
check(box.width >= 300, `the QR code is large enough to scan (${box.width}px)`);
const code = (await sup.page.textContent('#code-text')).trim();
check(code.startsWith('OBS1:'), 'the code is shown as text too');
check((await sup.page.innerHTML('main')).includes('&lt;b&gt;'), "the observer's name is shown as text, not markup");
await look(sup.page, 'code-issued');

// The coverage view, filtered to one region, is open while a phone
// enrolls with the code and syncs: it counts the station without a reload
// and keeps the filter.
const watch = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true, viewport: sizes.laptop });
await watch.addCookies(await sup.context.cookies());
const cov = await watch.newPage();
await cov.goto(`${url}/coverage`);
check((await cov.locator('#coverage-map circle').count()) === 2, 'the coverage map draws both regions from the registry\'s coordinates');
await look(cov, 'coverage-map');
await cov.selectOption('#f-region', 'Almaty');
await Promise.all([cov.waitForURL(/region=Almaty/), cov.click('main form.filters button')]);
check((await cov.textContent('[data-phase=opening]')).trim() === '0 / 2', 'coverage: no Almaty station has reported the opening');
await cov.evaluate(() => { window.notReloaded = true; });
phone('init');
phone('enroll', code);
phone('record', '--station', 'KZ-ALA-0042', '--form', 'opening', '--kind', 'checklist', '--payload', '{"opened_on_time": true}');
phone('record', '--station', 'KZ-ALA-0042', '--form', 'incident', '--kind', 'incident', '--payload', '{"type": "ballot_stuffing"}');
phone('sync');
const device = JSON.parse(phone('status', '--json')).device;
await cov.waitForFunction(() => document.querySelector('[data-phase=opening]').textContent.trim() === '1 / 2', null, { timeout: 20000 });
check(await cov.evaluate(() => window.notReloaded === true), 'coverage counted the station without a reload');
check((await cov.inputValue('#f-region')) === 'Almaty', 'and kept the region filter');
await look(cov, 'coverage');
await watch.close();
await sup.page.goto(`${url}/`);
check((await sup.page.textContent('main')).includes(device), 'the overview lists the enrolled device');
check((await sup.page.textContent('main')).includes('KZ-ALA-0042'), "the overview lists the station's records");
await look(sup.page, 'overview');
check((await sup.page.locator(`a[href="/devices/${device}/revoke"]`).count()) === 0, 'a supervisor is offered no revocation');

// A verifier confirms the opening report and marks the ballot stuffing
// report as needing corroboration; a second observer's matching report
// corroborates it.
const verifier = await signIn('dana');
await verifier.page.click('header a[href="/queue"]');
await look(verifier.page, 'queue');
const first = verifier.page.locator('main tbody tr').first();
check((await first.textContent()).includes('ballot_stuffing'), 'the queue puts the ballot stuffing report first');
// Each form posts and comes back to the same record page: wait for what
// the new page says, not for its address.
const decide = async (href, verdict, label, note) => {
  await verifier.page.goto(`${url}${href}`);
  await verifier.page.click('main form[action$="/claim"] button');
  await verifier.page.waitForSelector('text=You have taken this record');
  check(true, `${href}: taken by the verifier`);
  await verifier.page.selectOption('#verdict', verdict);
  await verifier.page.fill('#note', note);
  await verifier.page.click('#decide button');
  await verifier.page.waitForFunction(
    (l) => document.querySelector('main p strong').textContent.includes(l) && !document.body.textContent.includes('You have taken'),
    label,
  );
};
const stuffing = await first.locator('a').getAttribute('href');
const opening = await verifier.page.locator('main tbody tr', { hasText: 'checklist' }).locator('a').getAttribute('href');
await decide(opening, 'confirmed', 'confirmed', 'opened at 08:00, seen by two of us');
check(true, 'the opening report is confirmed');
await decide(stuffing, 'needs_corroboration', 'needs corroboration', 'only one phone so far');
check(true, 'the ballot stuffing report needs corroboration');
check((await verifier.page.textContent('#corroboration')).includes('not corroborated'), 'and is not corroborated yet');
await look(verifier.page, 'record');
const code2 = server('enroll', '--station', 'KZ-ALA-0042', '--name', 'Айгүл', '--text').trim();
phone2('init');
phone2('enroll', code2);
phone2('record', '--station', 'KZ-ALA-0042', '--form', 'incident', '--kind', 'incident', '--payload', '{"type": "ballot_stuffing"}');
phone2('sync');
await verifier.page.reload();
check((await verifier.page.textContent('#corroboration')).includes('reported by 2 independent observers'), 'a second observer\'s report corroborates it');
await look(verifier.page, 'record-corroborated');

// An analyst cannot revoke, and a form without its CSRF token is refused.
const analyst = await signIn('erlan');
const refused = await analyst.page.goto(`${url}/devices/${device}/revoke`);
check(refused.status() === 403, 'an analyst opening the revocation gets 403');
check((await analyst.page.textContent('main')).includes('admin'), 'the 403 page names the role needed');
await look(analyst.page, 'forbidden');
// The quick count: the committed sample, nothing reported yet.
await analyst.page.click('text=Quick count');
check((await analyst.page.textContent('main')).includes('0 of 3 sampled stations reported'), 'the quick count shows the sample and that nothing is reported');
await look(analyst.page, 'quick-count');
const admin = await signIn('aigerim');
const forged = await admin.page.request.post(`${url}/devices/${device}/revoke`, {
  form: { csrf: 'forged' },
  headers: { Origin: url },
  maxRedirects: 0,
});
check(forged.status() === 403, 'a revocation without the session\'s CSRF token is refused');
check(JSON.parse(server('devices', '--json')).every((d) => d.revoked_at_ms === null), 'and nothing was revoked');

// An admin revokes after a confirmation that names the observer.
await admin.page.click(`a[href="/devices/${device}/revoke"]`);
check((await admin.page.textContent('h1')).includes('Ерлан'), 'the confirmation names the observer');
await look(admin.page, 'revoke');
await Promise.all([admin.page.waitForURL(`${url}/`), admin.page.click('main button.danger')]);
check(JSON.parse(server('devices', '--json')).find((d) => d.id === device).revoked_at_ms !== null, 'the device is revoked');

// The forms phones may fill in, and publishing one (an admin's).
await admin.page.click('nav a[href="/forms"]');
check((await admin.page.locator('#forms tbody tr').count()) >= 6, 'the forms list holds every shipped form');
check((await admin.page.locator('textarea#definition').count()) === 1, 'an admin may publish a form version here');
await look(admin.page, 'forms');

// An admin uploads an XLSForm workbook, reads what it converts to, and
// publishes it.
await admin.page.setInputFiles('#workbook', env('OBSERVER_WORKBOOK'));
await Promise.all([
  admin.page.waitForURL(`${url}/forms/xlsx`),
  admin.page.click('form[action="/forms/xlsx"] button[type=submit]'),
]);
check((await admin.page.textContent('main')).includes('converts to counting version 2'), 'the workbook is converted and shown for review');
check((await admin.page.inputValue('textarea#definition')).includes('"party_5"'), 'its definition is ready to read in the publishing form');
check(!server('forms', 'list').includes('counting'), 'converting published nothing');
await look(admin.page, 'forms-converted');
await Promise.all([
  admin.page.waitForURL(`${url}/forms`),
  admin.page.click('form[action="/forms"] button[type=submit]'),
]);
check(server('forms', 'list').includes('counting     v2'), 'publishing it makes version 2 the newest');

// Accounts and the audit log.
await admin.page.click('text=Accounts');
await look(admin.page, 'accounts');
await admin.page.click('text=Audit log');
const audit = await admin.page.textContent('main');
for (const [who, what] of [
  ['account:saule', 'account.login'],
  ['account:saule', 'account.login_failed'],
  ['account:saule', 'code.issued'],
  ['account:erlan', 'account.login'],
  ['account:aigerim', 'device.revoked'],
  ['account:dana', 'record.reviewed'],
]) {
  check(audit.includes(who) && audit.includes(what), `the audit log shows ${who} ${what}`);
}
check(!audit.includes(code.slice(5, 40)), 'the audit log does not hold the code');
await look(admin.page, 'audit');
check(server('audit', 'verify').includes('entries'), 'the audit chain verifies');

// Kazakh, as a coordinator picks it, on every page the same way.
await admin.page.click('nav.langs a[lang=kk]');
check((await admin.page.getAttribute('html', 'lang')) === 'kk', 'the page is in Kazakh');
check((await admin.page.textContent('h1')) === 'Әрекеттер журналы', 'the audit log is titled in Kazakh');
await look(admin.page, 'audit-kk');
await admin.page.goto(`${url}/`);
await look(admin.page, 'overview-kk');
await admin.page.click('nav.langs a[lang=ru]');
check((await admin.page.textContent('h1')) === 'Обзор', 'and in Russian');
await look(admin.page, 'overview-ru');
await admin.page.click('nav.langs a[lang=en]');

// A coordinator of one region starts from its region's coverage, is
// refused another region's with a page naming both, and sets up a second
// factor from its account page.
{
  const context = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true, viewport: sizes.laptop });
  const page = await context.newPage();
  await page.goto(`${url}/login`);
  await page.fill('#name', 'nurlan');
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(`${url}/coverage`), page.click('button[type=submit]')]);
  check((await page.textContent('header')).includes('Almaty'), "a regional coordinator's header names its region");
  const regions = await page.locator('#f-region option').allTextContents();
  check(!regions.some((r) => r.includes('Astana')), `its coverage offers its own region only (${regions})`);
  await look(page, 'coverage-regional');
  const other = await page.goto(`${url}/coverage?region=Astana`);
  check(other.status() === 403, "another region's coverage is refused (403)");
  const refusal = await page.textContent('main');
  check(refusal.includes('Astana') && refusal.includes('Almaty'), 'the refusal names both regions');
  await look(page, 'forbidden-region');
  await page.goto(`${url}/account`);
  await look(page, 'account');
  await Promise.all([page.waitForLoadState(), page.click('main button[type=submit]')]);
  check((await page.locator('img[alt^="QR code of your"]').count()) === 1, 'a new second-factor key is shown as a QR code');
  check((await page.textContent('#totp-key')).trim().length >= 32, 'and as text to type in');
  await look(page, 'account-totp');
  await context.close();
}

// The SMS reports, reached from the menu (nothing arrived by SMS here).
await admin.page.goto(`${url}/`);
await admin.page.click('header nav a[href="/sms"]');
check((await admin.page.textContent('h1')) === 'SMS reports', 'the SMS reports page opens from the menu');
check((await admin.page.textContent('#sms-gateways')).includes('not set up'), 'and says no gateway is set up');
await look(admin.page, 'sms');

// Signing out ends the session.
await admin.page.click('header button[type=submit]');
check(admin.page.url() === `${url}/login`, 'signing out leads to the sign-in page');
await admin.page.goto(`${url}/audit`);
check(admin.page.url() === `${url}/login`, 'and the session is gone');

await browser.close();
console.log(`browser: every check passed; screenshots in ${shots}`);
