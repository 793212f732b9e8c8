// The console in a real browser: Debian's Chromium, headless, driven by playwright-core (which downloads no
// browser). The end-to-end suite (tests/e2e/tests/web_console.rs) runs one step at a time, against crossroled on
// the emulators, and sets the stage between steps:
//
//   node tests/browser.mjs signin <name>…         a wrong token is refused; the right one shows the seeded tree
//   node tests/browser.mjs watch                  the operation's page (its id read from stdin once signed in)
//                                                 fills in live to 100%
//   node tests/browser.mjs drift <binding> <id>   after an out-of-band change and a reconcile, the account is drifted
//   node tests/browser.mjs operation <id> <n>     an operation with n account results: its page holds the rows in
//                                                 view, not n, and draws the last when scrolled to the end
//   node tests/browser.mjs inventory <account> <role> <severity> <principal>
//                                                 who can enter the account shows the role's finding of that
//                                                 severity; where the principal can go lists the role
//   node tests/browser.mjs render <count>         time to first render of the organization (the bench)
//
// Environment: CONSOLE_URL (crossroled's listener), CONSOLE_TOKEN, CHROMIUM (its path), SCREENSHOTS (a directory).
// Prints one JSON line of what it saw; exits non-zero, saying why, when a check fails. Any error on the page (a
// refused script, a Content-Security-Policy violation, an uncaught exception) fails the step.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [step, ...args] = process.argv.slice(2);
const base = (process.env.CONSOLE_URL ?? "").replace(/\/$/, "");
const token = process.env.CONSOLE_TOKEN ?? "";
const shots = process.env.SCREENSHOTS ?? "target/console-screenshots";
mkdirSync(shots, { recursive: true });

function check(ok, why) {
  if (!ok) throw new Error(why);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  if (m.type() === "error" && !/401|Unauthenticated|unauthenticated/.test(m.text())) problems.push(`console error: ${m.text()}`);
});

async function signIn(with_token) {
  await page.goto(`${base}/console/`);
  await page.fill("#token", with_token);
  await page.click("button[type=submit]");
}

async function shot(name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
}

