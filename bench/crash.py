#!/usr/bin/env python3
"""Kills the shop with SIGKILL at random moments while customers check out and
top up and an administrator edits the catalog, starts it again, and after each
recovery checks that nothing was lost or doubled:

* every order is confirmed or cancelled, and no distributed transaction is
  left unfinished or waiting for an operator;
* every request sent with an idempotency key gets its final answer when the
  client retries it after the restart (no key stays "in use");
* stock balances: for each product, the initial stock is what is available
  plus what confirmed orders took, and nothing stays reserved;
* money balances: each wallet holds its top-ups less its confirmed orders,
  and nothing stays frozen;
* every event was delivered once: the sales report counts exactly the
  products created, the price changes made and the units and revenue of the
  confirmed orders; the outbox is empty and no consumer dead-lettered anything.

With --instances N (PostgreSQL and Redis), N shop processes share the
databases and the bus, the clients go round-robin over them, and each kill
takes one of them; the invariants are the same, and each instance's relay
must have published some of the events.

Run by bench/crash.sh, which builds the shop; see there for the settings.
Standard library only.
"""

import argparse
import datetime
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

ADMIN_EMAIL = "admin@crash.test"
ADMIN_PASSWORD = "a password for the crash admin"
CUSTOMER_PASSWORD = "a password for a crash customer"
CURRENCY = "EUR"
INITIAL_STOCK = 100_000
MAX_PRODUCTS = 12


class Unreachable(Exception):
    """The shop did not answer: down, or killed while answering."""


class Failure(Exception):
    """An invariant does not hold."""


