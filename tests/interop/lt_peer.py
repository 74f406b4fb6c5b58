"""A libtorrent peer for tests/interop.rs: seeds or downloads one torrent on 127.0.0.1.

usage: lt_peer.py seed|leech TORRENT SAVE_DIR [PEER_IP:PORT]
       lt_peer.py create SOURCE TORRENT   (libtorrent's own torrent maker, 32 KiB pieces)
Prints "LISTEN <port>", then "SEEDING" once it has every piece (seed; runs until killed)
or "DONE" when the download is complete (leech; exit 0), exit 1 after the timeout.
DHT, LSD, UPnP, NAT-PMP, PEX and trackers are off: peers are connected directly.
LT_ENCRYPTION=forced makes every connection MSE with RC4 only (in_enc_policy and
out_enc_policy pe_forced, allowed_enc_level pe_rc4); LT_ENCRYPTION=disabled refuses MSE.
"""
import os
import sys
import time

import libtorrent as lt

if sys.argv[1] == "create":
    import os
    source, out = os.path.abspath(sys.argv[2]), sys.argv[3]
    fs = lt.file_storage()
    lt.add_files(fs, source)
    ct = lt.create_torrent(fs, 32 * 1024)
    ct.set_creator("libtorrent " + lt.__version__)
    lt.set_piece_hashes(ct, os.path.dirname(source))
    with open(out, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    sys.exit(0)

mode, torrent, save = sys.argv[1], sys.argv[2], sys.argv[3]
peer = sys.argv[4] if len(sys.argv) > 4 else ""
timeout = 120 if mode == "leech" else 600

ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    # We speak TCP only; without this libtorrent tries uTP first and waits for its timeout.
    "enable_outgoing_utp": False,
    "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
    "alert_mask": lt.alert.category_t.error_notification
    | lt.alert.category_t.peer_notification,
})
atp = lt.add_torrent_params()
atp.ti = lt.torrent_info(torrent)
atp.save_path = save
atp.trackers = []
atp.flags = (lt.torrent_flags.default_flags | lt.torrent_flags.override_trackers
             | lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
             | lt.torrent_flags.disable_pex) & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
encryption = os.environ.get("LT_ENCRYPTION", "")
if encryption == "forced":
    ses.apply_settings({
        "out_enc_policy": int(lt.enc_policy.pe_forced),
        "in_enc_policy": int(lt.enc_policy.pe_forced),
        "allowed_enc_level": int(lt.enc_level.pe_rc4),
        "prefer_rc4": True,
    })
elif encryption == "disabled":
    ses.apply_settings({
        "out_enc_policy": int(lt.enc_policy.pe_disabled),
        "in_enc_policy": int(lt.enc_policy.pe_disabled),
    })
elif encryption:
    sys.exit("LT_ENCRYPTION must be forced or disabled")
h = ses.add_torrent(atp)
for _ in range(200):
    if ses.listen_port():
        break
    time.sleep(0.05)
print("LISTEN", ses.listen_port(), flush=True)


def connect():
    if peer:
        host, port = peer.rsplit(":", 1)
        h.connect_peer((host.strip("[]"), int(port)))


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
