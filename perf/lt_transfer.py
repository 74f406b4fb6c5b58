#!/usr/bin/python3
"""libtorrent reference for perf/bench.sh: BitTorrent over TCP on loopback.

  /usr/bin/python3 perf/lt_transfer.py seed TORRENT DATA_DIR PORT
      checks the data, prints "seeding" when ready, seeds until killed
  /usr/bin/python3 perf/lt_transfer.py get TORRENT OUT_DIR SEED_PORT [OWN_PORT]
      downloads from 127.0.0.1:SEED_PORT (connect_peer, no tracker/DHT/LSD/UPnP/NAT-PMP),
      prints "wall_s=<s> goodput_mbit=<Mbit/s> bytes=<n>" and exits 0 when every piece is verified

Must run under Debian's /usr/bin/python3 (python3-libtorrent).
"""
import sys
import time

import libtorrent as lt


def session(port):
    return lt.session(
        {
            "listen_interfaces": f"127.0.0.1:{port}",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "alert_mask": lt.alert.category_t.error_notification,
            # one peer on loopback: allow it, never rate-limit it
            "allow_multiple_connections_per_ip": True,
            # plain BitTorrent over TCP: no uTP (its connect attempt to a TCP-only peer times
            # out first), no RC4 obfuscation (costs CPU that is not the protocol's)
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "out_enc_policy": int(lt.enc_policy.disabled),
            "in_enc_policy": int(lt.enc_policy.disabled),
        }
    )


def main():
    role, torrent = sys.argv[1], sys.argv[2]
    ti = lt.torrent_info(torrent)
    if role == "seed":
        data_dir, port = sys.argv[3], int(sys.argv[4])
        ses = session(port)
        p = lt.add_torrent_params()
        p.ti = ti
        p.save_path = data_dir
        # No seed_mode: libtorrent's lazy per-piece verification in seed_mode caps loopback
        # transfers at ~50 Mbit/s. Check the data first, then announce readiness.
        h = ses.add_torrent(p)
        while not h.status().is_seeding:
            time.sleep(0.05)
        print("seeding", flush=True)
        while True:
            time.sleep(1)
    elif role == "get":
        out_dir, seed_port = sys.argv[3], int(sys.argv[4])
        own_port = int(sys.argv[5]) if len(sys.argv) > 5 else seed_port + 1
        ses = session(own_port)
        p = lt.add_torrent_params()
        p.ti = ti
        p.save_path = out_dir
        t0 = time.monotonic()
        h = ses.add_torrent(p)
        h.connect_peer(("127.0.0.1", seed_port))
        last_connect = t0
        while True:
            s = h.status()
            if s.is_seeding or s.state == lt.torrent_status.seeding:
                break
            now = time.monotonic()
            if s.num_peers == 0 and now - last_connect > 2:
                h.connect_peer(("127.0.0.1", seed_port))
                last_connect = now
            if now - t0 > 1800:
                print("timeout", file=sys.stderr)
                sys.exit(1)
            time.sleep(0.02)
        wall = time.monotonic() - t0
        n = ti.total_size()
        print(f"wall_s={wall:.3f} goodput_mbit={n * 8 / wall / 1e6:.1f} bytes={n}", flush=True)
    else:
        sys.exit("usage: see docstring")


if __name__ == "__main__":
    main()