def request(base, method, path, body=None, token=None, key=None, timeout=15):
    """(status, decoded body or None); Unreachable when no answer came."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key:
        headers["Idempotency-Key"] = key
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
        raise Unreachable(str(error)) from error
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = raw.decode(errors="replace")
    return status, decoded


class Shop:
    """The shop process: started, killed, started again on the same files."""

    def __init__(
        self, binary, databases, redis_url, prefix, port, internal_port, log, host="127.0.0.1", command=None
    ):
        # The command line, when not the binary alone (`serve --only
        # inventory` inside a network namespace, say).
        self.command = command or [binary]
        self.base = f"http://{host}:{port}"
        self.process = None
        self.log = log
        self.published = 0
        self.env = dict(
            os.environ,
            SHOP_ENV="development",
            NO_COLOR="1",
            RUST_LOG="warn",
            SHOP_SEED="false",
            SHOP_DATABASE_URL=databases["shop"],
            SHOP_INVENTORY__DATABASE_URL=databases["inventory"],
            SHOP_WALLET__DATABASE_URL=databases["wallet"],
            SHOP_API_ADDR=f"{host}:{port}",
            SHOP_WEB_ADDR="127.0.0.1:0",
            SHOP_INTERNAL_ADDR=f"{host}:{internal_port}",
            SHOP_ADMIN_EMAIL=ADMIN_EMAIL,
            SHOP_ADMIN_PASSWORD=ADMIN_PASSWORD,
            SHOP_JWT_SECRET="a signing key for the crash test, 32 bytes or more",
            SHOP_HTTP__CLIENT_LIMIT__ENABLED="false",
            SHOP_CACHE_KEY_PREFIX=prefix,
            # What a dead instance held is taken over after these, so
            # recovery takes seconds rather than the production minutes.
            SHOP_HTTP__REQUEST_TIMEOUT="8s",
            SHOP_IDEMPOTENCY__LEASE="10s",
            SHOP_OUTBOX__LEASE="3s",
            SHOP_CONSUMERS__LEASE="3s",
            SHOP_TCC__LEASE="3s",
            SHOP_TCC__TIMEOUT="5s",
            SHOP_TCC__CALL_TIMEOUT="2s",
            SHOP_TCC__RETRY_INTERVAL="200ms",
            SHOP_TCC__RECOVERY_INTERVAL="200ms",
        )
        if redis_url:
            self.env["SHOP_REDIS_URL"] = redis_url

    def small_pools(self):
        """Fewer connections per pool, so several instances, each with
        three databases, stay within a PostgreSQL server's 100."""
        self.env["SHOP_DATABASE__MAX_CONNECTIONS"] = "4"

    def start(self):
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Failure(f"the shop exited with {self.process.returncode} on start")
            try:
                # Ready, and this process is the one answering.
                if (
                    request(self.base, "GET", "/health/ready", timeout=2)[0] == 200
                    and self.process.poll() is None
                ):
                    return
            except Unreachable:
                pass
            time.sleep(0.1)
        raise Failure("the shop was not ready within 120 s of its start")

    def kill(self):
        self.published += published_by(self)
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class Client:
    """One signed-in account; signs in again when its token is refused."""

    def __init__(self, shops, email, password, ledger, contexts=None):
        self.shops, self.email, self.password = shops, email, password
        self.ledger = ledger
        self.token = None
        self.turn = random.randrange(len(shops))
        # Path prefix -> base URL of a context run as a process of its own.
        self.contexts = contexts or {}
        # How long a keyed request may go without a final answer.
        self.stuck_after = 60

    def base(self, path=""):
        """The context process serving `path`, or the next instance,
        round-robin."""
        for prefix, base in self.contexts.items():
            if path.startswith(prefix):
                return base
        self.turn = (self.turn + 1) % len(self.shops)
        return self.shops[self.turn].base

    def sign_in(self):
        status, body = retrying(
            lambda: request(
                self.base(),
                "POST",
                "/api/auth/sign-in",
                {"email": self.email, "password": self.password},
            )
        )
        if status != 200:
            raise Failure(f"sign-in of {self.email}: {status} {body}")
        self.token = body["access_token"]

    def call(self, method, path, body=None, key=None):
        if self.token is None:
            self.sign_in()
        status, answer = request(self.base(path), method, path, body, self.token, key)
        if status == 401:
            self.sign_in()
            status, answer = request(self.base(path), method, path, body, self.token, key)
        return status, answer

    def final(self, method, path, body, key):
        """Sends a keyed request until its answer is final: through restarts,
        and past "in use" while a dead process's claim on the key runs out."""
        stuck_after = self.stuck_after
        deadline = time.monotonic() + stuck_after
        interrupted = in_use_seen = False
        while True:
            try:
                status, answer = self.call(method, path, body, key)
            except Unreachable:
                status, answer = None, None
                interrupted = True
            in_use = (
                status == 409
                and isinstance(answer, dict)
                and answer.get("code") == "idempotency_key_in_use"
            )
            in_use_seen |= in_use
            if status is not None and status != 503 and not in_use:
                with self.ledger.lock:
                    self.ledger.interrupted += interrupted
                    self.ledger.in_use += in_use_seen
                return status, answer
            if time.monotonic() > deadline:
                raise Failure(
                    f"{method} {path} with key {key} has no final answer after "
                    f"{stuck_after} s: last {status} {answer}"
                )
            time.sleep(0.2)