const seen = {};
try {
  if (step === "signin") {
    const response = await page.goto(`${base}/console/`);
    const csp = response.headers()["content-security-policy"] ?? "";
    check(csp.includes("frame-ancestors 'none'") && csp.includes("script-src 'self'"), `the page's policy: ${csp}`);
    await signIn("not-a-token");
    await page.waitForSelector(".signin .error", { timeout: 10000 });
    seen.refused = await page.textContent(".signin .error");
    check(/refused/.test(seen.refused), `a wrong token: ${seen.refused}`);
    check((await page.$(".row.account")) === null, "a wrong token shows no account");
    await shot("signin-refused");
    await signIn(token);
    await page.waitForSelector(".row.account", { timeout: 20000 });
    seen.accounts = await page.textContent("#account-count");
    // Each argument is an account's name the tree must show; `suspended:NAME`, one it must mark SUSPENDED.
    for (const arg of args) {
      const [name, mark] = arg.startsWith("suspended:") ? [arg.slice(10), ".badge.suspended"] : [arg, ""];
      await page.fill("input[type=search]", name);
      await page.waitForSelector(`.row.account:has-text("${name}") ${mark}`.trim(), { timeout: 5000 });
    }
    await page.fill("input[type=search]", "");
    check(!(await page.url()).includes(token), "the token is not in the URL");
    await shot("organization");
  } else if (step === "watch") {
    // Signed in first; then "ready" on stdout, and the operation's id is read from stdin (the suite starts the
    // rollout in between), so that the page is open before the rollout runs.
    await signIn(token);
    await page.waitForSelector(".row.account", { timeout: 20000 });
    console.log("ready");
    const id = await new Promise((resolve) => {
      let input = "";
      process.stdin.on("data", (d) => {
        input += d;
        if (input.includes("\n")) resolve(input.trim());
      });
    });
    await page.goto(`${base}/console/#/operations/${id}`);
    await page.waitForSelector("#progress[data-percent]", { timeout: 20000 });
    const percents = [];
    const deadline = Date.now() + 180000;
    for (;;) {
      const p = Number(await page.getAttribute("#progress", "data-percent"));
      if (percents[percents.length - 1] !== p) percents.push(p);
      if (p === 100) break;
      check(Date.now() < deadline, `the operation's page stopped at ${p}%: ${percents.join(", ")}`);
      await page.waitForTimeout(100);
    }
    seen.percents = percents;
    // Each row says how many there are (the list draws only those in view).
    seen.rows = Number(await page.getAttribute("#accounts .row[aria-setsize]", "aria-setsize"));
    await page.waitForSelector(".badge.succeeded", { timeout: 20000 });
    // The first account's changes open into their diffs.
    const first = '#accounts .row[aria-posinset="1"]';
    await page.click(`${first} .changes-toggle`);
    seen.diff = await page.textContent(`${first} .diff`, { timeout: 5000 });
    check(/[+-] /.test(seen.diff ?? ""), `the changes as diffs: ${seen.diff}`);
    await shot("operation");
  } else if (step === "drift") {
    const [binding, account] = args;
    await signIn(token);
    await page.waitForSelector(".row.account", { timeout: 20000 });
    await page.goto(`${base}/console/#/org?binding=${encodeURIComponent(binding)}`);
    await page.waitForSelector("#binding-summary", { timeout: 20000 });
    await page.fill("input[type=search]", account);
    const row = `.row.account[data-account="${account}"]`;
    await page.waitForSelector(`${row} .badge.drifted`, { timeout: 10000 });
    seen.orgBadge = await page.textContent(`${row} .badge.drifted`);
    seen.console = await page.textContent(`${row} .console, ${row} .switch`);
    await page.fill("input[type=search]", "");
    await shot("organization-binding");
    await page.goto(`${base}/console/#/bindings`);
    const card = `.card[data-binding="${binding}"]`;
    await page.waitForSelector(`${card} .account-status[data-account="${account}"]`, { timeout: 10000 });
    await page.click(`${card} .account-status[data-account="${account}"] summary`);
    seen.diff = await page.textContent(`${card} .account-status[data-account="${account}"] .diff`);
    check(/[+-] /.test(seen.diff ?? ""), `the drift as a diff: ${seen.diff}`);
    await shot("bindings");
    await page.goto(`${base}/console/#/matrix`);
    await page.waitForSelector(".row.grid[data-account]", { timeout: 20000 });
    await shot("matrix");
    await page.goto(`${base}/console/#/operations`);
    await page.waitForSelector("#operations tbody tr", { timeout: 20000 });
    await shot("operations");
  } else if (step === "operation") {
    const [id, count] = args;
    await signIn(token);
    await page.waitForSelector(".row.account", { timeout: 60000 });
    await page.goto(`${base}/console/#/operations/${id}`);
    const started = Date.now();
    // Every result replayed from the journal: the list has them all.
    await page.waitForSelector(`#accounts .row[aria-setsize="${count}"]`, { timeout: 120000 });
    seen.replay_ms = Date.now() - started;
    seen.percent = await page.getAttribute("#progress", "data-percent");
    check(seen.percent === "100", `the operation's page at ${seen.percent}%`);
    const rows = () => page.$$eval(".row", (r) => r.length);
    seen.dom_rows = await rows();
    check(seen.dom_rows < 200, `${seen.dom_rows} rows in the page for ${count} accounts`);
    const firstAccount = await page.getAttribute('#accounts .row[aria-posinset="1"]', "data-account");
    // Scrolling to the end draws the last rows, and no more of them.
    const toEnd = () => page.$eval("#accounts", (v) => v.scrollTo(0, v.scrollHeight));
    await toEnd();
    const last = `#accounts .row[aria-posinset="${count}"]`;
    await page.waitForSelector(last, { timeout: 5000 });
    seen.dom_rows_at_end = await rows();
    check(seen.dom_rows_at_end < 200, `${seen.dom_rows_at_end} rows in the page scrolled to the end`);
    check((await page.$('#accounts .row[aria-posinset="1"]')) === null, "the first row is gone when the last is drawn");
    // The last account's changes open in place, as diffs; its row grows and the list makes room for it.
    seen.last = await page.getAttribute(last, "data-account");
    await page.click(`${last} .changes-toggle`);
    seen.diff = await page.textContent(`${last} .diff`, { timeout: 5000 });
    check(/[+-] /.test(seen.diff ?? ""), `the last account's changes as diffs: ${seen.diff}`);
    await page.waitForTimeout(200);
    await toEnd();
    await page.waitForTimeout(200);
    const gap = await page.$eval(last, (row) => {
      const list = row.closest("#accounts").getBoundingClientRect();
      const r = row.getBoundingClientRect();
      return { height: r.height, below: list.bottom - r.bottom };
    });
    check(gap.height > 100 && Math.abs(gap.below) < 4, `the opened last row at the end of the list: ${JSON.stringify(gap)}`);
    await shot("operation-large");
    // The filter finds an account out of view.
    await page.fill("#main input[type=search]", firstAccount);
    await page.waitForSelector(`#accounts .row[aria-setsize="1"][data-account="${firstAccount}"]`, { timeout: 5000 });
  } else if (step === "inventory") {
    const [account, role, severity, principal] = args;
    await signIn(token);
    await page.waitForSelector(".row.account", { timeout: 20000 });
    // Who can enter the account: picked in the form, as a person does.
    await page.goto(`${base}/console/#/inventory/account`);
    await page.fill("#inventory-account", account);
    await page.click("#main form button[type=submit]");
    const row = `#inventory .row.role[data-account="${account}"][data-role="${role}"]`;
    await page.waitForSelector(row, { timeout: 20000 });
    seen.count = await page.textContent("#inventory-count");
    seen.finding = await page.textContent(`${row} .finding[data-severity="${severity}"]`, { timeout: 5000 });
    seen.owner = await page.textContent(`${row} .owner`);
    await shot("inventory-account");
    // Where the principal can go, from the address a person would share.
    await page.goto(`${base}/console/#/inventory/principal?principal=${encodeURIComponent(principal)}`);
    await page.waitForSelector(row, { timeout: 20000 });
    seen.entrant = await page.textContent(`${row} .entrant`);
    await shot("inventory-principal");
  } else if (step === "render") {
    const [count] = args;
    await signIn(token);
    const started = Date.now();
    await page.waitForSelector(".row.account", { timeout: 60000 });
    seen.render_ms = Date.now() - started;
    seen.accounts = await page.textContent("#account-count");
    check(seen.accounts?.startsWith(`${count} `), `expected ${count} accounts: ${seen.accounts}`);
    // Scrolling to the end draws the last rows.
    await page.$eval(".virtual", (v) => v.scrollTo(0, v.scrollHeight));
    await page.waitForTimeout(100);
    seen.dom_rows = await page.$$eval(".row", (r) => r.length);
    await shot("organization-large");
  } else {
    throw new Error(`unknown step ${step}`);
  }
  check(problems.length === 0, problems.join("\n"));
  console.log(JSON.stringify(seen));
} catch (e) {
  await shot(`failed-${step}`).catch(() => {});
  console.error(`${step}: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
