//! A WebSocket peer on a blocking std socket that speaks the protocol by hand, so a test can
//! script any behaviour, misbehaviour included: never reading, never answering Pings,
//! flooding, closing and then never reading again.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fd::AsFd;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::frame::{self, Frame, op};

/// The `Sec-WebSocket-Key` every raw client sends (RFC 6455 §1.3's example nonce).
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// An HTTP head: the start line and the header fields.
#[derive(Clone, Debug)]
pub struct Head {
    /// The request or status line.
    pub start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(bytes: &[u8]) -> Head {
        let text = std::str::from_utf8(bytes).expect("an ASCII HTTP head");
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        let start = lines.next().expect("a start line").to_owned();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("a header field");
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        Head { start, headers }
    }

    /// The value of header field `name` (case-insensitive; the first one).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The status code of a response head.
    pub fn status(&self) -> u16 {
        let code = self.start.split(' ').nth(1).expect("a status code");
        code.parse().expect("a numeric status code")
    }
}

/// How a connection ended, seen from the raw peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The other side's FIN (end of stream).
    Eof,
    /// A reset (or another socket error).
    Reset,
}

/// The raw peer: a blocking socket, the bytes read but not yet parsed, and its role.
#[derive(Debug)]
pub struct RawPeer {
    stream: TcpStream,
    /// The raw peer is the client: it masks what it sends and expects unmasked frames.
    client: bool,
    input: Vec<u8>,
    frames_sent: u32,
}

impl RawPeer {
    /// Connects to `addr` (with both socket buffers pinned to `buffers` bytes before
    /// connecting, when given) and runs the client side of the opening handshake, offering
    /// `protocols`. Returns the peer and the server's response head, for the test to check.
    pub fn connect(
        addr: SocketAddr,
        protocols: &[&str],
        buffers: Option<usize>,
    ) -> (RawPeer, Head) {
        let stream = match buffers {
            Some(size) => {
                let fd = rustix::net::socket_with(
                    AddressFamily::INET,
                    SocketType::STREAM,
                    SocketFlags::CLOEXEC,
                    None,
                )
                .expect("socket");
                pin_buffers(&fd, size);
                rustix::net::connect(&fd, &addr).expect("connect");
                TcpStream::from(fd)
            }
            None => TcpStream::connect(addr).expect("connect"),
        };
        let mut peer = RawPeer::client(stream);
        peer.write_all(&request(addr, "/", protocols));
        let head = peer.read_head();
        (peer, head)
    }

    /// A raw client over a connected stream; its opening request is the caller's business
    /// ([`request`], then [`read_head`](RawPeer::read_head)).
    pub fn client(stream: TcpStream) -> RawPeer {
        stream.set_nodelay(true).expect("nodelay");
        RawPeer {
            stream,
            client: true,
            input: Vec::new(),
            frames_sent: 0,
        }
    }