def free_port():
    """A port nothing listens on now, as the system hands them out."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def retrying(call, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except Unreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Ledger:
    """What the clients know happened, from final answers only."""

    def __init__(self):
        self.lock = threading.Lock()
        self.products = {}  # id -> initial stock
        self.top_ups = {}  # customer email -> minor units
        self.orders = {}  # order id -> customer email
        self.requests = 0
        # Checkout answers by status and code: "201", "202", "409 timeout"...
        self.checkouts = {}
        # Keyed requests whose first answer was lost to a kill, and answers
        # "in use" while a dead process's claim on a key ran out.
        self.interrupted = 0
        self.in_use = 0


def held(pause, stop):
    """Waits while the clients are held; False once they are to stop."""
    while pause.is_set():
        if stop.is_set():
            return False
        time.sleep(0.05)
    return True


def customer_loop(client, ledger, pause, stop):
    while held(pause, stop):
        key = str(uuid.uuid4())
        if random.random() < 0.3:
            amount = random.randint(1_000, 20_000)
            status, answer = client.final(
                "POST",
                "/api/wallet/top-ups",
                {"amount": {"amount_minor": amount, "currency": CURRENCY}},
                key,
            )
            if status != 200:
                raise Failure(f"top-up: {status} {answer}")
            with ledger.lock:
                ledger.top_ups[client.email] = ledger.top_ups.get(client.email, 0) + amount
                ledger.requests += 1
        elif not checkout(client, ledger, key):
            time.sleep(0.05)


def checkout(client, ledger, key):
    """Orders one or two of the products the ledger knows, as `client`, and
    records the answer: False when no product is known yet."""
    with ledger.lock:
        known = list(ledger.products)
    if not known:
        return False
    items = [
        {"product_id": product, "quantity": random.randint(1, 3)}
        for product in random.sample(known, min(len(known), random.randint(1, 2)))
    ]
    status, answer = client.final("POST", "/api/orders", {"items": items}, key)
    if status in (201, 202):
        order = answer["id"]
    elif status == 409 and isinstance(answer, dict) and "order" in answer:
        order = answer["order"]["id"]
    else:
        raise Failure(f"checkout: {status} {answer}")
    answered = str(status)
    if status == 409:
        answered += f" {answer.get('code')}"
    with ledger.lock:
        ledger.orders[order] = client.email
        ledger.requests += 1
        ledger.checkouts[answered] = ledger.checkouts.get(answered, 0) + 1
    return True


def admin_loop(admin, ledger, pause, stop, run):
    number = 0
    while held(pause, stop):
        with ledger.lock:
            known = list(ledger.products)
        # New products now and then, up to a dozen; price changes otherwise.
        if len(known) < 3 or (len(known) < MAX_PRODUCTS and random.random() < 0.2):
            number += 1
            key = str(uuid.uuid4())
            body = {
                "name": f"Crash product {run}-{number}",
                "sku": f"CRASH-{run}-{number}",
                "price": {"amount_minor": random.randint(100, 5_000), "currency": CURRENCY},
                "stock": INITIAL_STOCK,
            }
            status, answer = admin.final("POST", "/api/products", body, key)
            if status != 201:
                raise Failure(f"product creation: {status} {answer}")
            with ledger.lock:
                ledger.products[answer["id"]] = INITIAL_STOCK
                ledger.requests += 1
        else:
            # A price change has no key: its outcome, when the answer was
            # lost, is read from the product's version at the end.
            product = random.choice(known)
            try:
                status, current = admin.call("GET", f"/api/products/{product}")
                if status != 200:
                    continue
                # Another price: setting the same one changes nothing and
                # records no event, though the version moves on.
                price = current["price"]["amount_minor"]
                while price == current["price"]["amount_minor"]:
                    price = random.randint(100, 5_000)
                admin.call(
                    "PUT",
                    f"/api/products/{product}/price",
                    {
                        "price": {"amount_minor": price, "currency": CURRENCY},
                        "version": current["version"],
                    },
                )
            except Unreachable:
                time.sleep(0.1)


def register_customers(shops, count, domain, ledger, contexts=None):
    """`count` new customers, registered through the first shop and signed in
    lazily by their clients; `domain` keeps one run's addresses apart."""
    customers = []
    for number in range(count):
        email = f"customer{number}-{domain}"
        status, user = retrying(
            lambda: request(
                shops[0].base,
                "POST",
                "/api/auth/register",
                {"email": email, "password": CUSTOMER_PASSWORD},
            )
        )
        if status != 201:
            raise Failure(f"registration: {status} {user}")
        client = Client(shops, email, CUSTOMER_PASSWORD, ledger, contexts)
        client.customer_id = user["id"]
        customers.append(client)
    return customers


