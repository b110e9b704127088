# Counts the frames on a network interface whose bytes contain a text, until a stop
# file appears (or a time limit): the TLS test's look at the wire.
#   sniff.py IFACE TEXT STOPFILE LIMIT_SECONDS   -> prints "frames=N matching=M"
import os
import socket
import sys
import time

iface, text, stop, limit = sys.argv[1], sys.argv[2].encode(), sys.argv[3], float(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # every protocol
s.bind((iface, 0))
s.settimeout(0.1)
print("listening", flush=True)
frames = matching = 0
end = time.monotonic() + limit
while time.monotonic() < end and not os.path.exists(stop):
    try:
        data = s.recv(65535)
    except socket.timeout:
        continue
    frames += 1
    if text in data:
        matching += 1
print(f"frames={frames} matching={matching}", flush=True)
