"""libtorrent over uTP only, for crates/utp/tests/libtorrent.rs (run with /usr/bin/python3).

usage: lt_utp.py seed|leech DATA_FILE SAVE_DIR [PEER_IP:PORT]
Makes a torrent of DATA_FILE (16 KiB pieces) and prints "INFOHASH <hex>". seed: seeds it from
DATA_FILE's directory; leech: downloads it into SAVE_DIR from PEER (dialled over uTP).
TCP is off both ways (enable_outgoing_tcp/enable_incoming_tcp false), so is encryption (the
test speaks plain BitTorrent), DHT, LSD, UPnP, NAT-PMP, PEX and trackers. Prints
"LISTEN <port>" (its uTP port), then "SEEDING" (seed; runs until killed) or "DONE" when the
download is complete and hash-checked (leech; exit 0); exit 1 after the timeout.
"""
import os
import sys
import time

import libtorrent as lt

mode, data_file, save = sys.argv[1:4]
peer = sys.argv[4] if len(sys.argv) > 4 else ""
timeout = 120 if mode == "leech" else 600

fs = lt.file_storage()
lt.add_files(fs, os.path.abspath(data_file))
ct = lt.create_torrent(fs, 16 * 1024)
lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(data_file)))
ti = lt.torrent_info(lt.bencode(ct.generate()))
print("INFOHASH", str(ti.info_hashes().v1), flush=True)

ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_outgoing_tcp": False,
    "enable_incoming_tcp": False,
    "enable_outgoing_utp": True,
    "enable_incoming_utp": True,
    "out_enc_policy": int(lt.enc_policy.pe_disabled),
    "in_enc_policy": int(lt.enc_policy.pe_disabled),
    "allow_multiple_connections_per_ip": True,
    "alert_mask": lt.alert.category_t.error_notification
    | lt.alert.category_t.peer_notification,
})
atp = lt.add_torrent_params()
atp.ti = ti
atp.save_path = os.path.dirname(os.path.abspath(data_file)) if mode == "seed" else save
atp.trackers = []
atp.flags = (lt.torrent_flags.default_flags | lt.torrent_flags.override_trackers
             | lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
             | lt.torrent_flags.disable_pex) & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
h = ses.add_torrent(atp)
for _ in range(200):
    if ses.listen_port():
        break
    time.sleep(0.05)
print("LISTEN", ses.listen_port(), flush=True)


def connect():
    if peer:
        host, port = peer.rsplit(":", 1)
        h.connect_peer((host, int(port)))


connect()
start = time.time()
last_connect = start
said_seeding = False
while time.time() - start < timeout:
    for a in ses.pop_alerts():
        print("alert:", a.message(), file=sys.stderr, flush=True)
    st = h.status()
    if st.is_seeding and mode == "leech":
        print("DONE", flush=True)
        sys.exit(0)
    if st.is_seeding and not said_seeding:
        said_seeding = True
        print("SEEDING", flush=True)
    if peer and st.num_peers == 0 and time.time() - last_connect > 2:
        last_connect = time.time()
        connect()
    time.sleep(0.1)
print("timeout; state", h.status().state, "progress", h.status().progress, file=sys.stderr)
sys.exit(1)