def settle(admin, customers, ledger, seconds, what):
    """Waits until every invariant holds, `seconds` at most: the problems it
    last waited for, or None when they held at once."""
    deadline = time.monotonic() + seconds
    waited_on = None
    while True:
        problems = check(admin, customers, ledger)
        if not problems:
            return waited_on
        waited_on = problems
        if time.monotonic() > deadline:
            raise Failure(f"{what}, {seconds:.0f} s on:\n  " + "\n  ".join(problems))
        time.sleep(1)


class Load:
    """The customers' and the administrator's loops, each on a thread of its
    own: held while `pause` is set, ended by `stop`; the first error one of
    them raises holds and ends them all, and is raised by `check`."""

    def __init__(self, admin, customers, ledger, run):
        self.pause, self.stop = threading.Event(), threading.Event()
        self.errors = []
        loops = [(customer_loop, client, ledger, self.pause, self.stop) for client in customers]
        loops.append((admin_loop, admin, ledger, self.pause, self.stop, run))
        self.threads = [
            threading.Thread(target=self._guarded, args=loop, daemon=True) for loop in loops
        ]
        for thread in self.threads:
            thread.start()

    def _guarded(self, target, *args):
        try:
            target(*args)
        except Exception as error:  # reported and ends the run
            self.errors.append(error)
            self.pause.set()
            self.stop.set()

    def check(self):
        if self.errors:
            raise self.errors[0]

    def hold(self):
        """Holds the clients once their requests in flight are answered."""
        self.pause.set()
        time.sleep(0.3)
        self.check()

    def end(self):
        self.pause.set()
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)
        self.check()


