//! Bounded traffic for the lab and end-to-end tests: every sender stops after `count` packets,
//! every receiver after its expected count or its deadline.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::netns::{enter_thread, LabError, Netns};

fn io(what: &str) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |source| LabError::Io {
        what: what.to_string(),
        source,
    }
}

/// Sends `count` UDP datagrams of `len` bytes from `from` to `to`, inside `ns`. Returns how many
/// the kernel accepted.
pub fn send_udp(
    ns: &Netns,
    from: SocketAddr,
    to: SocketAddr,
    count: u32,
    len: usize,
) -> Result<u32, LabError> {
    ns.enter(move || -> Result<u32, LabError> {
        let sock = UdpSocket::bind(from).map_err(io("binding the sender"))?;
        let buf = vec![0x5au8; len];
        let mut sent = 0;
        for _ in 0..count {
            if sock.send_to(&buf, to).is_ok() {
                sent += 1;
            }
        }
        Ok(sent)
    })?
}

/// A UDP receiver bound inside `ns`, counting datagrams on a thread until `expected` arrive or
/// `deadline` passes.
pub struct Receiver {
    handle: std::thread::JoinHandle<Result<u32, LabError>>,
}

impl Receiver {
    pub fn start(
        ns: &Netns,
        bind: SocketAddr,
        expected: u32,
        deadline: Duration,
    ) -> Result<Receiver, LabError> {
        let name = ns.name.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || -> Result<u32, LabError> {
            let entered = enter_thread(&name);
            if entered.is_err() {
                let _ = ready_tx.send(());
            }
            entered?;
            let bound = UdpSocket::bind(bind).map_err(io("binding the receiver"));
            let _ = ready_tx.send(());
            let sock = bound?;
            grow_receive_buffer(&sock);
            sock.set_read_timeout(Some(Duration::from_millis(100)))
                .map_err(io("setting a timeout"))?;
            let end = Instant::now() + deadline;
            let mut buf = [0u8; 2048];
            let mut got = 0;
            while got < expected && Instant::now() < end {
                if sock.recv_from(&mut buf).is_ok() {
                    got += 1;
                }
            }
            Ok(got)
        });
        let _ = ready_rx.recv_timeout(Duration::from_secs(5));
        Ok(Receiver { handle })
    }

    pub fn finish(self) -> Result<u32, LabError> {
        self.handle.join().unwrap_or_else(|_| {
            Err(LabError::Io {
                what: "receiver panicked".into(),
                source: std::io::Error::other("panic"),
            })
        })
    }
}

/// A burst of thousands of datagrams outruns the default socket buffer (about 200 KiB); the lab
/// counts delivery, so it asks for 16 MiB (root may exceed `rmem_max` with SO_RCVBUFFORCE).
fn grow_receive_buffer(sock: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 16 << 20;
    // SAFETY: a valid socket fd and a pointer to a c_int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        log::warn!(
            "could not enlarge the receive buffer: {}",
            std::io::Error::last_os_error()
        );
    }
}
