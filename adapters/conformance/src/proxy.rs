//! A forwarding TCP proxy on 127.0.0.1 port 0 that can turn the connections it carries into a
//! black hole (bytes read and dropped both ways, nothing closed, as a dead NAT would) while it
//! keeps forwarding the connections that come after.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How long a pump waits for bytes before it gives up on its connection.
const IDLE: Duration = Duration::from_secs(30);

/// The proxy; dropping it closes every connection it carries.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    links: Arc<Mutex<Vec<Link>>>,
}

struct Link {
    hole: Arc<AtomicBool>,
    sockets: [TcpStream; 2],
}

impl Proxy {
    /// Forwards every connection to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("proxy address");
        let links: Arc<Mutex<Vec<Link>>> = Arc::default();
        let registry = Arc::clone(&links);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let hole = Arc::new(AtomicBool::new(false));
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                pump(c2, s2, Arc::clone(&hole));
                pump(s3, c3, Arc::clone(&hole));
                let mut links = registry.lock().unwrap_or_else(|e| e.into_inner());
                links.push(Link {
                    hole,
                    sockets: [client, server],
                });
            }
        });
        Proxy { addr, links }
    }

    /// Every connection carried so far becomes a black hole; later ones are forwarded.
    pub fn black_hole(&self) {
        let links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        for link in links.iter() {
            link.hole.store(true, Ordering::SeqCst);
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.links.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        for link in links.iter() {
            for socket in &link.sockets {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Copies `from` to `to` until either ends; in a black hole, reads and drops, and passes no
/// end of stream on.
fn pump(mut from: TcpStream, mut to: TcpStream, hole: Arc<AtomicBool>) {
    thread::spawn(move || {
        let _ = from.set_read_timeout(Some(IDLE));
        let mut buf = [0u8; 16 << 10];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if hole.load(Ordering::SeqCst) {
                continue;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        if !hole.load(Ordering::SeqCst) {
            let _ = to.shutdown(Shutdown::Write);
        }
    });
}