def pages(client, path):
    page, items = 1, []
    while True:
        separator = "&" if "?" in path else "?"
        status, body = retrying(
            lambda: client.call("GET", f"{path}{separator}page={page}&per_page=100")
        )
        if status != 200:
            raise Failure(f"GET {path}: {status} {body}")
        items.extend(body["items"])
        if len(body["items"]) < 100:
            return items
        page += 1


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def check(admin, customers, ledger):
    """The invariants once the shop has recovered: None when they hold, else
    what does not (the caller waits and asks again, up to a limit)."""
    problems = []
    # Every order is final and no transaction is unfinished or flagged.
    confirmed = []
    for client in customers:
        for order in pages(client, "/api/orders"):
            if order["status"] == "pending":
                problems.append(f"order {order['id']} still pending")
            elif order["status"] == "confirmed":
                confirmed.append(order)
            if order["id"] not in ledger.orders:
                problems.append(f"order {order['id']} was never answered to a client")
    for state in ("prepared", "submitted", "aborting"):
        left = pages(admin, f"/api/admin/transactions?state={state}")
        if left:
            problems.append(f"{len(left)} transactions {state}")
    flagged = [t for t in pages(admin, "/api/admin/transactions") if t.get("flagged")]
    if flagged:
        problems.append(f"{len(flagged)} transactions wait for an operator")
    # Stock.
    sold = {}
    revenue = {}
    spent = {}
    for order in confirmed:
        spent[order["customer_id"]] = spent.get(order["customer_id"], 0) + order["total"]["amount_minor"]
        for item in order["items"]:
            product = item["product_id"]
            sold[product] = sold.get(product, 0) + item["quantity"]
            revenue[product] = revenue.get(product, 0) + item["quantity"] * item["unit_price"]["amount_minor"]
    price_changes = 0
    for product, initial in ledger.products.items():
        status, stock = retrying(lambda: admin.call("GET", f"/api/inventory/{product}"))
        if status != 200:
            problems.append(f"stock of {product}: {status} {stock}")
            continue
        if stock["reserved"] != 0:
            problems.append(f"{stock['reserved']} of {product} still reserved")
        if stock["available"] + sold.get(product, 0) != initial:
            problems.append(
                f"stock of {product}: {stock['available']} available + "
                f"{sold.get(product, 0)} sold != {initial}"
            )
        status, current = retrying(lambda: admin.call("GET", f"/api/products/{product}"))
        if status == 200:
            price_changes += current["version"] - 1
    # Money.
    for client in customers:
        status, wallet = retrying(lambda: client.call("GET", "/api/wallet"))
        topped = ledger.top_ups.get(client.email, 0)
        if status == 404 and topped == 0:
            continue
        if status != 200:
            problems.append(f"wallet of {client.email}: {status} {wallet}")
            continue
        if wallet["frozen"]["amount_minor"] != 0:
            problems.append(f"{wallet['frozen']['amount_minor']} frozen in {client.email}'s wallet")
        customer_id = client.customer_id
        if wallet["balance"]["amount_minor"] != topped - spent.get(customer_id, 0):
            problems.append(
                f"wallet of {client.email}: balance {wallet['balance']['amount_minor']} != "
                f"{topped} topped up - {spent.get(customer_id, 0)} spent"
            )
    # Events, each delivered once.
    status, text = retrying(lambda: admin.call("GET", "/metrics"))
    if metric(text or "", "outbox_pending") != 0:
        problems.append(f"outbox_pending {metric(text or '', 'outbox_pending')}")
    if metric(text or "", "outbox_dead_letters") not in (0, None):
        problems.append(f"outbox_dead_letters {metric(text, 'outbox_dead_letters')}")
    today = datetime.datetime.now(datetime.timezone.utc).date()
    span = f"from={today - datetime.timedelta(days=1)}&to={today}"
    status, report = retrying(lambda: admin.call("GET", f"/api/reports/sales?{span}"))
    if status != 200:
        problems.append(f"sales report: {status} {report}")
        return problems
    added = sum(day["products_added"] for day in report["days"])
    if added != len(ledger.products):
        problems.append(f"report: {added} products added, {len(ledger.products)} created")
    changes = sum(day["price_changes"] for day in report["days"])
    if changes != price_changes:
        problems.append(f"report: {changes} price changes, products' versions say {price_changes}")
    reported_units, reported_revenue = {}, {}
    for line in report["sales"]:
        product = line["product_id"]
        reported_units[product] = reported_units.get(product, 0) + line["units"]
        reported_revenue[product] = reported_revenue.get(product, 0) + line["revenue"]["amount_minor"]
    for product in set(sold) | set(reported_units):
        if reported_units.get(product, 0) != sold.get(product, 0):
            problems.append(
                f"report: {reported_units.get(product, 0)} units of {product}, orders say {sold.get(product, 0)}"
            )
        if reported_revenue.get(product, 0) != revenue.get(product, 0):
            problems.append(
                f"report: revenue {reported_revenue.get(product, 0)} of {product}, orders say {revenue.get(product, 0)}"
            )
    for consumer in ("sales_report", "inventory_stock", "web_catalog_cache"):
        status, body = retrying(
            lambda: admin.call("GET", f"/api/admin/consumers/{consumer}/dead-letters")
        )
        if status == 200 and body.get("items"):
            problems.append(f"{len(body['items'])} dead letters of consumer {consumer}")
    return problems


def published_by(shop):
    """Events `shop`'s relay has published since it started (0 when down)."""
    try:
        status, text = request(shop.base, "GET", "/metrics", timeout=5)
    except Unreachable:
        return 0
    value = metric(text, "outbox_published_total") if status == 200 and isinstance(text, str) else None
    return int(value or 0)


