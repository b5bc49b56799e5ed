//! The accept loop when the process is out of file descriptors (EMFILE). Run it in a test
//! binary of its own: it lowers the process's open-files limit.

use std::net::TcpStream;
use std::time::Duration;

use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::frame::op;
use tether_io::ServerConfig;

use crate::harness::Adapter;
use crate::limits::{Exhausted, cpu_time};
use crate::raw::{RawPeer, request};
use crate::setup::{LIMIT, Serving};

/// How long the process stays out of descriptors.
const WINDOW: Duration = Duration::from_secs(1);
/// The CPU the whole process may burn meanwhile: a loop that retries `accept` at once burns
/// the whole window.
const CPU_BUDGET: Duration = Duration::from_millis(300);

/// While a connection waits and `accept` fails with EMFILE, the accept loop backs off (the
/// process uses little CPU) and keeps going: once descriptors are free again, the waiting
/// connection and a new one are both served.
pub fn accept_loop_backs_off_on_emfile<A: Adapter>() {
    let addr = Serving::start::<A>(ServerConfig::default()).echo_all();
    // A connection from before, kept open so no descriptor is freed during the window.
    let (mut before, response) = RawPeer::connect(addr, &[], None);
    assert_eq!(response.status(), 101, "{}", A::NAME);
    echo_once(&mut before, "before");
    // The socket that meets EMFILE on the server's side, made while descriptors are left.
    let socket = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .expect("socket");

    let exhausted = Exhausted::now();
    // The kernel completes the TCP handshake; the adapter's accept fails.
    rustix::net::connect(&socket, &addr).expect("connect");
    let mut waiting = RawPeer::client(TcpStream::from(socket));
    waiting.write_all(&request(addr, "/", &[]));
    let start = cpu_time();
    std::thread::sleep(WINDOW);
    let used = cpu_time() - start;
    drop(exhausted);

    assert!(
        used < CPU_BUDGET,
        "{}: the process used {used:?} of CPU in {WINDOW:?} of EMFILE: the accept loop \
         retries without backing off",
        A::NAME
    );
    let response = waiting.read_head();
    assert_eq!(
        response.status(),
        101,
        "{}: the connection that waited",
        A::NAME
    );
    echo_once(&mut waiting, "waited");
    let (mut after, response) = RawPeer::connect(addr, &[], None);
    assert_eq!(response.status(), 101, "{}: a new connection", A::NAME);
    echo_once(&mut after, "after");
    echo_once(&mut before, "still there");
}

fn echo_once(peer: &mut RawPeer, text: &str) {
    peer.send(op::TEXT, text.as_bytes());
    let frame = peer.read_frame(LIMIT);
    assert_eq!(
        (frame.opcode, frame.payload.as_slice()),
        (op::TEXT, text.as_bytes())
    );
}
