# A raw WebSocket client for callgrind_echo.sh: K echoes of SIZE-byte binary messages (default 20).
import socket, sys, struct, os
host, port = sys.argv[1].rsplit(':',1); k=int(sys.argv[2]); inflight=int(sys.argv[3]) if len(sys.argv)>3 else 1
size=int(sys.argv[4]) if len(sys.argv)>4 else 20
s = socket.create_connection((host, int(port))); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
buf=b""
while b"\r\n\r\n" not in buf: buf+=s.recv(1000)
buf=buf[buf.index(b"\r\n\r\n")+4:]
payload=b"x"*size; mask=b"\x00\x00\x00\x00"
head=bytes([0x82,0x80|size]) if size<126 else bytes([0x82,0x80|126])+struct.pack(">H",size) if size<65536 else bytes([0x82,0x80|127])+struct.pack(">Q",size)
frame=head+mask+payload
want=len(head)+len(payload)
done=0
while done<k:
    n=min(inflight,k-done)
    s.sendall(frame*n)
    need=want*n
    while len(buf)<need: buf+=s.recv(65536)
    buf=buf[need:]; done+=n
s.close()