def databases(work, postgres, run):
    """The shop's three databases: SQLite files in `work`, or fresh
    PostgreSQL databases on the server `postgres` names (dropped by `drop`)."""
    names = ("shop", "inventory", "wallet")
    if not postgres:
        return {name: f"sqlite://{work}/{name}.db?mode=rwc" for name in names}, lambda: None
    server = postgres.rsplit("/", 1)[0]
    created = []

    def psql(statement):
        subprocess.run(["psql", "-q", postgres, "-c", statement], check=True, capture_output=True)

    def drop():
        for database in created:
            try:
                psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            except subprocess.CalledProcessError:
                pass

    urls = {}
    for name in names:
        database = f"strata_crash_{run.lower()}_{name}"
        psql(f'CREATE DATABASE "{database}"')
        created.append(database)
        urls[name] = f"{server}/{database}"
    return urls, drop


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shop", required=True, help="the shop binary")
    parser.add_argument(
        "--redis",
        help="Redis URL: events go through Redis Streams, which outlive the process; "
        "without it, through the in-process bus, which loses what it had not delivered",
    )
    parser.add_argument(
        "--postgres",
        help="PostgreSQL URL of a server where databases may be created; SQLite files without it",
    )
    parser.add_argument("--instances", type=int, default=1, help="shop processes (more than one needs --postgres)")
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--customers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--settle", type=float, default=90, help="seconds recovery may take")
    args = parser.parse_args()
    # Stopped from outside: the shops are stopped and the databases dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.instances > 1 and not (args.postgres and args.redis):
        parser.error("more than one instance needs --postgres and --redis")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    run = uuid.uuid4().hex[:8].upper()
    print(
        f"seed {seed}, {args.kills} kills, {args.instances} instance(s) on "
        f"{'PostgreSQL' if args.postgres else 'SQLite'}, {args.customers} customers",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as work:
        log = open(os.path.join(work, "shop.log"), "ab")
        urls, drop = databases(work, args.postgres, run)
        prefix = f"crash-{run.lower()}"
        shops = [
            Shop(args.shop, urls, args.redis, prefix, free_port(), free_port(), log)
            for _ in range(args.instances)
        ]
        if args.instances > 1:
            for shop in shops:
                shop.small_pools()
        ledger = Ledger()
        try:
            for shop in shops:
                shop.start()
            admin = Client(shops, ADMIN_EMAIL, ADMIN_PASSWORD, ledger)
            customers = register_customers(shops, args.customers, f"{run.lower()}@crash.test", ledger)
            load = Load(admin, customers, ledger, run)
            started = time.monotonic()
            for kill in range(1, args.kills + 1):
                time.sleep(random.uniform(0.3, 2.5))
                victim = random.choice(shops)
                victim.kill()
                killed_at = time.monotonic()
                time.sleep(random.uniform(0.0, 0.5))
                victim.start()
                restart = time.monotonic() - killed_at
                # Let the clients get their final answers, then hold them and
                # let the shop recover.
                time.sleep(random.uniform(0.5, 1.5))
                load.hold()
                waited_on = settle(admin, customers, ledger, args.settle, f"after kill {kill}")
                recovered = time.monotonic() - killed_at
                print(
                    f"kill {kill}"
                    + (f" (instance {shops.index(victim) + 1})" if len(shops) > 1 else "")
                    + f": up again in {restart:.1f} s, recovered and checked in "
                    f"{recovered:.1f} s; {len(ledger.orders)} orders, {len(ledger.products)} "
                    f"products, {sum(ledger.top_ups.values())} topped up"
                    + (f"; last waited for: {'; '.join(waited_on[:3])}" if waited_on else ""),
                    flush=True,
                )
                load.check()
                load.pause.clear()
            load.end()
            published = [shop.published + published_by(shop) for shop in shops]
            if len(shops) > 1 and 0 in published:
                raise Failure(f"an instance's relay published nothing: {published}")
            print(
                f"{args.kills} kills in {time.monotonic() - started:.0f} s: "
                f"{ledger.requests} keyed requests answered ({ledger.interrupted} of them "
                f"cut off by a kill and retried, {ledger.in_use} answered \"in use\" until "
                f"a dead process's claim ran out); events published by instance: "
                f"{', '.join(map(str, published))}; every invariant held",
                flush=True,
            )
        except Failure as failure:
            log.flush()
            print(f"FAILED: {failure}", file=sys.stderr)
            print(f"(seed {seed}) the shops' last log lines:", file=sys.stderr)
            with open(os.path.join(work, "shop.log"), "rb") as lines:
                for line in lines.read().decode(errors="replace").splitlines()[-40:]:
                    print("  " + line, file=sys.stderr)
            sys.exit(1)
        finally:
            for shop in shops:
                shop.stop()
            log.close()
            drop()


if __name__ == "__main__":
    main()
