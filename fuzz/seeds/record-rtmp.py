"""Records what RTMP clients send: listens on 127.0.0.1:19351, forwards each connection to the
RTMP server on 127.0.0.1:19350 (nginx-rtmp, nginx-rtmp.conf), and writes the client → server
bytes of connection N to OUT_DIR/conn-N.bin. Seeds for fuzz/corpus/rtmp_session (README.md).

    python3 record-rtmp.py OUT_DIR
"""
import itertools
import socket
import sys
import threading

out_dir = sys.argv[1]
counter = itertools.count()


def pump(src, dst, record):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if record is not None:
                record.write(data)
                record.flush()
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(client):
    n = next(counter)
    upstream = socket.create_connection(("127.0.0.1", 19350))
    with open(f"{out_dir}/conn-{n}.bin", "wb") as record:
        back = threading.Thread(target=pump, args=(upstream, client, None))
        back.start()
        pump(client, upstream, record)
        back.join()
    client.close()
    upstream.close()


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 19351))
listener.listen(8)
while True:
    client, _ = listener.accept()
    threading.Thread(target=serve, args=(client,), daemon=True).start()
