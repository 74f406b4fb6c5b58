"""A libtorrent DHT node on 127.0.0.1 for tests/libtorrent.rs, controlled through stdin.

usage: lt_dht.py BOOTSTRAP_IP:PORT
stdin:  add HEX (a torrent with that info hash: announced to the DHT) | get_peers HEX | quit
stdout: LISTEN <port>, BOOTSTRAPPED, PEERS <hex> <ip:port>..., ANNOUNCED <hex> <ip:port>
        (someone announced to libtorrent). Exits after 120 s.
Loopback and private addresses are allowed in the routing table and in searches.
"""
import queue
import tempfile
import sys
import threading
import time

import libtorrent as lt

bootstrap = sys.argv[1]
ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": True,
    "dht_bootstrap_nodes": bootstrap,
    "dht_restrict_routing_ips": False,
    "dht_restrict_search_ips": False,
    "dht_prefer_verified_node_ids": False,
    "dht_ignore_dark_internet": False,
    "dht_upload_rate_limit": 1000000,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "alert_mask": lt.alert.category_t.all_categories,
})
for _ in range(200):
    if ses.listen_port():
        break
    time.sleep(0.05)
print("LISTEN", ses.listen_port(), flush=True)

commands = queue.Queue()


def read_stdin():
    for line in sys.stdin:
        commands.put(line.split())
    commands.put(["quit"])


threading.Thread(target=read_stdin, daemon=True).start()


def sha1(hex_):
    return lt.sha1_hash(bytes.fromhex(hex_))


start = time.time()
while time.time() - start < 120:
    try:
        cmd = commands.get(timeout=0.05)
    except queue.Empty:
        cmd = None
    if cmd:
        if cmd[0] == "quit":
            sys.exit(0)
        elif cmd[0] == "add":
            # The bindings cannot build dht_announce's flags: a magnet-style torrent makes
            # libtorrent announce itself (on its listen port) to the DHT instead.
            atp = lt.add_torrent_params()
            atp.info_hashes = lt.info_hash_t(sha1(cmd[1]))
            atp.save_path = tempfile.mkdtemp()
            ses.add_torrent(atp)
        elif cmd[0] == "get_peers":
            ses.dht_get_peers(sha1(cmd[1]))
    for a in ses.pop_alerts():
        if isinstance(a, lt.dht_bootstrap_alert):
            print("BOOTSTRAPPED", flush=True)
        elif isinstance(a, lt.dht_get_peers_reply_alert):
            peers = " ".join("%s:%d" % (ip, port) for ip, port in a.peers())
            print("PEERS", str(a.info_hash), peers, flush=True)
        elif isinstance(a, lt.dht_announce_alert):
            print("ANNOUNCED", str(a.info_hash), "%s:%d" % (a.ip, a.port), flush=True)
        elif not isinstance(a, (lt.dht_log_alert, lt.dht_pkt_alert)):
            print("alert:", a.message(), file=sys.stderr, flush=True)
        else:
            print("dht:", a.message(), file=sys.stderr, flush=True)
sys.exit(1)
