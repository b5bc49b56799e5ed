# A raw WebSocket client for callgrind_echo.sh: K echoes of 20-byte binary messages.
import socket, sys, struct, os
host, port = sys.argv[1].rsplit(':',1); k=int(sys.argv[2]); inflight=int(sys.argv[3]) if len(sys.argv)>3 else 1
s = socket.create_connection((host, int(port))); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
buf=b""
while b"\r\n\r\n" not in buf: buf+=s.recv(1000)
buf=buf[buf.index(b"\r\n\r\n")+4:]
payload=b"x"*20; mask=b"\x00\x00\x00\x00"
frame=bytes([0x82,0x80|len(payload)])+mask+payload
want=2+len(payload)
done=0
while done<k:
    n=min(inflight,k-done)
    s.sendall(frame*n)
    need=want*n
    while len(buf)<need: buf+=s.recv(65536)
    buf=buf[need:]; done+=n
s.close()
