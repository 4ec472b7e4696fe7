// The sample shop's web app in a real browser: Debian's Chromium, driven by
// playwright-core. Each test starts from a fresh browser context; the shop
// runs as its own process on fresh SQLite files.
//
//   SHOP_BIN=target/debug/shop npm test     (from this folder)
//
// Screenshots of each main page go to ./screenshots, and of the page a test
// failed on, named after the test.

import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const SHOP = path.resolve(here, process.env.SHOP_BIN ?? "../../../../target/debug/shop");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = path.join(here, "screenshots");
const ADMIN = { email: "admin@shop.test", password: "admin password for browser tests" };
const SECRET = "a signing key for the browser tests, 32 bytes or more";

fs.mkdirSync(SHOTS, { recursive: true });

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts `shop` in `dir` and resolves once it printed its addresses. */
function startShop(dir, { apiPort, apiUrl } = {}) {
  const env = {
    ...process.env,
    SHOP_ENV: "development",
    SHOP_DATABASE_URL: `sqlite://${dir}/shop.db?mode=rwc`,
    SHOP_INVENTORY__DATABASE_URL: `sqlite://${dir}/inventory.db?mode=rwc`,
    SHOP_WALLET__DATABASE_URL: `sqlite://${dir}/wallet.db?mode=rwc`,
    SHOP_API_ADDR: `127.0.0.1:${apiPort ?? 0}`,
    SHOP_WEB_ADDR: "127.0.0.1:0",
    SHOP_INTERNAL_ADDR: "127.0.0.1:0",
    SHOP_JWT_SECRET: SECRET,
    SHOP_ADMIN_EMAIL: ADMIN.email,
    SHOP_ADMIN_PASSWORD: ADMIN.password,
    NO_COLOR: "1",
    RUST_LOG: "warn",
  };
  if (apiUrl) env.SHOP_WEB__API_URL = apiUrl;
  const child = spawn(SHOP, [], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  const log = fs.createWriteStream(path.join(dir, "shop.log"), { flags: "a" });
  child.stderr.pipe(log);
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the shop did not start:\n${out}`)), 60_000);
    child.on("exit", (code) => reject(new Error(`the shop exited with ${code}:\n${out}`)));
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const web = out.match(/Shop web page: (http:\/\/\S+?)\/?\n/);
      const api = out.match(/Shop API: +(http:\/\/[^/\s]+)/);
      if (web && api) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolve({ child, web: web[1], api: api[1] });
      }
    });
  });
}

function stop(shop) {
  return new Promise((resolve) => {
    if (shop.child.exitCode !== null) return resolve();
    shop.child.on("exit", () => resolve());
    shop.child.kill("SIGKILL");
  });
}

let browser;
let shop;
let work;
let context;
let page;
let counter = 0;

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "shop-browser-"));
  shop = await startShop(work);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
});

after(async () => {
  await browser?.close();
  if (shop) await stop(shop);
});

async function fresh() {
  context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  page = await context.newPage();
  return page;
}

// The page each test ended on, kept whether it passed or failed: a failing
// test's is what went wrong.
afterEach(async (t) => {
  if (page) {
    const name = t.name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
    await page.screenshot({ path: path.join(SHOTS, `last-${name}.png`), fullPage: true }).catch(() => {});
  }
  await context?.close();
  context = undefined;
  page = undefined;
});

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

function email() {
  counter += 1;
  return `customer${counter}-${Date.now()}@shop.test`;
}

async function signUp(address) {
  await page.goto(`${shop.web}/sign-up`);
  await page.fill("#email", address);
  await page.fill("#password", "a long enough password");
  await page.click("main button[type=submit]");
  await page.waitForURL(`${shop.web}/`);
}

async function signIn(who) {
  await page.goto(`${shop.web}/sign-in`);
  await page.fill("#email", who.email);
  await page.fill("#password", who.password);
  await page.click("main button[type=submit]");
  await page.waitForURL(`${shop.web}/`);
}

async function topUp(amount) {
  await page.goto(`${shop.web}/wallet`);
  await page.fill("#amount", amount);
  await page.click("text=Top up >> nth=-1");
  await page.waitForSelector(".notice.done");
}

async function addToCart(product, quantity = 1) {
  await page.goto(`${shop.web}/`);
  const card = page.locator("article.card", { hasText: product });
  await card.locator("input[name=quantity]").fill(String(quantity));
  await card.locator("button", { hasText: "Add to cart" }).click();
  await page.waitForURL(`${shop.web}/cart`);
}

async function stockOf(product) {
  await page.goto(`${shop.web}/`);
  await page.click(`text=${product}`);
  return (await page.textContent("#stock")).trim();
}

async function ordersListed() {
  await page.goto(`${shop.web}/orders`);
  return page.locator("#orders tbody tr").count();
}

test("a visitor signs up, signs out and signs in again", async () => {
  await fresh();
  const address = email();
  await signUp(address);
  assert.match(await page.textContent(".notice"), /Welcome/);
  await shot("catalog");
  await page.click("nav button:has-text('Sign out')");
  await page.waitForSelector("nav a:has-text('Sign in')");
  await signIn({ email: address, password: "a long enough password" });
  assert.equal(await page.locator("nav a:has-text('My orders')").count(), 1);

  await page.goto(`${shop.web}/sign-in`);
  await page.fill("#email", address);
  await page.fill("#password", "not the password");
  await page.click("main button[type=submit]");
  assert.match(await page.textContent(".notice.error"), /email or password is not right/);
});

test("the catalog searches by name or SKU", async () => {
  await fresh();
  await page.goto(`${shop.web}/`);
  await page.fill("#q", "SENCHA");
  await page.press("#q", "Enter");
  await page.waitForURL(/q=SENCHA/);
  assert.equal(await page.locator("#products article").count(), 1);
  assert.match(await page.textContent("#catalog-summary"), /1 products matching “SENCHA”/);
  await page.fill("#q", "100%");
  await page.press("#q", "Enter");
  await page.waitForURL(/q=100%25/);
  assert.equal(await page.locator("#products article").count(), 0);
});

test("a customer tops up, checks out and sees the order confirmed", async () => {
  await fresh();
  await signUp(email());
  await topUp("100");
  assert.equal((await page.textContent("#balance")).trim(), "100.00 EUR");
  const before = await stockOf("Sencha, 100 g");
  await addToCart("Sencha, 100 g", 2);
  await shot("cart");
  await page.click("#checkout");
  await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/);
  assert.equal((await page.textContent("#order-status")).trim(), "Confirmed");
  await shot("checkout-confirmed");
  await page.goto(`${shop.web}/wallet`);
  assert.equal((await page.textContent("#balance")).trim(), "76.00 EUR");
  assert.equal((await page.textContent("#frozen")).trim(), "0.00 EUR");
  const after = await stockOf("Sencha, 100 g");
  assert.equal(parseInt(after, 10), parseInt(before, 10) - 2);
});

test("a double-clicked checkout places one order", async () => {
  await fresh();
  await signUp(email());
  await topUp("100");
  await addToCart("Tea towel, linen");
  await page.dblclick("#checkout");
  await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/);
  // And the same form sent twice at once, as a flaky connection might.
  await addToCart("Tea towel, linen");
  const statuses = await page.evaluate(async () => {
    const form = new FormData(document.querySelector("form[action='/checkout']"));
    const body = new URLSearchParams(form);
    const send = () => fetch("/checkout", { method: "POST", body, redirect: "follow" }).then((r) => r.url);
    const together = await Promise.all([send(), send()]);
    // And once more after both finished and the cart was emptied.
    return [...together, await send()];
  });
  assert.equal(statuses[0], statuses[1], "both sends end on the same order");
  assert.equal(statuses[2], statuses[0], "a late resend ends on it too");
  assert.equal(await ordersListed(), 2, "one order per checkout");
  await page.goto(`${shop.web}/wallet`);
  assert.equal((await page.textContent("#balance")).trim(), "80.20 EUR");
});

test("checking out with too little money says so and holds nothing", async () => {
  await fresh();
  await signUp(email());
  await topUp("10");
  const before = await stockOf("Cast-iron tea pot");
  await addToCart("Cast-iron tea pot");
  await page.click("#checkout");
  await page.waitForSelector(".notice.error");
  const notice = await page.textContent(".notice.error");
  assert.match(notice, /does not hold enough/);
  assert.match(notice, /Nothing was reserved or charged/);
  await shot("checkout-insufficient-funds");
  assert.equal(await page.locator("#cart tbody tr").count(), 1, "the cart is kept");
  await page.goto(`${shop.web}/wallet`);
  assert.equal((await page.textContent("#balance")).trim(), "10.00 EUR");
  assert.equal((await page.textContent("#frozen")).trim(), "0.00 EUR");
  assert.equal(await stockOf("Cast-iron tea pot"), before);
});

test("checking out what is out of stock says so and holds nothing", async () => {
  await fresh();
  await signUp(email());
  await topUp("50");
  assert.equal(await stockOf("Bamboo whisk"), "Out of stock");
  await addToCart("Bamboo whisk");
  await page.click("#checkout");
  await page.waitForSelector(".notice.error");
  const notice = await page.textContent(".notice.error");
  assert.match(notice, /Not enough stock/);
  assert.match(notice, /Nothing was reserved or charged/);
  await page.goto(`${shop.web}/wallet`);
  assert.equal((await page.textContent("#balance")).trim(), "50.00 EUR");
  assert.equal((await page.textContent("#frozen")).trim(), "0.00 EUR");
});

test("an administrator sees every transaction with its branches", async () => {
  await fresh();
  await signIn(ADMIN);
  await page.click("nav a:has-text('Dashboard')");
  await page.waitForSelector("#transactions tbody tr");
  assert.match(await page.textContent("#outbox-depth"), /^\d+$/);
  assert.ok(await page.locator("#consumers tbody tr", { hasText: "sales_report" }).count() >= 1);
  assert.ok(await page.locator("#audit tbody tr").count() >= 1);
  await shot("dashboard");
  await page.click("#transactions tbody tr >> nth=0 >> a");
  await page.waitForSelector("#branches");
  const branches = await page.locator("#branches tbody tr").count();
  assert.equal(branches, 2, "a stock branch and a money branch");
  assert.match(await page.textContent("#tx-state"), /succeeded|failed/);
  await shot("transaction");

  // A customer is not shown the dashboard.
  await context.clearCookies();
  await signUp(email());
  assert.equal(await page.locator("nav a:has-text('Dashboard')").count(), 0);
  const response = await page.goto(`${shop.web}/admin`);
  assert.equal(response.status(), 403);
});

test("a keyboard alone gets from the catalog to a confirmed order", async () => {
  await fresh();
  await signUp(email());
  await topUp("50");
  await page.goto(`${shop.web}/`);
  // Tabs until the focused element is a button labelled `label` inside an
  // element whose text holds `within`.
  const focusOn = async (label, within, limit = 80) => {
    for (let i = 0; i < limit; i += 1) {
      await page.keyboard.press("Tab");
      const reached = await page.evaluate(
        ([label, within]) => {
          const active = document.activeElement;
          return active?.tagName === "BUTTON" && active.textContent.trim() === label &&
            (active.closest("article, main")?.textContent ?? "").includes(within);
        },
        [label, within],
      );
      if (reached) return;
    }
    throw new Error(`Tab never reached ${label}`);
  };
  await focusOn("Add to cart", "Porcelain cup");
  await page.keyboard.press("Enter");
  await page.waitForURL(`${shop.web}/cart`);
  await focusOn("Place order", "Your cart");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/);
  assert.equal((await page.textContent("#order-status")).trim(), "Confirmed");
});

test("no token reaches the page, and a form without its CSRF token is refused", async () => {
  await fresh();
  await signUp(email());
  const cookies = await context.cookies();
  assert.equal(cookies.length, 1, JSON.stringify(cookies));
  assert.equal(cookies[0].name, "shop_session");
  assert.equal(cookies[0].httpOnly, true);
  assert.equal(cookies[0].sameSite, "Lax");
  assert.equal(await page.evaluate(() => document.cookie), "");
  for (const where of ["/", "/wallet", "/orders", "/cart"]) {
    await page.goto(`${shop.web}${where}`);
    const html = await page.content();
    assert.doesNotMatch(html, /eyJ[A-Za-z0-9_-]{10,}\./, `a JWT in ${where}`);
    assert.equal(await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)), "{}{}");
  }
  const refused = await page.evaluate(async () => {
    const body = new URLSearchParams({ product_id: "01a24b42-c257-7663-9579-a8df249e77a4", quantity: "1" });
    const response = await fetch("/cart/items", { method: "POST", body });
    return response.status;
  });
  assert.equal(refused, 403);
});

test("with its API stopped every page degrades with a message, and recovers by itself", async () => {
  const apiPort = await freePort();
  const apiDir = fs.mkdtempSync(path.join(os.tmpdir(), "shop-api-"));
  const webDir = fs.mkdtempSync(path.join(os.tmpdir(), "shop-web-"));
  let api = await startShop(apiDir, { apiPort });
  const web = await startShop(webDir, { apiUrl: api.api });
  try {
    await fresh();
    await page.goto(`${web.web}/sign-up`);
    await page.fill("#email", email());
    await page.fill("#password", "a long enough password");
    await page.click("main button[type=submit]");
    await page.waitForURL(`${web.web}/`);
    await stop(api);
    for (const where of ["/", "/products/01a24b42-c257-7663-9579-a8df249e77a4", "/cart", "/orders", "/wallet", "/sign-in"]) {
      const response = await page.goto(`${web.web}${where}`);
      const text = await page.textContent("body");
      assert.ok([200, 503].includes(response.status()), `${where} answered ${response.status()}`);
      assert.doesNotMatch(text, /502|panicked|stack backtrace|internal server error/i, where);
      if (response.status() === 503) {
        assert.match(await page.textContent(".degraded"), /not answering|cannot be/, where);
      }
    }
    const response = await page.goto(`${web.web}/wallet`);
    assert.equal(response.status(), 503);
    await shot("degraded");
    api = await startShop(apiDir, { apiPort });
    // The degraded page reloads itself; no click needed.
    await page.waitForSelector("#balance", { timeout: 30_000 });
    await page.goto(`${web.web}/`);
    await page.waitForSelector("#products");
  } finally {
    await stop(api);
    await stop(web);
  }
});