    /// Accepts one connection on `listener` within `timeout` and answers its opening request
    /// with a valid 101, selecting the subprotocol `choose` picks from the request head.
    /// Returns the peer and the request head, for the test to check.
    pub fn accept(
        listener: &TcpListener,
        timeout: Duration,
        choose: impl FnOnce(&Head) -> Option<String>,
    ) -> (RawPeer, Head) {
        let mut fds = [PollFd::new(listener, PollFlags::IN)];
        let ready = poll(&mut fds, Some(&timespec(timeout))).expect("poll the listener");
        assert!(ready > 0, "no connection arrived within {timeout:?}");
        let (stream, _) = listener.accept().expect("accept");
        stream.set_nodelay(true).expect("nodelay");
        let mut peer = RawPeer {
            stream,
            client: false,
            input: Vec::new(),
            frames_sent: 0,
        };
        let head = peer.read_head();
        let key = head
            .header("sec-websocket-key")
            .expect("a Sec-WebSocket-Key");
        let mut response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n",
            tether::handshake::accept_key(key)
        );
        if let Some(protocol) = choose(&head) {
            response.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
        }
        response.push_str("\r\n");
        peer.write_all(response.as_bytes());
        (peer, head)
    }

    /// Reads an HTTP head (request or response); what follows it stays buffered for frames.
    pub fn read_head(&mut self) -> Head {
        let deadline = Instant::now() + crate::LIMIT;
        loop {
            if let Some(at) = self.input.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = Head::parse(&self.input[..at]);
                self.input.drain(..at + 4);
                return head;
            }
            assert!(self.input.len() < 64 << 10, "an HTTP head over 64 KiB");
            match self.fill(deadline) {
                Ok(0) => panic!("the connection ended during the opening handshake"),
                Ok(_) => {}
                Err(e) => panic!("reading the opening handshake: {e}"),
            }
        }
    }

    /// Sends one whole frame (masked when this peer is the client).
    pub fn send(&mut self, opcode: u8, payload: &[u8]) {
        let bytes = self.encode(opcode, payload);
        self.write_all(&bytes);
    }

    /// Sends a Close frame with `code` and `reason`.
    pub fn send_close(&mut self, code: u16, reason: &str) {
        self.send(op::CLOSE, &frame::close_payload(code, reason));
    }

    /// One frame as this peer would send it (masked when it is the client).
    pub fn encode(&mut self, opcode: u8, payload: &[u8]) -> Vec<u8> {
        self.frames_sent = self.frames_sent.wrapping_add(1);
        let n = self.frames_sent.to_le_bytes();
        let mask = self
            .client
            .then_some([n[0] ^ 0x5A, n[1] ^ 0xC3, n[2], 0x96]);
        frame::encode(opcode, payload, mask)
    }

    /// Writes `bytes` whole, panicking on failure.
    pub fn write_all(&mut self, bytes: &[u8]) {
        self.stream
            .set_write_timeout(Some(crate::LIMIT))
            .expect("write timeout");
        self.stream.write_all(bytes).expect("the raw peer's write");
    }

    /// The next frame within `timeout`, panicking on anything else. Checks the masking rule
    /// (RFC 6455 §5.1): a server's frames are unmasked, a client's are masked.
    pub fn read_frame(&mut self, timeout: Duration) -> Frame {
        match self.try_read_frame(timeout) {
            Ok(frame) => frame,
            Err(e) => panic!("the raw peer expected a frame within {timeout:?}: {e}"),
        }
    }

    /// The next frame within `timeout`; `UnexpectedEof` when the stream ended first.
    pub fn try_read_frame(&mut self, timeout: Duration) -> io::Result<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((frame, used)) = frame::parse(&self.input) {
                self.input.drain(..used);
                assert_eq!(
                    frame.masked, !self.client,
                    "RFC 6455 §5.1: clients mask their frames, servers do not ({frame:?})"
                );
                return Ok(frame);
            }
            if self.fill(deadline)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// The next `n` bytes (a response body after [`read_head`](RawPeer::read_head)), within
    /// [`LIMIT`](crate::LIMIT).
    pub fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + crate::LIMIT;
        while self.input.len() < n {
            match self.fill(deadline) {
                Ok(0) => panic!("the stream ended before {n} bytes arrived"),
                Ok(_) => {}
                Err(e) => panic!("the raw peer expected {n} bytes: {e}"),
            }
        }
        self.input.drain(..n).collect()
    }

    /// Ends the peer's side of the TCP connection (a FIN), without a Close frame.
    pub fn end_writing(&mut self) {
        self.stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shut the raw peer's writing down");
    }

    /// Reads and discards until the connection ends; `None` if it is still open at `timeout`.
    pub fn wait_end(&mut self, timeout: Duration) -> Option<End> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.fill(deadline) {
                Ok(0) => return Some(End::Eof),
                Ok(_) => self.input.clear(),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None;
                }
                Err(_) => return Some(End::Reset),
            }
        }
    }

    /// Waits until the other side ends the connection (FIN or reset), without reading a byte,
    /// so the data it sent stays unread; `None` if it is still open at `timeout`.
    pub fn poll_end(&self, timeout: Duration) -> Option<End> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [PollFd::new(&self.stream, PollFlags::RDHUP)];
            poll(&mut fds, Some(&timespec(left))).expect("poll the raw peer's socket");
            let events = fds[0].revents();
            if events.intersects(PollFlags::ERR | PollFlags::HUP) {
                return Some(End::Reset);
            }
            if events.contains(PollFlags::RDHUP) {
                return Some(match rustix::net::sockopt::socket_error(&self.stream) {
                    Ok(Err(_)) => End::Reset,
                    _ => End::Eof,
                });
            }
            if left.is_zero() {
                return None;
            }
        }
    }

    /// Writes `frame` over and over until a write makes no progress for `stall` (the other
    /// side stopped reading) or `cap` bytes went out. Returns the bytes written.
    pub fn write_until_blocked(&mut self, frame: &[u8], stall: Duration, cap: usize) -> usize {
        self.stream
            .set_write_timeout(Some(stall))
            .expect("write timeout");
        let (mut total, mut at) = (0, 0);
        while total < cap {
            match self.stream.write(&frame[at..]) {
                Ok(n) => {
                    total += n;
                    at = (at + n) % frame.len();
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return total;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("the raw peer's write failed after {total} bytes: {e}"),
            }
        }
        total
    }

    /// Reads once into the input buffer, waiting at most until `deadline`.
    fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut buf = [0u8; 64 << 10];
        let n = self.stream.read(&mut buf)?;
        self.input.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// A client's opening request for `addr`, offering `protocols`, with the fixed [`KEY`].
pub fn request(addr: SocketAddr, path: &str, protocols: &[&str]) -> Vec<u8> {
    let mut head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        head.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            protocols.join(", ")
        ));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Pins a socket's receive and send buffers to about `size` bytes (the kernel doubles it for
/// bookkeeping), which also turns their autotuning off: what a test counts is then the
/// adapter's buffering, not the kernel's. Sockets accepted from a pinned listener inherit it.
pub fn pin_buffers(fd: impl AsFd, size: usize) {
    rustix::net::sockopt::set_socket_recv_buffer_size(&fd, size).expect("SO_RCVBUF");
    rustix::net::sockopt::set_socket_send_buffer_size(&fd, size).expect("SO_SNDBUF");
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos().into(),
    }
}
