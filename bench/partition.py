#!/usr/bin/env python3
"""Cuts the network between the shop and its inventory and wallet, each run as
a process of its own in a network namespace of its own, while customers check
out and top up and an administrator edits the catalog; restores it, and after
each recovery checks the invariants bench/crash.py checks after a kill: every
order final, no distributed transaction unfinished or waiting for an
operator, no idempotency key stuck, stock and money balanced, every event
counted once by the sales report.

Each cut takes the namespace's end of its veth pair down, so packets are
dropped without an answer (what a pulled cable or a partitioned switch does):
calls hang until their timeouts, and a request sent before the cut may reach
the participant late, when its link is back. Cuts last 1-10 s and hit the
inventory, the wallet or both, at random moments of a stream of checkouts, so
some fall on tries (the order is cancelled for `timeout`) and some on
confirms (the order is answered `pending` and ends by itself).

Then one cut outlasts the coordinator's retry bound: the transactions it
holds up must be flagged for an operator, and stay so after the link is back,
until the administrator retries them; then the invariants hold again.

Needs root (`ip netns`, veth pairs) and redis-server: a Redis of its own,
listening on the host's end of each pair, carries the events between the
three processes. Run by bench/partition.sh, which builds the shop.
Standard library only.
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import crash  # noqa: E402
from crash import Failure  # noqa: E402

CONTEXT_API_PORT = 9080
CONTEXT_BRANCH_PORT = 9081


def ip(*args, namespace=None):
    command = ["ip"]
    if namespace:
        command += ["netns", "exec", namespace, "ip"]
    subprocess.run(command + list(args), check=True, capture_output=True)


class Host:
    """A network namespace joined to this one by a veth pair: `address`
    inside it, `gateway` on this side."""

    def __init__(self, name, device, subnet):
        self.name, self.device = name, device
        self.gateway, self.address = f"{subnet}.1", f"{subnet}.2"

    def create(self):
        ip("netns", "add", self.name)
        ip("link", "add", self.device + "h", "type", "veth", "peer", "name", self.device + "n")
        ip("link", "set", self.device + "n", "netns", self.name)
        ip("addr", "add", f"{self.gateway}/30", "dev", self.device + "h")
        ip("link", "set", self.device + "h", "up")
        ip("addr", "add", f"{self.address}/30", "dev", self.device + "n", namespace=self.name)
        ip("link", "set", self.device + "n", "up", namespace=self.name)
        ip("link", "set", "lo", "up", namespace=self.name)

    def cut(self):
        ip("link", "set", self.device + "n", "down", namespace=self.name)

    def restore(self):
        ip("link", "set", self.device + "n", "up", namespace=self.name)

    def remove(self):
        for args in (["link", "del", self.device + "h"], ["netns", "del", self.name]):
            try:
                ip(*args)
            except subprocess.CalledProcessError:
                pass


def subnet_free(prefix):
    routes = subprocess.run(["ip", "route"], check=True, capture_output=True, text=True).stdout
    return f" {prefix}." not in " " + routes.replace("\n", " ")


def wait_until_final(admin, seconds):
    """Waits until no transaction is prepared, submitted or aborting unless
    it is flagged; returns the flagged ones."""
    deadline = time.monotonic() + seconds
    while True:
        moving, flagged = [], []
        for state in ("prepared", "submitted", "aborting"):
            for transaction in crash.pages(admin, f"/api/admin/transactions?state={state}"):
                (flagged if transaction["flagged"] else moving).append(transaction)
        if not moving:
            return flagged
        if time.monotonic() > deadline:
            raise Failure(f"{len(moving)} transactions still unfinished after {seconds} s")
        time.sleep(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shop", required=True, help="the shop binary")
    parser.add_argument("--cuts", type=int, default=30)
    parser.add_argument("--customers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--settle", type=float, default=90, help="seconds recovery may take")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.geteuid() != 0:
        print("bench/partition.py needs root: it makes network namespaces", file=sys.stderr)
        sys.exit(2)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    run = uuid.uuid4().hex[:6]
    # A /16 no route of this machine's uses yet.
    candidates = [f"10.{second}" for second in range(200, 250)]
    random.shuffle(candidates)
    network = next((c for c in candidates if subnet_free(c)), None)
    if network is None:
        raise SystemExit("no free 10.x.0.0/16 for the test's hosts")
    hosts = {
        "inventory": Host(f"strata-{run}-inventory", f"sp{run}i", f"{network}.1"),
        "wallet": Host(f"strata-{run}-wallet", f"sp{run}w", f"{network}.2"),
    }
    print(
        f"seed {seed}, {args.cuts} cuts, inventory at {hosts['inventory'].address} and wallet at "
        f"{hosts['wallet'].address} in namespaces of their own, {args.customers} customers",
        flush=True,
    )

    processes = []
    redis = None
    with tempfile.TemporaryDirectory() as work:
        logs = {name: open(os.path.join(work, f"{name}.log"), "ab") for name in ("shop", *hosts)}
        try:
            for host in hosts.values():
                host.create()
            redis_port = crash.free_port()
            redis = subprocess.Popen(
                [
                    "redis-server",
                    "--port", str(redis_port),
                    "--bind", " ".join(["127.0.0.1"] + [h.gateway for h in hosts.values()]),
                    "--protected-mode", "no",
                    "--save", "",
                    "--appendonly", "no",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            prefix = f"partition-{run}"
            contexts = {}
            for name, host in hosts.items():
                process = crash.Shop(
                    args.shop,
                    {
                        "shop": f"sqlite://{work}/{name}-service.db?mode=rwc",
                        "inventory": f"sqlite://{work}/{name}-inventory.db?mode=rwc",
                        "wallet": f"sqlite://{work}/{name}-wallet.db?mode=rwc",
                    },
                    f"redis://{host.gateway}:{redis_port}",
                    prefix,
                    CONTEXT_API_PORT,
                    CONTEXT_BRANCH_PORT,
                    logs[name],
                    host=host.address,
                    command=["ip", "netns", "exec", host.name, args.shop, "serve", "--only", name],
                )
                contexts[name] = process
                processes.append(process)
            shop = crash.Shop(
                args.shop,
                {name: f"sqlite://{work}/{name}.db?mode=rwc" for name in ("shop", "inventory", "wallet")},
                f"redis://127.0.0.1:{redis_port}",
                prefix,
                crash.free_port(),
                crash.free_port(),
                logs["shop"],
            )
            shop.env["SHOP_INVENTORY__URL"] = f"http://{hosts['inventory'].address}:{CONTEXT_BRANCH_PORT}"
            shop.env["SHOP_WALLET__URL"] = f"http://{hosts['wallet'].address}:{CONTEXT_BRANCH_PORT}"
            # Flagged at the sixth failed retry in a row: with pauses of
            # 0.4 s doubling to 12.8 s and calls that time out after 2 s, about
            # 25 s after the transaction's timeout, longer than any cut but
            # the last.
            shop.env["SHOP_TCC__MAX_DOUBLINGS"] = "5"
            processes.append(shop)
            for process in processes:
                process.start()

            routes = {
                "/api/inventory": contexts["inventory"].base,
                "/api/wallet": contexts["wallet"].base,
            }
            ledger = crash.Ledger()
            admin = crash.Client([shop], crash.ADMIN_EMAIL, crash.ADMIN_PASSWORD, ledger, routes)
            customers = crash.register_customers(
                [shop], args.customers + 1, f"{run}@partition.test", ledger, routes
            )
            for client in customers:
                # A top-up waits for the wallet's link through the longest cut.
                client.stuck_after = 150
            # One customer runs no loop: it checks out once the wallet is cut
            # for a minute, so that cut holds up a transaction whatever the
            # others are doing then (all of them may be waiting on top-ups).
            witness = customers[-1]

            load = crash.Load(admin, customers[:-1], ledger, run.upper())


            started = time.monotonic()
            for cut in range(1, args.cuts + 1):
                time.sleep(random.uniform(0.5, 2.0))
                targets = random.choice([["inventory"], ["wallet"], ["inventory", "wallet"]])
                # Shorter than a transaction's timeout (5 s) half the time:
                # confirms and cancels wait it out; longer otherwise: tries
                # time out and their transactions abort.
                seconds = random.uniform(1, 4) if random.random() < 0.5 else random.uniform(6, 10)
                before = dict(ledger.checkouts)
                for name in targets:
                    hosts[name].cut()
                time.sleep(seconds)
                for name in targets:
                    hosts[name].restore()
                restored = time.monotonic()
                time.sleep(random.uniform(0.5, 1.5))
                load.hold()
                crash.settle(admin, customers, ledger, args.settle, f"after cut {cut}")
                during = {
                    answer: count - before.get(answer, 0)
                    for answer, count in ledger.checkouts.items()
                    if count != before.get(answer, 0)
                }
                print(
                    f"cut {cut}: {' and '.join(targets)} for {seconds:.1f} s, recovered and checked "
                    f"{time.monotonic() - restored:.1f} s after the link was back; checkouts "
                    f"answered meanwhile: {', '.join(f'{n} x {a}' for a, n in sorted(during.items())) or 'none'}",
                    flush=True,
                )
                load.check()
                load.pause.clear()

            # Past the retry bound: the wallet cut for a minute while
            # checkouts go on. Whatever its transactions could not finish waits for an
            # operator, link or no link, until it is retried.
            hosts["wallet"].cut()
            cut_at = time.monotonic()
            crash.checkout(witness, ledger, str(uuid.uuid4()))
            time.sleep(max(0.0, 60 - (time.monotonic() - cut_at)))
            hosts["wallet"].restore()
            time.sleep(1)
            load.hold()
            flagged = wait_until_final(admin, args.settle)
            if not flagged:
                raise Failure("a minute's cut, past the retry bound, flagged no transaction for an operator")
            time.sleep(5)
            still = wait_until_final(admin, args.settle)
            if {t["gid"] for t in still} != {t["gid"] for t in flagged}:
                raise Failure("flagged transactions moved on without an operator")
            for transaction in flagged:
                status, body = admin.call("POST", f"/api/admin/transactions/{transaction['gid']}/retry")
                if status not in (200, 202, 204):
                    raise Failure(f"retry of {transaction['gid']}: {status} {body}")
            crash.settle(admin, customers, ledger, args.settle, "after the operator retried the flagged transactions")
            print(
                f"cut past the retry bound: wallet for 60 s; {len(flagged)} transactions flagged, still "
                f"flagged 5 s after the link was back, finished once retried",
                flush=True,
            )
            load.end()
            print(
                f"{args.cuts} cuts and one past the bound in {time.monotonic() - started:.0f} s: "
                f"{ledger.requests} keyed requests answered ({ledger.interrupted} of them retried "
                f"after no answer came); checkouts answered: "
                f"{', '.join(f'{n} x {a}' for a, n in sorted(ledger.checkouts.items()))}; "
                f"every invariant held",
                flush=True,
            )
        except Failure as failure:
            print(f"FAILED: {failure}", file=sys.stderr)
            print(f"(seed {seed}) the processes' last log lines:", file=sys.stderr)
            for name, log in logs.items():
                log.flush()
                with open(os.path.join(work, f"{name}.log"), "rb") as lines:
                    print(f" {name}:", file=sys.stderr)
                    for line in lines.read().decode(errors="replace").splitlines()[-15:]:
                        print("  " + line, file=sys.stderr)
            sys.exit(1)
        finally:
            for host in hosts.values():
                try:
                    host.restore()
                except subprocess.CalledProcessError:
                    pass
            for process in processes:
                process.stop()
            if redis:
                redis.terminate()
                redis.wait()
            for host in hosts.values():
                host.remove()
            for log in logs.values():
                log.close()


if __name__ == "__main__":
    main()
